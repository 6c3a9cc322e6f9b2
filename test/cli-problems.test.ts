/** The command line's checks of a `--model` argument (src/cli/problems.ts), without a process. */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { checkModelArgument } from '../src/cli/problems.ts';
import { UsageError } from '../src/cli/args.ts';

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
