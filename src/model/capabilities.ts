/**
 * What a client may ask the model to do: its name and version and each command's JSON Schema.
 * Computed once from the module's declarations (no load needed), served by `capabilities`
 * requests and `GET /schema`.
 */
import { errorValue, type ErrorValue } from '../errors.ts';
import type { CheckedCommand } from '../machines/types.ts';
import type { ErasedModel, InputTrackSpec } from './api.ts';
import { toJsonSchema, validateArgs, type JsonSchema } from './schema.ts';

export interface CommandInfo {
  readonly description?: string;
  readonly args: JsonSchema;
}

export interface Capabilities {
  readonly model: { readonly name: string; readonly version: string; readonly description?: string };
  readonly commands: Readonly<Record<string, CommandInfo>>;
  /** Input tracks the session owner may publish frames on. */
  readonly inputs: Readonly<Record<string, InputTrackSpec>>;
}

export function capabilitiesOf(model: ErasedModel): Capabilities {
  const commands: Record<string, CommandInfo> = {};
  for (const [name, def] of Object.entries(model.commands)) {
    commands[name] = { ...(def.description ? { description: def.description } : {}), args: toJsonSchema(def.args) };
  }
  return {
    model: { name: model.name, version: model.version, ...(model.description ? { description: model.description } : {}) },
    commands,
    inputs: { ...model.inputs },
  };
}

/** Check a command against the model's declarations (pure; runs on the main thread). */
export function checkCommand(model: ErasedModel, name: unknown, args: unknown): CheckedCommand {
  if (typeof name !== 'string' || name.length === 0 || name.length > 128) {
    return { ok: false, error: errorValue('bad_request', 'a command needs a name (a string of 1-128 characters)') };
  }
  if (!Object.hasOwn(model.commands, name)) return { ok: false, error: errorValue('unknown_command', JSON.stringify(name)) };
  const v = validateArgs(model.commands[name]!.args, args);
  return v.ok ? { ok: true, name, args: v.value } : { ok: false, error: errorValue('invalid_args', `${name}: ${v.message}`) };
}

export type { ErrorValue };
