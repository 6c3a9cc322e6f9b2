/** The command line's checks of a `--model` argument (src/cli/problems.ts), without a process. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { checkModelArgument } from '../src/cli/problems.ts';
import { UsageError } from '../src/cli/args.ts';
import { FramehostError } from '../src/errors.ts';
import { BIN } from './helpers/cli.ts';

const base = mkdtempSync(join(tmpdir(), 'framehost-problems-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('checkModelArgument', () => {
  it('takes a file: URL of a file whose path has a space or a non-ASCII letter (the URL escapes them)', () => {
    const dir = join(base, 'my world ü');
    mkdirSync(dir);
    const file = join(dir, 'model.ts');
    writeFileSync(file, 'export default {};\n');
    const url = pathToFileURL(file).href;
    expect(url).toContain('%20');
    expect(() => checkModelArgument(url)).not.toThrow();
    expect(() => checkModelArgument(file)).not.toThrow();
  });

  it('refuses a file: URL of a file that does not exist, naming the path', () => {
    const missing = pathToFileURL(join(base, 'no such', 'model.ts')).href;
    expect(() => checkModelArgument(missing)).toThrow(UsageError);
    expect(() => checkModelArgument(missing)).toThrow(`(${join(base, 'no such', 'model.ts')})`);
  });
});

describe('checkModelArgument, a file: URL of another host', () => {
  it('is a usage error, not a crash', () => {
    expect(() => checkModelArgument('file://elsewhere/model.ts')).toThrow(UsageError);
  });
});

describe('a usage error', () => {
  it('carries bad_usage from the one table and keeps its own message, which main prints as the one line', () => {
    const err = new UsageError('--port must be an integer in 0..65535, got "x"');
    expect(err).toBeInstanceOf(FramehostError);
    expect(err.code).toBe('bad_usage');
    expect(err.message).toBe('--port must be an integer in 0..65535, got "x"');
    expect(err.toValue()).toEqual({ code: 'bad_usage', message: err.message });
  });

  it('from the real command line: one line naming the mistake, the usage hint, exit 2', async () => {
    const child = spawn(process.execPath, [BIN, 'token', '--role', 'king', '--token-key', 'k'.repeat(32)], { env: { ...process.env, FRAMEHOST_TOKEN_KEY: '' } });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const [code] = (await once(child, 'close')) as [number | null];
    expect(code).toBe(2);
    expect(stderr).toBe('framehost: token: --role must be one of player, spectator, operator\nUsage: framehost token --role player|spectator|operator [--ttl 10m] [--sub ID] --token-key SECRET|PEM (framehost token --help for every option)\n');
  }, 30_000);
});
