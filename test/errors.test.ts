/** The error table, its README twin, and the error helpers (fastify's errors.test.js idea). */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS, FramehostError, errorValue, fail, isErrorCode } from '../src/errors.ts';

describe('error codes', () => {
  it('are listed in the README, each with the same message, and nothing else is', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('### Error codes'), readme.indexOf('### Limits'));
    const rows = [...section.matchAll(/^\| `([a-z_]+)` \| (.+) \|$/gm)].map((m) => [m[1], m[2]]);
    expect(Object.fromEntries(rows)).toEqual(ERRORS);
  });

  it('build values and exceptions that carry the code', () => {
    expect(errorValue('busy')).toEqual({ code: 'busy', message: ERRORS.busy });
    expect(errorValue('invalid_args', 'x must be >= 0').message).toBe(`${ERRORS.invalid_args}: x must be >= 0`);
    expect(fail('rate_limited')).toEqual({ ok: false, error: { code: 'rate_limited', message: ERRORS.rate_limited } });
    const err = FramehostError.from(errorValue('not_owner'));
    expect(err).toBeInstanceOf(Error);
    expect(err.toValue()).toEqual({ code: 'not_owner', message: ERRORS.not_owner });
    expect(isErrorCode('busy')).toBe(true);
    expect(isErrorCode('toString')).toBe(false);
    expect(isErrorCode(42)).toBe(false);
  });
});
