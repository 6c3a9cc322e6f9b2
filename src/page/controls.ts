/**
 * The command forms, generated from the model's JSON Schemas, showing the session's command
 * state (README, "The session's command state"): what the server last accepted, from the
 * `capabilities` ack and every `session:update`; the schema's defaults when no session runs or
 * a command was not sent yet. So a preset moves the rates' sliders, "send rates" sends what the
 * session has, and a second tab shows the values of the session it watches.
 */
import type { JsonSchema } from '../model/schema.ts';
import type { JsonValue } from '../model/api.ts';
import type { ControlSnapshot } from '../model/controls.ts';

type Props = Record<string, JsonSchema>;
type Input = HTMLInputElement | HTMLSelectElement;

export interface CommandInfo {
  readonly description?: string;
  readonly args: JsonSchema;
}

/** A slider's value as a person reads it: integers as they are, fractions to four figures. */
function shownValue(input: HTMLInputElement, schema: JsonSchema): string {
  const v = Number(input.value);
  return schema.type === 'integer' ? String(Math.round(v)) : String(Number(v.toPrecision(4)));
}

/** One input per argument, from its JSON Schema. */
function inputFor(name: string, schema: JsonSchema): Input {
  if (Array.isArray(schema.enum)) {
    const select = document.createElement('select');
    select.name = name;
    for (const v of schema.enum as string[]) select.append(new Option(v, v));
    return select;
  }
  const input = document.createElement('input');
  input.name = name;
  if (schema.type === 'integer' || schema.type === 'number') {
    const ranged = typeof schema.minimum === 'number' && typeof schema.maximum === 'number';
    input.type = ranged ? 'range' : 'number';
    if (typeof schema.minimum === 'number') input.min = String(schema.minimum);
    if (typeof schema.maximum === 'number') input.max = String(schema.maximum);
    input.step = schema.type === 'integer' ? '1' : 'any';
    if (ranged && schema.type === 'number') input.step = String(((schema.maximum as number) - (schema.minimum as number)) / 1000);
  } else if (schema.type === 'boolean') input.type = 'checkbox';
  else {
    input.type = 'text';
    if (typeof schema.maxLength === 'number') input.maxLength = schema.maxLength;
  }
  return input;
}

function valueOf(input: Input, schema: JsonSchema): unknown {
  if (input instanceof HTMLSelectElement) return input.value;
  if (input.type === 'checkbox') return input.checked;
  if (schema.type === 'integer') return Math.round(Number(input.value));
  if (schema.type === 'number') return Number(input.value);
  return input.value;
}

/** Put a value in an input; undefined: none describes the session (a select then shows no choice). */
function setValue(input: Input, schema: JsonSchema, value: JsonValue | undefined): void {
  if (input instanceof HTMLSelectElement) {
    if (typeof value === 'string') input.value = value;
    else input.selectedIndex = -1;
  } else if (input.type === 'checkbox') input.checked = value === true;
  else if (input.type === 'text') input.value = typeof value === 'string' ? value : '';
  else input.value = String(typeof value === 'number' ? value : (schema.minimum ?? 0));
}

/** One command's form: its inputs, the sliders' read-outs, its send button if it has one. */
class CommandForm {
  readonly fieldset = document.createElement('fieldset');
  readonly inputs = new Map<string, Input>();
  private readonly outputs = new Map<string, HTMLOutputElement>();
  button: HTMLButtonElement | null = null;
  /** Takes x and y from the picture (the canvas sends them). */
  readonly pointed: boolean;

  constructor(
    readonly name: string,
    info: CommandInfo,
    private readonly props: Props,
  ) {
    this.pointed = 'x' in props && 'y' in props;
    const legend = document.createElement('legend');
    legend.textContent = name;
    legend.title = info.description ?? '';
    this.fieldset.append(legend);
    for (const [arg, schema] of Object.entries(props)) {
      if (this.pointed && (arg === 'x' || arg === 'y')) continue; // from the canvas
      this.addInput(arg, schema);
    }
  }

  private addInput(arg: string, schema: JsonSchema): void {
    const input = inputFor(arg, schema);
    const label = document.createElement('label');
    const text = document.createElement('span');
    text.textContent = arg;
    label.title = String(schema.description ?? '');
    label.append(text, input);
    if (input instanceof HTMLInputElement && input.type === 'range') {
      const output = document.createElement('output');
      input.addEventListener('input', () => (output.textContent = shownValue(input, schema)));
      label.append(output);
      this.outputs.set(arg, output);
    }
    this.fieldset.append(label);
    this.inputs.set(arg, input);
  }

  args(): Record<string, unknown> {
    return Object.fromEntries([...this.inputs].map(([arg, input]) => [arg, valueOf(input, this.props[arg]!)]));
  }

  /** The session's values for this command (null: none applies), else the schema's defaults. */
  show(values: Readonly<Record<string, JsonValue>> | null | undefined): void {
    for (const [arg, input] of this.inputs) {
      const schema = this.props[arg]!;
      const value = values === null ? undefined : values?.[arg] !== undefined ? values[arg] : (schema.default as JsonValue | undefined);
      setValue(input, schema, value);
      const output = this.outputs.get(arg);
      if (output && input instanceof HTMLInputElement) output.textContent = shownValue(input, schema);
    }
  }

  allow(why: string | null): void {
    const controls: (HTMLInputElement | HTMLSelectElement | HTMLButtonElement)[] = [...this.inputs.values(), ...(this.button ? [this.button] : [])];
    for (const el of controls) el.disabled = why !== null;
    // The reason on hover, over the whole form (a disabled input gets no pointer events).
    this.fieldset.title = why ?? '';
  }
}

export class CommandForms {
  private readonly forms: CommandForm[] = [];

  /** `send` a command with its form's arguments plus `extra` (x and y from the picture). */
  constructor(
    root: HTMLElement,
    commands: Readonly<Record<string, CommandInfo>>,
    private readonly send: (name: string, args: Record<string, unknown>) => void,
  ) {
    root.textContent = '';
    for (const [name, info] of Object.entries(commands)) {
      const form = new CommandForm(name, info, (info.args.properties ?? {}) as Props);
      this.finish(form);
      root.append(form.fieldset);
      this.forms.push(form);
    }
    this.show(null);
  }

  /** How a form sends: from the picture, on a choice (one select), or with a button. */
  private finish(form: CommandForm): void {
    const only = form.inputs.size === 1 ? [...form.inputs.values()][0] : undefined;
    if (form.pointed) {
      const hint = document.createElement('div');
      hint.className = 'hint';
      hint.textContent = 'click the picture (or focus it: arrows move, Enter sends)';
      form.fieldset.append(hint);
    } else if (only instanceof HTMLSelectElement) {
      only.addEventListener('change', () => this.send(form.name, form.args()));
    } else {
      const button = document.createElement('button');
      button.textContent = form.inputs.size ? `send ${form.name}` : form.name;
      button.addEventListener('click', () => this.send(form.name, form.args()));
      form.fieldset.append(button);
      form.button = button;
    }
  }

  /** The command that takes x and y from the picture, if any: the canvas sends it. */
  pointed(): ((extra: { x: number; y: number }) => void) | null {
    const form = this.forms.find((f) => f.pointed);
    return form ? (extra) => this.send(form.name, { ...form.args(), ...extra }) : null;
  }

  /** The session's command state, or null (no session: every form at its defaults). */
  show(controls: ControlSnapshot | null): void {
    for (const form of this.forms) form.show(controls?.[form.name]);
  }

  allow(why: string | null): void {
    for (const form of this.forms) form.allow(why);
  }
}
