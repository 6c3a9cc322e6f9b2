import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { CappedLines, TAIL_RESERVE } from '../src/journal/capped-lines.ts';

const quiet = pino({ enabled: false });

describe('CappedLines', () => {
  it('writes body lines until the cap less the reserve, then one truncated line, then only the tail', () => {
    const out: string[] = [];
    let at = 0;
    const lines = new CappedLines({ write: (t) => out.push(t) }, 2 * TAIL_RESERVE, quiet, 's1', () => ({ at, ms: 7 }));
    const message = { type: 'message', at: 0, data: 'x'.repeat(1000), ms: 0 } as const;
    for (; at < 10; at++) lines.put(message); // about 1 kB each: three fit under 8 kB less the 4 kB reserve
    expect(lines.truncated).toBe(true);
    const truncated = out.map((t) => JSON.parse(t) as { type: string; at?: number }).filter((l) => l.type === 'truncated');
    expect(truncated).toEqual([expect.objectContaining({ type: 'truncated', at: 3, ms: 7 })]);
    const before = out.length;
    lines.put(message);
    expect(out.length).toBe(before);
    lines.put({ type: 'end', reason: 'stopped', frames: 1, dropped: 0, ms: 9 }, true);
    expect(JSON.parse(out.at(-1)!)).toMatchObject({ type: 'end' });
    expect(out.join('').length).toBeLessThanOrEqual(2 * TAIL_RESERVE);
  });

  it('skips a line JSON cannot hold', () => {
    const out: string[] = [];
    const lines = new CappedLines({ write: (t) => out.push(t) }, 2 * TAIL_RESERVE, quiet, 's1', () => ({ at: 0, ms: 0 }));
    lines.put({ type: 'message', at: 0, data: 1n as never, ms: 0 });
    expect(out).toEqual([]);
  });
});
