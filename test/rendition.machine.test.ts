/** The rendition chart (which rendition a viewer of the room gets), on snapshots and a fake clock. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createActor } from 'xstate';
import { DEFAULT_RENDITION_LIMITS as L, renditionMachine, wantedRendition } from '../src/machines/rendition.machine.ts';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

const chart = () => createActor(renditionMachine, { input: { limits: L } }).start();
const wanted = (a: ReturnType<typeof chart>) => wantedRendition(a.getSnapshot().value);
/** Reports every `everyMs` for `ms`, each with this loss. */
function reports(a: ReturnType<typeof chart>, fractionLost: number, ms: number, everyMs = 500): void {
  for (let t = 0; t < ms; t += everyMs) {
    a.send({ type: 'report', fractionLost });
    vi.advanceTimersByTime(everyMs);
  }
}

describe('rendition chart', () => {
  it('stays on top before any report, and with clean reports', () => {
    const a = chart();
    vi.advanceTimersByTime(60_000); // never reported: no evidence of trouble
    expect(wanted(a)).toBe('top');
    reports(a, 0.01, 10_000);
    expect(wanted(a)).toBe('top');
  });

  it('moves down after sustained loss, not after one lossy report', () => {
    const a = chart();
    reports(a, 0, 1000);
    reports(a, 0.2, 1000); // lossy for 1 s, then clean: stays
    reports(a, 0, 1000);
    expect(wanted(a)).toBe('top');
    reports(a, 0.2, L.downAfterMs - 500);
    expect(wanted(a)).toBe('top');
    reports(a, 0.2, 1000);
    expect(wanted(a)).toBe('low');
  });

  it('moves down when the viewer stops reporting, and stays down while it is silent', () => {
    const a = chart();
    reports(a, 0, 1000);
    vi.advanceTimersByTime(L.silentAfterMs - 600);
    expect(wanted(a)).toBe('top');
    vi.advanceTimersByTime(200);
    expect(wanted(a)).toBe('low');
    vi.advanceTimersByTime(60_000);
    expect(wanted(a)).toBe('low');
  });

  it('moves back up after clean reports for upAfterMs, counted from the first clean one; the wait doubles at each move down', () => {
    const a = chart();
    reports(a, 0.3, L.downAfterMs + 500);
    expect(wanted(a)).toBe('low');
    reports(a, 0, L.upAfterMs - 500);
    expect(wanted(a)).toBe('low');
    reports(a, 0, 1000);
    expect(wanted(a)).toBe('top');
    reports(a, 0.3, L.downAfterMs + 500); // down again: now twice the wait
    expect(wanted(a)).toBe('low');
    reports(a, 0, L.upAfterMs + 500);
    expect(wanted(a)).toBe('low');
    reports(a, 0, L.upAfterMs);
    expect(wanted(a)).toBe('top');
  });

  it('a lossy report or silence while recovering starts the wait over', () => {
    const a = chart();
    reports(a, 0.3, L.downAfterMs + 500);
    reports(a, 0, L.upAfterMs - 1000);
    reports(a, 0.3, 500);
    reports(a, 0, L.upAfterMs - 1000);
    expect(wanted(a)).toBe('low');
    vi.advanceTimersByTime(L.silentAfterMs + 100); // silence: held again, no move up on its own
    vi.advanceTimersByTime(L.upAfterMs * 2);
    expect(wanted(a)).toBe('low');
  });
});
