import { describe, expect, it } from 'vitest';
import { OncePer } from '../src/util/once-per.ts';

describe('OncePer', () => {
  it('lets one notice through per interval, counted from the last one let through', () => {
    const once = new OncePer(1000);
    expect(once.due(5000)).toBe(true);
    expect(once.due(5500)).toBe(false);
    expect(once.due(6000)).toBe(false); // exactly the interval: not yet
    expect(once.due(6001)).toBe(true);
    expect(once.due(6500)).toBe(false);
  });
});
