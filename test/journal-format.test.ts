/** The journal's pure parts: which frames are hashed, reading a file back, playing points back. */
import { describe, expect, it } from 'vitest';
import { PointLog, ReplayPlayer } from '../src/actors/loop-points.ts';
import { isHashed } from '../src/journal/format.ts';
import { JournalError, parseJournal } from '../src/journal/replay-script.ts';

const header = { type: 'session', format: 1, sessionId: 's', startedAt: '', model: { name: 'm', version: '1', source: 'm' }, options: {}, inputs: {}, hashEvery: 2, recordInputs: true, maxSessionBytes: 1 << 20 };
const file = (...lines: object[]): string => [header, ...lines].map((l) => JSON.stringify(l)).join('\n') + '\n';
const frame = (seq: number, extra: object = {}) => ({ type: 'frame', seq, count: 1, width: 1, height: 1, format: 'rgba', hash: `h${seq}`, ...extra });

describe('journal format', () => {
  it('hashes every block that holds a multiple of N', () => {
    expect([0, 1, 2, 3, 4].filter((s) => isHashed(s, 1, 2))).toEqual([0, 2, 4]);
    expect(isHashed(9, 2, 10)).toBe(true); // frames 9 and 10
    expect(isHashed(11, 8, 10)).toBe(false); // 11..18
  });

  it('reads a stopped session: commands by check, inputs joined to their reads, stop at the recorded check', () => {
    const bytes = Buffer.from([1, 2, 3, 4]).toString('base64');
    const j = parseJournal(
      file(
        frame(0),
        { type: 'input', track: 'cam', seq: 1, at: 0, t: 5, hash: 'x', bytes, ms: 1 },
        { type: 'command', n: 2, name: 'b', args: {}, at: 3, check: 4, ms: 1 },
        { type: 'command', n: 1, name: 'a', args: { v: 1 }, at: 1, check: 2, ms: 1 },
        { type: 'command', n: 3, name: 'c', args: {}, applied: false, ms: 1 },
        { type: 'read', track: 'cam', seq: 1, read: 3, at: 2 },
        frame(2),
        frame(3, { last: true }),
        { type: 'end', reason: 'stopped', frames: 4, dropped: 0, checks: 6, stopCheck: 6, ms: 9 },
      ),
    );
    expect(j.script.commands.map((c) => [c.name, c.check])).toEqual([['a', 2], ['b', 4]]);
    expect(j.script.reads).toEqual([{ track: 'cam', read: 3, seq: 1, t: 5, data: new Uint8Array([1, 2, 3, 4]) }]);
    expect(j.script).toMatchObject({ stopCheck: 6 });
    expect(j.script.stopAtFrame).toBeUndefined();
    expect([...j.hashes.keys()]).toEqual([0, 2, 3]);
    expect(j).toMatchObject({ expectedFrames: 4, readsWithoutBytes: 0, warnings: [] });
  });

  it('stops after the recorded frames when the process died (torn last line, no end) or the journal was cut', () => {
    const died = parseJournal(file(frame(0), frame(2)) + '{"type":"fra');
    expect(died.script.stopAtFrame).toBe(3);
    expect(died.warnings.join(' ')).toMatch(/incomplete.*no end line/s);
    const cut = parseJournal(file(frame(0), { type: 'truncated', at: 7, bytes: 100, ms: 1 }, frame(40, { last: true }), { type: 'end', reason: 'stopped', frames: 41, dropped: 0, checks: 42, stopCheck: 42, ms: 1 }));
    expect(cut).toMatchObject({ truncatedAt: 7, expectedFrames: 7, script: { stopAtFrame: 7 } });
    const crashed = parseJournal(file(frame(0), { type: 'end', reason: 'crashed', frames: 12, dropped: 0, ms: 1 }));
    expect(crashed.script).toMatchObject({ stopAtFrame: 12 });
  });

  it('refuses what is not a journal', () => {
    expect(() => parseJournal('{"type":"frame"}\n')).toThrow(JournalError);
    expect(() => parseJournal(`${JSON.stringify({ ...header, format: 2 })}\n`)).toThrow(/format 2/);
    expect(() => parseJournal(`${JSON.stringify(header)}\nnot json\n${JSON.stringify(frame(0))}\n`)).toThrow(/line 2 is not JSON/);
  });

  it('records a read only when the loop sees a new frame, and plays reads back by their count', () => {
    const log = new PointLog();
    const f = (seq: number) => ({ data: new Uint8Array(4), width: 1, height: 1, format: 'rgba' as const, seq, t: 0 });
    log.read('cam', null, 0);
    log.read('cam', f(1), 0);
    log.read('cam', f(1), 1); // the same frame again (latest()): not a new point
    log.read('cam', f(3), 2);
    expect(log.take()).toEqual([
      { kind: 'read', track: 'cam', seq: 1, read: 2, at: 0 },
      { kind: 'read', track: 'cam', seq: 3, read: 4, at: 2 },
    ]);
    expect(log.take()).toBeUndefined();

    const player = new ReplayPlayer({ commands: [], reads: [{ track: 'cam', read: 2, seq: 1, t: 0, data: new Uint8Array([9, 9, 9, 9]) }] });
    const spec = { width: 1, height: 1, format: 'rgba' as const };
    expect(player.read('cam', true, spec)).toBeNull(); // read 1: nothing recorded
    expect(player.read('cam', true, spec)?.seq).toBe(1); // read 2: the recorded frame
    expect(player.read('cam', true, spec)).toBeNull(); // next(): nothing newer
    expect(player.read('cam', false, spec)?.data).toEqual(new Uint8Array([9, 9, 9, 9])); // latest(): the last one again
  });
});
