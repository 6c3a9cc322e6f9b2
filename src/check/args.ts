/**
 * Command arguments generated from a command's schema, for `framehost check`: one valid set
 * (every field inside its bounds), the invalid sets the validator must refuse, and seeded random
 * valid sets for the isolation run.
 */
import type { Field, Fields } from '../model/schema.ts';

type Args = Record<string, unknown>;

/** A value inside the field's bounds: its default, else the middle of its range. */
function validValue(f: Field): unknown {
  if (f.default !== undefined) return f.default;
  switch (f.kind) {
    case 'string':
      return 'x'.repeat(Math.min(f.maxLength, Math.max(f.minLength ?? 0, 5)));
    case 'int':
    case 'float': {
      const lo = f.min ?? (f.max !== undefined ? Math.min(0, f.max) : 0);
      const hi = f.max ?? Math.max(lo, 1);
      const mid = (lo + hi) / 2;
      return f.kind === 'int' ? Math.min(hi, Math.ceil(mid)) : mid;
    }
    case 'boolean':
      return true;
    case 'enum':
      return f.values[0];
  }
}

export function validArgs(fields: Fields): Args {
  const args: Args = {};
  for (const [name, f] of Object.entries(fields)) args[name] = validValue(f);
  return args;
}

export interface InvalidCase {
  /** What is wrong, for the report: `x above max`. */
  readonly what: string;
  readonly args: unknown;
}

/** Sets the validator must refuse with invalid_args: each one wrong in exactly one way. */
export function invalidArgs(fields: Fields): InvalidCase[] {
  const base = validArgs(fields);
  const cases: InvalidCase[] = [
    { what: 'an unknown argument', args: { ...base, framehostCheckUnknown: 1 } },
    { what: 'args that are not an object', args: [1, 2] },
  ];
  const withField = (name: string, value: unknown): Args => ({ ...base, [name]: value });
  for (const [name, f] of Object.entries(fields)) {
    if (!f.optional && f.default === undefined) {
      const { [name]: _dropped, ...rest } = base;
      cases.push({ what: `${name} missing`, args: rest });
    }
    switch (f.kind) {
      case 'string':
        cases.push({ what: `${name} not a string`, args: withField(name, 42) });
        cases.push({ what: `${name} longer than ${f.maxLength}`, args: withField(name, 'x'.repeat(f.maxLength + 1)) });
        break;
      case 'int':
      case 'float':
        cases.push({ what: `${name} not a number`, args: withField(name, 'seven') });
        cases.push({ what: `${name} not finite`, args: withField(name, Number.NaN) });
        if (f.min !== undefined) cases.push({ what: `${name} below min ${f.min}`, args: withField(name, f.min - 1) });
        if (f.max !== undefined) cases.push({ what: `${name} above max ${f.max}`, args: withField(name, f.max + 1) });
        if (f.kind === 'int') cases.push({ what: `${name} not an integer`, args: withField(name, Number(validValue(f)) + 0.5) });
        break;
      case 'boolean':
        cases.push({ what: `${name} not a boolean`, args: withField(name, 'true') });
        break;
      case 'enum':
        cases.push({ what: `${name} not one of its values`, args: withField(name, `${f.values.join('')}-not-a-value`) });
        break;
    }
  }
  return cases;
}

function randomValue(f: Field, random: () => number): unknown {
  switch (f.kind) {
    case 'string': {
      const min = f.minLength ?? 0;
      const length = min + Math.floor(random() * (Math.min(f.maxLength, min + 16) - min + 1));
      return Array.from({ length }, () => String.fromCharCode(97 + Math.floor(random() * 26))).join('');
    }
    case 'int':
    case 'float': {
      const lo = f.min ?? -1000;
      const hi = f.max ?? 1000;
      const v = lo + random() * (hi - lo);
      return f.kind === 'int' ? Math.min(hi, Math.max(lo, Math.round(v))) : v;
    }
    case 'boolean':
      return random() < 0.5;
    case 'enum':
      return f.values[Math.floor(random() * f.values.length)];
  }
}

/** Random valid arguments; optional fields are left out half the time. */
export function randomArgs(fields: Fields, random: () => number): Args {
  const args: Args = {};
  for (const [name, f] of Object.entries(fields)) {
    if ((f.optional || f.default !== undefined) && random() < 0.5) continue;
    args[name] = randomValue(f, random);
  }
  return args;
}
