/**
 * `framehost check`, run as an author runs it (the bin, its own process, from the checkout's
 * sources): the built-in models and a well-behaved fixture pass; fixtures with a module-level
 * leak, a loop that ignores stop, a bad frame and undeclared randomness fail, each with the
 * message that names the cause; for a leak, the command it starts with (found by replay). Exit 0 on a pass, 1 on a failure, 2 for a bad command line.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { appliedCommands, describeCommand } from '../src/check/narrow.ts';
import { childPool } from './helpers/child.ts';
import { BIN } from './helpers/cli.ts';

const children = childPool();
/** Journal folders check kept (in the temp folder) for a failure: removed after each test. */
const journals: string[] = [];
afterEach(() => {
  children.killAll();
  for (const d of journals.splice(0)) rmSync(d, { recursive: true, force: true });
});

const FIXTURES = 'test/fixtures/check';

async function check(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string; lines: Map<string, string> }> {
  const child = children.start([BIN, 'check', ...args], { env: { ...process.env, FRAMEHOST_LOG_LEVEL: '', ...env } });
  const exit = await child.exitWithin(60_000);
  // "  FAIL  isolation          message": step → "FAIL message"
  const lines = new Map<string, string>();
  for (const m of child.stdout.matchAll(/^ {2}(ok|FAIL|skip) +(\S+(?: \S+)?) {2,}(.*)$/gm)) lines.set(m[2]!.trim(), `${m[1]} ${m[3]}`);
  return { code: exit.code, out: `${child.stdout}\n${child.stderr}`, lines };
}

