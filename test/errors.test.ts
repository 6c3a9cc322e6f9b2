/** The error table, its twin in docs/protocol.md, and the error helpers (fastify's errors.test.js idea). */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS, FramehostError, errorValue, fail, isErrorCode } from '../src/errors.ts';

describe('error codes', () => {
  it('are listed in docs/protocol.md, each with the same message, and nothing else is', () => {
    const guide = readFileSync(new URL('../docs/protocol.md', import.meta.url), 'utf8');
    const section = guide.slice(guide.indexOf('### Error codes'), guide.indexOf('### Limits'));
    expect(section.length).toBeGreaterThan(0);
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
