/**
 * Checks of client payloads before they become machine events. Each returns the request in a
 * known shape or an error value; nothing here throws, whatever a client sends (binary where
 * JSON is expected, arrays, `__proto__` keys, deep nesting).
 */
import { errorValue, type ErrorValue } from '../../errors.ts';
import type { AttachRequest, CommandRequest, Encoding, Flow, ResumeRequest } from './events.ts';

type Checked<T> = { ok: true; value: T } | { ok: false; error: ErrorValue };

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

const bad = (detail: string): { ok: false; error: ErrorValue } => ({ ok: false, error: errorValue('bad_request', detail) });

/** A request that carries nothing (stop, detach, capabilities): undefined or an object. */
export function checkEmpty(req: unknown): Checked<object> {
  return req === undefined || req === null || isPlainObject(req) ? { ok: true, value: {} } : bad('the request must be an object');
}

export interface StreamSettings {
  readonly encoding: Encoding;
  readonly quality: number;
  readonly flow: Flow;
}

export function checkStream(req: unknown, defaultQuality: number): Checked<StreamSettings> {
  if (req !== undefined && req !== null && !isPlainObject(req)) return bad('the request must be an object');
  const r = (req ?? {}) as AttachRequest;
  const encoding = r.encoding ?? 'raw';
  if (encoding !== 'raw' && encoding !== 'jpeg' && encoding !== 'webrtc') return bad('encoding must be "raw", "jpeg" or "webrtc"');
  const quality = r.quality ?? defaultQuality;
  if (typeof quality !== 'number' || !Number.isInteger(quality) || quality < 1 || quality > 100) return bad('quality must be an integer in 1..100');
  const flow = r.flow ?? 'socket';
  if (flow !== 'socket' && flow !== 'ack') return bad('flow must be "socket" or "ack"');
  return { ok: true, value: { encoding, quality, flow } };
}

/** `tokenOptional`: the caller has an access token, whose `sub` may stand for the session token. */
export function checkResume(req: unknown, tokenOptional = false): Checked<ResumeRequest> {
  if (isPlainObject(req) && req.token === undefined && tokenOptional) return { ok: true, value: {} };
  if (!isPlainObject(req) || typeof req.token !== 'string' || req.token.length === 0 || req.token.length > 256) {
    return bad('resume needs { token: string } (the token that session:start returned)');
  }
  return { ok: true, value: { token: req.token } };
}

/** Shape and size only; the model's schema is checked by the runtime (unknown_command, invalid_args). */
export function checkCommandRequest(req: unknown, maxBytes: number): Checked<CommandRequest> {
  if (!isPlainObject(req)) return bad('a command is { name: string, args?: object }');
  const { name, args } = req;
  if (typeof name !== 'string') return bad('command name must be a string');
  let size: number;
  try {
    size = Buffer.byteLength(JSON.stringify(args ?? {}) ?? '') + name.length;
  } catch {
    return bad('command args must be JSON'); // cyclic or BigInt: only possible from an in-process caller
  }
  if (size > maxBytes) return { ok: false, error: errorValue('payload_too_large', `the command is ${size} bytes; the limit is ${maxBytes}`) };
  return { ok: true, value: { name, ...(args === undefined ? {} : { args: args as Record<string, unknown> }) } };
}