describe('framehost check', () => {
  it('passes the built-in models and a well-behaved model, each step reported', { timeout: 90_000 }, async () => {
    const [grayScott, videoFilter, good] = await Promise.all([check(['gray-scott']), check(['video-filter']), check([`${FIXTURES}/good.ts`])]);
    for (const r of [grayScott, videoFilter, good]) {
      expect(r.code, r.out).toBe(0);
      expect(r.out).toMatch(/^passed: \d+ passed, 0 failed/m);
      expect(r.lines.get('load'), r.out).toMatch(/^ok .* loaded in \d+ ms/);
      expect(r.lines.get('frames'), r.out).toMatch(/^ok \d+×\d+ rgba, first frame after \d+ ms, [\d.]+ frames\/s/);
      expect(r.lines.get('stop'), r.out).toMatch(/^ok over \d+ ms after the stop request \(deadline 5000 ms\)/);
      expect(r.lines.get('isolation'), r.out).toMatch(/^ok session 3's .* equal those of the first session after a fresh load, after a session of \d+ random commands/);
    }
    expect(grayScott.lines.get('command stamp')).toMatch(/^ok \{.*\} accepted and handled; \d+ invalid argument sets refused with invalid_args/);
    expect(videoFilter.lines.get('isolation')).toContain('noise on the input tracks');
    expect(good.lines.get('command level')).toMatch(/^ok \{"value":128\} accepted and handled; 8 invalid argument sets refused/);
  });

  it('fails a module-level leak, a loop that ignores stop and a bad frame, naming the cause', { timeout: 90_000 }, async () => {
    const [leak, slow, bad] = await Promise.all([
      check([`${FIXTURES}/leak.ts`]),
      check([`${FIXTURES}/slow-stop.ts`, '--stop-deadline', '800']),
      check([`${FIXTURES}/bad-frame.ts`]),
    ]);
    expect(leak.code, leak.out).toBe(1);
    expect(leak.lines.get('isolation'), leak.out).toMatch(/^FAIL session 3's first 3 frames differ .* state survived from one session to the next\. The likely cause is module-level state/);
    expect(leak.lines.get('frames')).toMatch(/^ok/);
    expect(leak.out).toMatch(/^FAILED: 4 passed, 1 failed/m);
    // Its only command leaks: the first one of the random session is named.
    expect(leak.out).toMatch(/^ {27}the leak starts with command "level" \{"value":\d+\} \(the 1st of session 2's \d+ commands, applied at frame \d+\): a session replayed with no command twice/m);
    journals.push(...[...leak.out.matchAll(/session 2's journal: (\S+)\/session-/g)].map((m) => m[1]!));

    expect(slow.code, slow.out).toBe(1);
    expect(slow.lines.get('stop'), slow.out).toMatch(/^FAIL the loop ignored stop for 800 ms \(the stop deadline\) and its worker was killed: call ctx\.shouldStop\(\)/);

    expect(bad.code, bad.out).toBe(1);
    expect(bad.lines.get('frames'), bad.out).toMatch(/^FAIL 3 frames, then the session ended by itself \(error, bad_frame: frame\.data has 100 bytes; 1×16×16 rgba needs 1024\)/);
  });

  it('names the command a leak starts with, from a replayed journal of the random session, and keeps that journal', { timeout: 90_000 }, async () => {
    const [r, loop, noRandom] = await Promise.all([
      check([`${FIXTURES}/leak-stamp.ts`]),
      check([`${FIXTURES}/leak-loop.ts`]),
      check([`${FIXTURES}/leak-stamp.ts`, '--commands', '0']),
    ]);
    expect(r.code, r.out).toBe(1);
    expect(r.lines.get('isolation'), r.out).toMatch(/^FAIL .*state survived from one session to the next/);
    const named = /^ {27}the leak starts with command "(\w+)" (\{.*\}) \(the (\d+)(?:st|nd|rd|th) of session 2's (\d+) commands, applied at frame (\d+)\): .* \((\d+) probes, (\d+) ms\)$/m.exec(r.out);
    expect(named, r.out).not.toBeNull();
    const [, name, args, index, of, at, probes] = named!;
    expect(name).toBe('stamp');
    const file = /^ {27}session 2's journal: (\S+\.jsonl) \(framehost replay FILE --out DIR/m.exec(r.out)?.[1];
    expect(file, r.out).toBeDefined();
    journals.push(dirname(file!));
    // The journal is the one check replayed: its first stamp is the command named, every command before it is a per-session one.
    const applied = appliedCommands(readFileSync(file!, 'utf8'));
    expect(applied.length).toBe(Number(of));
    const first = applied.findIndex((c) => c.name === 'stamp');
    expect(first + 1).toBe(Number(index));
    expect(first, 'the seed should put other commands before the first stamp').toBeGreaterThan(0);
    expect(JSON.parse(args!)).toEqual(applied[first]!.args);
    expect(Number(at)).toBe(applied[first]!.at);
    expect(Number(probes)).toBeLessThanOrEqual(Math.ceil(Math.log2(applied.length)) + 2);
    expect(readdirSync(dirname(file!))).toEqual([basename(file!)]);

    // A loop that writes module-level state leaks without any command, and check says so.
    expect(loop.code, loop.out).toBe(1);
    journals.push(...[...loop.out.matchAll(/session 2's journal: (\S+)\/session-/g)].map((m) => m[1]!));
    expect(loop.out).toMatch(/^ {27}the leak needs no command: a replayed session with no command already changes the next one/m);

    // No random command: the leak came from the command step, and session 1's journal names its stamp (the 3rd command there).
    expect(noRandom.code, noRandom.out).toBe(1);
    journals.push(...[...noRandom.out.matchAll(/session 1's journal: (\S+)\/session-/g)].map((m) => m[1]!));
    expect(noRandom.out).toMatch(/^ {27}replaying session 2's 0 commands twice in one worker gave the same frames both times/m);
    expect(noRandom.out).toMatch(/^ {27}the leak starts with command "stamp" \{"x":0\.5,"y":0\.5\} \(the 3rd of session 1's 3 commands, applied at frame \d+\)/m);
  });

  it('reads the applied commands of a journal in the order the worker applied them, and names them with their place', () => {
    const text = [
      '{"type":"session","format":1}',
      '{"type":"command","n":1,"name":"b","args":{"v":2},"at":5,"check":9,"ms":1}',
      '{"type":"command","n":2,"name":"a","args":{},"at":3,"check":4,"ms":2}',
      '{"type":"command","n":3,"name":"late","args":{},"applied":false,"ms":3}',
      '{"type":"command","n":4,"name":"c","ar', // a torn last line
    ].join('\n');
    const applied = appliedCommands(text);
    expect(applied.map((c) => [c.index, c.name, c.at])).toEqual([
      [1, 'a', 3],
      [2, 'b', 5],
    ]);
    expect(describeCommand(applied[1]!, 2, 2)).toBe('"b" {"v":2} (the 2nd of session 2\'s 2 commands, applied at frame 5)');
    const nth = (index: number): string => describeCommand({ ...applied[0]!, index }, 200, 1).match(/the (\w+) of/)![1]!;
    expect([1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 111].map(nth)).toEqual(['1st', '2nd', '3rd', '4th', '11th', '12th', '13th', '21st', '22nd', '23rd', '101st', '111th']);
  });

  it('compares shapes only for a model that declares deterministic: false, and fails one that does not declare it', { timeout: 90_000 }, async () => {
    const [declared, undeclared] = await Promise.all([check([`${FIXTURES}/random.ts`]), check([`${FIXTURES}/random.ts`], { FRAMEHOST_CHECK_UNDECLARED: '1' })]);
    expect(declared.code, declared.out).toBe(0);
    expect(declared.lines.get('isolation')).toMatch(/^ok deterministic: false, so only shapes compared/);
    expect(undeclared.code, undeclared.out).toBe(1);
    expect(undeclared.lines.get('isolation')).toMatch(/^FAIL two fresh loads gave different first 3 frames: the model is not deterministic\. If that is by design, declare deterministic: false/);
    // Session 1's journal, replayed through a fresh load, differs at once: the loop varies by itself.
    expect(undeclared.out).toMatch(/^ {27}replaying session 1 through a fresh load, frame 0 is the first that differs from the recording, before any command was applied/m);
    const kept = /^ {27}session 1's journal: (\S+)\/session-\S+\.jsonl \(framehost replay/m.exec(undeclared.out)?.[1];
    expect(kept, undeclared.out).toBeDefined();
    journals.push(kept!);
  });

  it('fails a model whose load throws, with its message, and stops there', { timeout: 60_000 }, async () => {
    const r = await check([`${FIXTURES}/load-fails.ts`]);
    expect(r.code, r.out).toBe(1);
    expect(r.lines.get('load'), r.out).toMatch(/^FAIL .*weights\.bin is missing/);
    expect(r.out).toMatch(/^FAILED: 0 passed, 1 failed$/m);
  });

  it('loads a TypeScript model from a CommonJS folder, importing framehost by name', { timeout: 60_000 }, async () => {
    const r = await check([`${FIXTURES}/cjs/model.ts`]);
    expect(r.code, r.out).toBe(0);
    expect(r.lines.get('load')).toMatch(/^ok check-cjs 1\.0\.0/);
  });

  it('loads a .cts model, importing framehost by name (the README lists .cts)', { timeout: 60_000 }, async () => {
    const r = await check([`${FIXTURES}/cjs/model.cts`]);
    expect(r.code, r.out).toBe(0);
    expect(r.lines.get('load')).toMatch(/^ok check-cts 1\.0\.0/);
  });

  it('exits 2 with one line and a hint for a missing or misspelled model', { timeout: 30_000 }, async () => {
    const [missing, typo, none] = await Promise.all([check(['/nonexistent/model.ts']), check(['video-filtr']), check([])]);
    expect(missing.code).toBe(2);
    expect(missing.out).toMatch(/^framehost: check: --model \/nonexistent\/model\.ts: no such file \(\/nonexistent\/model\.ts\); built-ins: gray-scott, video-filter, vae-decoder$/m);
    expect(missing.out).not.toMatch(/\n\s+at /); // no stack trace
    expect(typo.code).toBe(2);
    expect(typo.out).toMatch(/^framehost: check: no model "video-filtr": did you mean the built-in video-filter\?$/m);
    expect(none.code).toBe(2);
    expect(none.out).toMatch(/which model\? framehost check \.\/model\.ts/);
  });

  it('checks FRAMEHOST_ORT_THREADS as --threads (as serve does): exit 2, not ignored', { timeout: 30_000 }, async () => {
    const [word, many] = await Promise.all([check(['gray-scott'], { FRAMEHOST_ORT_THREADS: 'four' }), check(['gray-scott'], { FRAMEHOST_ORT_THREADS: '999' })]);
    for (const r of [word, many]) {
      expect(r.code, r.out).toBe(2);
      expect(r.out).toMatch(/^framehost: check: --threads /m);
    }
  });
});
