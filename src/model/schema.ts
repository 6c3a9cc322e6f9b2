/**
 * Command argument schemas: a small closed vocabulary (string, int, float, boolean, enum) that
 * a model author declares once and that gives three things: the TypeScript type of the
 * handler's arguments, a validator with specific messages, and the JSON Schema that the
 * capabilities request publishes. Validation is strict: unknown keys are refused (a silent
 * strip would hide a client's typo), and only own properties are read, so `__proto__` or
 * `constructor` keys can never reach a handler.
 */

export interface StringField {
  readonly kind: 'string';
  readonly description?: string;
  readonly minLength?: number;
  /** Defaults to 1024: a command is a control input, not a payload. */
  readonly maxLength: number;
  readonly optional?: boolean;
  readonly default?: string;
}
export interface NumberField {
  readonly kind: 'int' | 'float';
  readonly description?: string;
  readonly min?: number;
  readonly max?: number;
  readonly optional?: boolean;
  readonly default?: number;
}
export interface BooleanField {
  readonly kind: 'boolean';
  readonly description?: string;
  readonly optional?: boolean;
  readonly default?: boolean;
}
export interface EnumField<V extends string = string> {
  readonly kind: 'enum';
  readonly values: readonly V[];
  readonly description?: string;
  readonly optional?: boolean;
  readonly default?: V;
}
export type Field = StringField | NumberField | BooleanField | EnumField;
export type Fields = Readonly<Record<string, Field>>;

type FieldValue<F extends Field> = F extends StringField
  ? string
  : F extends NumberField
    ? number
    : F extends BooleanField
      ? boolean
      : F extends EnumField<infer V>
        ? V
        : never;

type OptionalKeys<T extends Fields> = { [K in keyof T]: T[K]['optional'] extends true ? K : never }[keyof T];
type RequiredKeys<T extends Fields> = Exclude<keyof T, OptionalKeys<T>>;

/** The handler's argument type, derived from the declaration. */
export type ArgsOf<T extends Fields> = { [K in RequiredKeys<T>]: FieldValue<T[K]> } & {
  [K in OptionalKeys<T>]?: FieldValue<T[K]>;
};

type Opts<F> = Omit<F, 'kind'>;

/** Field builders: `t.int({ min: 0, max: 255 })`. */
export const t = {
  string: (o: Partial<Opts<StringField>> = {}): StringField => ({ kind: 'string', maxLength: 1024, ...o }),
  int: (o: Opts<NumberField> = {}): NumberField => ({ kind: 'int', ...o }),
  float: (o: Opts<NumberField> = {}): NumberField => ({ kind: 'float', ...o }),
  boolean: (o: Opts<BooleanField> = {}): BooleanField => ({ kind: 'boolean', ...o }),
  // NoInfer: the values alone say what V is, so a default that is not one of them is an error there.
  enum: <const V extends string>(values: readonly V[], o: Omit<Opts<EnumField<NoInfer<V>>>, 'values'> = {}): EnumField<V> => ({
    kind: 'enum',
    values,
    ...o,
  }),
};

export type Validation<T> = { ok: true; value: T } | { ok: false; message: string };

function checkField(name: string, f: Field, v: unknown): string | undefined {
  switch (f.kind) {
    case 'string':
      if (typeof v !== 'string') return `${name} must be a string, got ${describe(v)}`;
      if (v.length > f.maxLength) return `${name} is ${v.length} characters long; the limit is ${f.maxLength}`;
      if (f.minLength !== undefined && v.length < f.minLength) return `${name} must have at least ${f.minLength} characters`;
      return undefined;
    case 'int':
    case 'float':
      if (typeof v !== 'number' || !Number.isFinite(v)) return `${name} must be a finite number, got ${describe(v)}`;
      if (f.kind === 'int' && !Number.isInteger(v)) return `${name} must be an integer, got ${v}`;
      if (f.min !== undefined && v < f.min) return `${name} must be >= ${f.min}, got ${v}`;
      if (f.max !== undefined && v > f.max) return `${name} must be <= ${f.max}, got ${v}`;
      return undefined;
    case 'boolean':
      return typeof v === 'boolean' ? undefined : `${name} must be a boolean, got ${describe(v)}`;
    case 'enum':
      return typeof v === 'string' && f.values.includes(v)
        ? undefined
        : `${name} must be one of ${f.values.map((x) => JSON.stringify(x)).join(', ')}, got ${describe(v)}`;
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v.length > 40 ? `a string of ${v.length} characters` : JSON.stringify(v);
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || ArrayBuffer.isView(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Validate `args` against `fields`; returns a fresh null-prototype object with defaults applied. */
export function validateArgs<T extends Fields>(fields: T, args: unknown): Validation<ArgsOf<T>> {
  const input = args === undefined ? {} : args;
  if (!isPlainObject(input)) return { ok: false, message: `args must be an object, got ${describe(input)}` };
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const key of Object.keys(input)) {
    if (!Object.hasOwn(fields, key)) return { ok: false, message: `unknown argument ${JSON.stringify(key.slice(0, 64))}` };
  }
  for (const [name, f] of Object.entries(fields)) {
    const present = Object.hasOwn(input, name) && input[name] !== undefined;
    if (!present) {
      if (f.default !== undefined) out[name] = f.default;
      else if (!f.optional) return { ok: false, message: `missing argument ${name}` };
      continue;
    }
    const problem = checkField(name, f, input[name]);
    if (problem) return { ok: false, message: problem };
    out[name] = input[name];
  }
  return { ok: true, value: out as ArgsOf<T> };
}

export type JsonSchema = Record<string, unknown>;

/** JSON Schema (draft 2020-12) of one command's arguments. */
export function toJsonSchema(fields: Fields): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  const required: string[] = [];
  for (const [name, f] of Object.entries(fields)) {
    const p: JsonSchema = {};
    switch (f.kind) {
      case 'string':
        p.type = 'string';
        p.maxLength = f.maxLength;
        if (f.minLength !== undefined) p.minLength = f.minLength;
        break;
      case 'int':
      case 'float':
        p.type = f.kind === 'int' ? 'integer' : 'number';
        if (f.min !== undefined) p.minimum = f.min;
        if (f.max !== undefined) p.maximum = f.max;
        break;
      case 'boolean':
        p.type = 'boolean';
        break;
      case 'enum':
        p.type = 'string';
        p.enum = [...f.values];
        break;
    }
    if (f.description) p.description = f.description;
    if (f.default !== undefined) p.default = f.default;
    properties[name] = p;
    if (!f.optional && f.default === undefined) required.push(name);
  }
  return { type: 'object', properties, required, additionalProperties: false };
}
