/**
 * Every fenced code block of the README and the guides in docs/, exercised by a test. COVERAGE
 * names each block (its file and the start of its first line) and how it is checked; a block
 * that is added without an entry, or an entry whose block is gone, fails the first test.
 *
 * - TypeScript: every block typechecks against the real API (one tsc run over them all, each
 *   with the few names it leaves to the reader declared); the ones that can run here also run
 *   (here, or in test/readme.test.ts for the three it has always run).
 * - Shell: every `framehost` command line parses with the real CLI's option tables, every
 *   `npm run`/`npm start`/`npm test` names a script that exists, every file named exists; the
 *   cheap ones run (the headless pipeline, curl against a `framehost serve` started here with the
 *   block's flags, redis-server with the fleet's flags). Commands that cannot run here are listed
 *   with the reason (ALLOWED_COMMANDS).
 * - Text: the usage synopsis against the option tables (both ways), the folder tree against
 *   src/, `framehost check`'s output against its real run (readme.test.ts) and its messages; the
 *   mermaid chart's states and transitions against the runtime machine.
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChildRpc } from '../bench/child-rpc.ts';
import { COMMON_OPTIONS, parseCommandLine, SUBCOMMANDS, type SubcommandName } from '../src/cli/args.ts';
import { chartGraph } from '../src/machines/chart-graph.ts';
import { runtimeMachine } from '../src/machines/runtime.machine.ts';
import { childPool, ROOT } from './helpers/child.ts';
import { BIN } from './helpers/cli.ts';
import { startRedis } from './helpers/redis.ts';
import type { ReceiversRequest } from './helpers/wrtc-receivers.ts';

type How =
  | 'run' // run here (or in readme.test.ts), and typechecked
  | 'typecheck' // typechecked against the real API; running needs what is not here (named in `why`)
  | 'shell' // command lines checked against the CLI's tables, npm's scripts and the files; `why` says what runs
  | 'synopsis' // the usage text against the option tables
  | 'tree' // the folder tree against src/
  | 'output' // a sample of `framehost check`'s output
  | 'diagram'; // a drawing: mermaid checked against the machine; a text drawing's names against the sources

interface Coverage {
  readonly file: string;
  /** The start of the block's first line. */
  readonly first: string;
  readonly how: How;
  readonly why: string;
}

const COVERAGE: readonly Coverage[] = [
  { file: 'README.md', first: 'npm ci && npm start', how: 'shell', why: 'the scripts exist; `npm ci` needs the registry' },
  { file: 'README.md', first: 'npm pack && node bin/framehost.mjs init ../my-world', how: 'shell', why: 'init runs in readme.test.ts; the scripts are those init writes; `npm pack` runs in test/installed.test.ts; `npm install` needs the registry' },
  { file: 'README.md', first: "import * as ort from 'onnxruntime-node';", how: 'run', why: 'readme.test.ts: what init writes, and framehost check passes it' },
  { file: 'README.md', first: 'framehost check ./model.ts', how: 'output', why: 'its steps and summary against a real run in readme.test.ts' },
  { file: 'docs/architecture.md', first: 'src/', how: 'tree', why: 'every path exists and every folder of src/ is named' },
  { file: 'docs/architecture.md', first: 'stateDiagram-v2', how: 'diagram', why: "states and transitions against the runtime machine's definition" },
  { file: 'docs/embedding.md', first: "import { pino } from 'pino';", how: 'run', why: 'runs as a program of its own with the built-in model' },
  { file: 'docs/fleet.md', first: 'client ──ride:request──▶ gateway', how: 'diagram', why: 'the events it names are those of src/fleet' },
  { file: 'docs/fleet.md', first: '# Redis: one primary with AOF', how: 'shell', why: 'redis-server runs with its flags; the framehost lines parse (they need Redis, secrets and public hosts to run)' },
  { file: 'docs/fleet.md', first: "import { FleetClient } from 'framehost/fleet';", how: 'typecheck', why: 'needs a gateway, Redis and a node (test/fleet.test.ts runs the same calls)' },
  { file: 'docs/gpu.md', first: 'npm pkg set allowScripts.onnxruntime-node=true', how: 'shell', why: 'needs an NVIDIA GPU and the registry' },
  { file: 'docs/gpu.md', first: '# on a machine with the registry', how: 'shell', why: 'needs an NVIDIA GPU and the registry; the gpu:cuda flags are checked against scripts/gpu-cuda.ts' },
  { file: 'docs/gpu.md', first: 'npm run device:pack', how: 'shell', why: 'needs the device machine' },
  { file: 'docs/journals.md', first: 'npx framehost serve --record journals', how: 'shell', why: 'a user plays between the lines; test/journal.test.ts records and replays' },
  { file: 'docs/media.md', first: 'framehost serve --viewers broadcast &', how: 'shell', why: 'runs: the server with its flags, the curl lines against it, the offer a libwebrtc viewer makes' },
  { file: 'docs/production.md', first: 'framehost serve [--host 127.0.0.1]', how: 'synopsis', why: 'each line names its subcommand\'s options, and every option is shown' },
  { file: 'docs/production.md', first: "printf '%s\\n' '{\"type\":\"start\"}'", how: 'shell', why: 'runs: the pipeline writes its frames' },
  { file: 'docs/production.md', first: 'docker build -t framehost .', how: 'shell', why: 'needs a Docker daemon and the registry; the Dockerfile exists' },
  { file: 'docs/production.md', first: "import { createServer, type IncomingMessage } from 'node:http';", how: 'run', why: 'readme.test.ts: serves tokens a framehost admits' },
  { file: 'docs/production.md', first: 'curl -N -H "Authorization: Bearer $FRAMEHOST_AUTH_TOKEN"', how: 'shell', why: 'runs against framehost serve --auth-token' },
  { file: 'docs/protocol.md', first: "import { FramehostClient } from 'framehost/client';", how: 'run', why: 'runs as a program of its own against a framehost serve started here' },
  { file: 'docs/writing-a-model.md', first: "import * as ort from 'onnxruntime-node';", how: 'run', why: 'readme.test.ts: framehost check passes it' },
  { file: 'docs/writing-a-model.md', first: "import type { Frame } from 'framehost';", how: 'typecheck', why: 'a helper a loop calls; typechecked against the Frame type (its arithmetic: a [-1, 0, 1] plane gives 0, 128, 255, checked by hand)' },
  { file: 'docs/writing-a-model.md', first: 'preset: {', how: 'typecheck', why: "a fragment of gray-scott's commands, typechecked inside a model" },
  { file: 'docs/writing-a-model.md', first: 'export default defineModel({', how: 'typecheck', why: 'a fragment (`// …` stands for the rest of a model), typechecked with a minimal rest' },
  { file: 'docs/writing-a-model.md', first: 'framehost check ./model.ts', how: 'output', why: 'as the README\'s' },
  { file: 'docs/writing-a-model.md', first: '  FAIL  isolation', how: 'output', why: 'its messages are the ones src/check/ writes' },
  { file: 'docs/writing-a-model.md', first: 'npm pkg set allowScripts.onnxruntime-node=false', how: 'shell', why: 'needs the registry (test/installed.test.ts installs the packed tarball)' },
];

/** Commands other than framehost and npm that blocks may use, and why they are not run here. */
const ALLOWED_COMMANDS: Readonly<Record<string, string>> = {
  cd: 'the shell',
  export: 'the shell',
  echo: 'the shell',
  printf: 'the shell (run in the headless pipeline)',
  curl: 'run against a server started here where the block is marked so',
  'redis-server': 'run with the fleet block\'s flags',
  docker: 'no Docker daemon here',
  bash: 'the script it names must exist',
};

interface Block {
  readonly file: string;
  readonly line: number;
  readonly lang: string;
  readonly text: string;
}

const GUIDES = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];

/** The fenced blocks of a file, indented ones (inside a list) included, their indentation removed. */
function blocksOf(file: string): Block[] {
  const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^( *)```(\S*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const indent = open[1]!.length;
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !/^ *```\s*$/.test(lines[j]!)) body.push(lines[j++]!.slice(indent));
    expect(j, `${file}:${i + 1}: an unclosed block`).toBeLessThan(lines.length);
    blocks.push({ file, line: i + 1, lang: open[2]!, text: `${body.join('\n')}\n` });
    i = j;
  }
  return blocks;
}

const BLOCKS = GUIDES.flatMap(blocksOf);
const entryOf = (b: Block): Coverage[] => COVERAGE.filter((c) => c.file === b.file && b.text.startsWith(c.first));
function block(file: string, first: string): string {
  const found = BLOCKS.filter((b) => b.file === file && b.text.startsWith(first));
  expect(found, `${file}: the block starting ${first}`).toHaveLength(1);
  return found[0]!.text;
}

/** The command lines of a shell block: continuations joined, comments dropped, split at `&&`, `|`, `;` and `&`. */
export function commandsOf(text: string): string[][] {
  const out: string[][] = [];
  for (const line of text.replace(/\\\n/g, ' ').split('\n')) {
    let words: string[] = [];
    let word: string | null = null;
    let quote: string | null = null;
    const end = (): void => {
      if (word !== null) words.push(word);
      word = null;
    };
    for (let i = 0; i < line.length; i++) {
      const c = line[i]!;
      if (quote) {
        if (c === quote) quote = null;
        else word += c;
      } else if (c === "'" || c === '"') {
        quote = c;
        word ??= '';
      } else if (c === '#' && word === null) break;
      else if (/\s/.test(c)) end();
      else if ((c === '&' || c === '|' || c === ';') && !(c === '&' && line[i + 1] === '1')) {
        end();
        if (line[i + 1] === c) i++;
        if (words.length > 0) out.push(words);
        words = [];
      } else word = (word ?? '') + c;
    }
    expect(quote, `an unclosed quote in: ${line}`).toBeNull();
    end();
    if (words.length > 0) out.push(words);
  }
  return out;
}

const children = childPool();
const WORK = join(ROOT, 'test-output', 'docs-blocks');
afterAll(async () => {
  await children.killAll();
  rmSync(WORK, { recursive: true, force: true });
});

describe('the code blocks of the README and the guides', () => {
  it('each is covered: one COVERAGE entry per block, and no entry without its block', () => {
    expect(BLOCKS.length).toBeGreaterThan(20);
    const uncovered = BLOCKS.filter((b) => entryOf(b).length !== 1).map((b) => `${b.file}:${b.line} (${b.lang || 'text'}): ${entryOf(b).length} entries; starts ${JSON.stringify(b.text.split('\n')[0])}`);
    expect(uncovered).toEqual([]);
    const stale = COVERAGE.filter((c) => !BLOCKS.some((b) => b.file === c.file && b.text.startsWith(c.first))).map((c) => `${c.file}: ${c.first}`);
    expect(stale).toEqual([]);
    // TypeScript is run or typechecked; nothing is skipped by its language alone.
    const tsNotChecked = BLOCKS.filter((b) => b.lang === 'ts' && !['run', 'typecheck'].includes(entryOf(b)[0]!.how));
    expect(tsNotChecked).toEqual([]);
  });
});

/**
 * Each TypeScript block as a file to typecheck: the names a block leaves to the reader declared
 * after it, and the two fragments put inside the smallest model that holds them.
 */
const PALETTES_MODULE = '../../../src/models/gray-scott/palettes.ts';
const MINIMAL_MODEL = "name: 'fragment', version: '0.0.0', async load() { return {}; }, createSessionState: () => ({}), commands: {},";
function typecheckSource(b: Block): string {
  const first = entryOf(b)[0]!.first;
  if (first === 'preset: {') {
    return [
      "import { defineModel, t } from 'framehost';",
      `import { PRESETS, PRESET_NAMES } from '${PALETTES_MODULE}';`,
      "export default defineModel({ name: 'fragment', version: '0.0.0', async load() { return {}; },",
      '  createSessionState: () => ({ feed: new Float32Array(1), kill: new Float32Array(1) }),',
      '  commands: {',
      b.text,
      '  },',
      '  async loop() {},',
      '});',
    ].join('\n');
  }
  if (first === 'export default defineModel({') {
    expect(b.text).toContain('// …');
    return `import { defineModel } from 'framehost';\n${b.text.replace('// …', MINIMAL_MODEL)}`;
  }
  const declared: Record<string, string> = {
    'docs/embedding.md': 'declare function save(data: Uint8Array, width: number, height: number): void;',
    'docs/fleet.md': 'declare function show(text: string): void;\ndeclare function draw(meta: unknown, data: unknown): void;',
    'docs/protocol.md': 'declare function draw(meta: unknown, data: unknown): void;\ndeclare const rgbaBytes: Uint8Array;',
  };
  return `${b.text}\n${declared[b.file] ?? ''}\n`;
}

/** Run a TypeScript block as a user runs a program: `framehost` resolves to this checkout's sources. */
async function runProgram(name: string, source: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string }> {
  const dir = join(WORK, 'run');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), source);
  const child = children.start(['--conditions=framehost-source', '--import', 'tsx', name], { cwd: dir, env: { ...process.env, FRAMEHOST_LOG_LEVEL: 'warn', ...env } });
  const exit = await child.exitWithin(60_000);
  return { code: exit.code, out: `${child.stdout}\n${child.stderr}` };
}

describe('the TypeScript blocks that run here', () => {
  it('docs/embedding.md: starts a runtime with the built-in model, commands a session, stops it and shuts down', { timeout: 90_000 }, async () => {
    const source = block('docs/embedding.md', "import { pino } from 'pino';");
    const r = await runProgram('embedding.ts', `${source}\nfunction save(data: Uint8Array, width: number, height: number): void { if (data.length !== width * height * 4) throw new Error('not rgba'); }\nconsole.log('embedding: done', JSON.stringify(s));\n`);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/^embedding: done \{"ok":true,"sessionId":"[^"]+"\}$/m);
  });

  it('docs/protocol.md: the client connects to a framehost serve, starts, commands, publishes and stops', { timeout: 90_000 }, async () => {
    const url = await serve([]);
    const source = block('docs/protocol.md', "import { FramehostClient } from 'framehost/client';").replace("'http://127.0.0.1:3000'", JSON.stringify(url));
    const prelude = 'let frames = 0;\nfunction draw(meta: { width: number }, data: Uint8Array): void { if (data.length > 0 && meta.width > 0) frames++; }\nconst rgbaBytes = new Uint8Array(256 * 256 * 4);\n';
    // The names the block leaves to the reader come first (imports are hoisted above them anyway).
    const r = await runProgram('protocol.ts', `${prelude}${source}\nconsole.log('protocol: done', token.length > 0, frames >= 0);\nclient.close();\n`);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/^protocol: done true true$/m);
  });
});

/** What is wrong with one command line of a shell block (nothing: []). */
function problemsOf(words: readonly string[], scripts: Readonly<Record<string, string>>): string[] {
  const w = [...words];
  while (w.length > 0 && /^[A-Z_][A-Z0-9_]*=/.test(w[0]!)) w.shift(); // VAR=value before a command
  if (w[0] === 'npx') w.shift();
  if (w[0] === 'node' && w[1] === 'bin/framehost.mjs') w.splice(0, 2, 'framehost'); // the command, from a checkout
  const [cmd, ...rest] = w;
  if (cmd === 'framehost') {
    const [sub, ...args] = rest;
    if (sub === '--help') return [];
    if (!sub || !(sub in SUBCOMMANDS)) return [`framehost: no subcommand ${sub}`];
    try {
      parseCommandLine(sub as SubcommandName, args, {});
      return [];
    } catch (err) {
      return [`framehost ${sub}: ${(err as Error).message}`];
    }
  }
  if (cmd === 'npm') {
    const [verb, name] = rest;
    if (verb === 'start' || verb === 'test') return scripts[verb] ? [] : [`npm ${verb}: no such script`];
    if (verb === 'run') return name && scripts[name] ? [] : [`npm run ${name}: no such script`];
    return ['ci', 'install', 'pkg', 'pack', 'rebuild'].includes(verb ?? '') ? [] : [`npm ${verb}: not an npm command this test knows`];
  }
  if (cmd === 'bash') return existsSync(join(ROOT, rest[0] ?? '')) ? [] : [`bash: no file ${rest[0]}`];
  return cmd && cmd in ALLOWED_COMMANDS ? [] : [`${cmd}: not in ALLOWED_COMMANDS`];
}

/** Flags a subcommand takes that the synopsis leaves out on purpose, and why. */
const NOT_IN_SYNOPSIS: Readonly<Record<string, string>> = {
  'check --model': 'the synopsis gives the model as MODEL, the positional; --model is the same',
  'token --token-public-key': 'taken with the shared key flags, but a public key only verifies: token refuses it',
};

const OWN_SCRIPTS = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

describe('the shell blocks', () => {
  it('name only framehost subcommands and flags the CLI accepts, npm scripts that exist, files that exist, and commands listed as allowed', { timeout: 60_000 }, async () => {
    // README's "five minutes" runs in the project framehost init writes: its scripts are init's.
    const project = join(WORK, 'init');
    rmSync(project, { recursive: true, force: true });
    const init = children.start([BIN, 'init', project]);
    expect((await init.exitWithin(30_000)).code, init.stderr).toBe(0);
    const initScripts = (JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    const shell = BLOCKS.filter((b) => b.lang === 'sh');
    expect(shell.every((b) => entryOf(b)[0]!.how === 'shell')).toBe(true);
    const problems = shell.flatMap((b) => {
      const scripts = b.text.startsWith('npm pack && node bin/framehost.mjs init') ? initScripts : OWN_SCRIPTS;
      return commandsOf(b.text).flatMap((words) => problemsOf(words, scripts).map((p) => `${b.file}:${b.line}: ${p}`));
    });
    // The command a sample output starts with.
    for (const b of BLOCKS.filter((x) => entryOf(x)[0]!.how === 'output' && x.text.startsWith('framehost '))) problems.push(...problemsOf(commandsOf(b.text.split('\n')[0]!)[0]!, OWN_SCRIPTS).map((p) => `${b.file}:${b.line}: ${p}`));
    expect(problems).toEqual([]);
    // The blocks' framehost lines, counted, so that a parser that finds none cannot pass.
    expect(shell.flatMap((b) => commandsOf(b.text)).filter((w) => w.includes('framehost')).length).toBeGreaterThanOrEqual(8);
  });

  it('the parser splits as a shell would (the check checked)', () => {
    expect(commandsOf("a --x 'q r' && b \"s t\" | c # note\nd \\\n  --e f &\n# only a comment\n")).toEqual([['a', '--x', 'q r'], ['b', 's t'], ['c'], ['d', '--e', 'f']]);
    expect(problemsOf(['framehost', 'serve', '--no-such-flag'], OWN_SCRIPTS)[0]).toMatch(/unknown option --no-such-flag/);
    expect(problemsOf(['npm', 'run', 'no-such-script'], OWN_SCRIPTS)).toEqual(['npm run no-such-script: no such script']);
    expect(problemsOf(['rm', '-rf', '/'], OWN_SCRIPTS)).toEqual(['rm: not in ALLOWED_COMMANDS']);
  });

  it('docs/gpu.md: the gpu:cuda flags are the script\'s', () => {
    const script = readFileSync(join(ROOT, 'scripts', 'gpu-cuda.ts'), 'utf8');
    const line = commandsOf(block('docs/gpu.md', '# on a machine with the registry')).find((w) => w[2] === 'gpu:cuda')!;
    const flags = line.filter((w) => w.startsWith('--') && w !== '--');
    expect(flags).toEqual(['--from', '--ort-version']);
    for (const flag of flags) expect(script).toContain(`flag('${flag}')`);
  });

  it('docs/production.md: the synopsis names each subcommand\'s own flags, and every flag of every subcommand', () => {
    const text = block('docs/production.md', 'framehost serve [--host 127.0.0.1]');
    const shown = new Map<string, Set<string>>();
    let subs: string[] = [];
    for (const line of text.split('\n')) {
      const head = /^framehost ([a-z|]+)/.exec(line);
      if (head) subs = head[1]!.split('|');
      else if (/^framehost --help/.test(line)) subs = [];
      for (const flag of line.replace(/#.*$/, '').matchAll(/--([a-z][a-z-]*)/g)) for (const sub of subs) (shown.get(sub) ?? shown.set(sub, new Set()).get(sub)!).add(flag[1]!);
    }
    const wrong: string[] = [];
    const missing: string[] = [];
    for (const [sub, spec] of Object.entries(SUBCOMMANDS)) {
      const own = new Set([...Object.keys(COMMON_OPTIONS), ...Object.keys(spec.options)]);
      const flags = shown.get(sub) ?? new Set<string>();
      wrong.push(...[...flags].filter((f) => !own.has(f)).map((f) => `${sub} --${f}`));
      missing.push(...Object.keys(spec.options).filter((f) => !flags.has(f) && !(`${sub} --${f}` in NOT_IN_SYNOPSIS)).map((f) => `${sub} --${f}`));
    }
    expect([...shown.keys()].sort(), 'a line for each subcommand').toEqual(Object.keys(SUBCOMMANDS).sort());
    expect(wrong, 'flags the synopsis shows that the subcommand does not take').toEqual([]);
    expect(missing, 'flags the subcommand takes that the synopsis does not show').toEqual([]);
  });
});

/** A shell line run by bash in `cwd`, as the reader would (exec: a kill reaches the command itself). */
function bash(line: string, cwd: string, env: NodeJS.ProcessEnv = {}): { out: () => string; err: () => string; exited: Promise<number | null>; kill: () => void } {
  mkdirSync(cwd, { recursive: true });
  const proc = spawn('bash', ['-c', `exec ${line}`], { cwd, env: { ...process.env, ...env } });
  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  proc.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  const exited = once(proc, 'close').then(([code]) => code as number | null);
  return { out: () => out, err: () => err, exited, kill: () => void proc.kill('SIGKILL') };
}

/** `framehost serve` with a block's own flags and the ones a test needs (a free port); its URL once /ready answers 200. */
async function serve(flags: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const server = children.start([BIN, 'serve', ...flags, '--host', '127.0.0.1', '--port', '0', '--model-option', 'size=64'], { env: { ...process.env, FRAMEHOST_LOG_LEVEL: 'warn', ...env } });
  const url = (await server.waitFor('stderr', /open (http:\/\/127\.0\.0\.1:\d+) in a browser/, 60_000))[1]!;
  const deadline = Date.now() + 60_000;
  while ((await fetch(`${url}/ready`)).status !== 200) {
    if (Date.now() > deadline) throw new Error(`${url}/ready: not 200 within 60 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return url;
}

describe('the shell blocks that run here', () => {
  it('docs/production.md: the headless pipeline writes its frames', { timeout: 90_000 }, async () => {
    const dir = join(WORK, 'headless');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const text = block('docs/production.md', "printf '%s\\n' '{\"type\":\"start\"}'");
    const run = bash(text.replace(/\\\n/g, ' ').trim().replace('npx framehost', `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)}`), dir, { FRAMEHOST_LOG_LEVEL: 'warn', FRAMEHOST_MODEL_OPTION: '' });
    expect(await run.exited, run.err()).toBe(0);
    const frames = readdirSync(join(dir, 'frames')).filter((f) => /^frame-\d{6}\.png$/.test(f));
    expect(frames.length).toBeGreaterThanOrEqual(90); // 30 frames, the stamp, 60 more
  });

  it('docs/production.md: curl reads /events from framehost serve --auth-token', { timeout: 90_000 }, async () => {
    const secret = 'docs-blocks-shared-secret-0123456789';
    const url = await serve([], { FRAMEHOST_AUTH_TOKEN: secret });
    const line = block('docs/production.md', 'curl -N -H "Authorization: Bearer $FRAMEHOST_AUTH_TOKEN"').trim().replace('http://127.0.0.1:3000', url);
    expect(line).toContain(url);
    const curl = bash(line, WORK, { FRAMEHOST_AUTH_TOKEN: secret });
    const deadline = Date.now() + 20_000;
    while (!/^event: hello$/m.test(curl.out()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    curl.kill();
    expect(curl.out()).toMatch(/^event: hello$/m);
    const wrong = bash(line, WORK, { FRAMEHOST_AUTH_TOKEN: 'not-the-secret' });
    expect(await wrong.exited).toBe(0);
    expect(wrong.out()).toContain('"code":"unauthorized"');
  });

  it('docs/media.md: WHEP with curl: the server with the block\'s flags, a spectator token, offer → 201 and Location → DELETE', { timeout: 90_000 }, async () => {
    const text = block('docs/media.md', 'framehost serve --viewers broadcast &');
    const lines = commandsOf(text);
    expect(lines.map((w) => w[0])).toEqual(['framehost', 'curl', 'curl']);
    const key = 'docs-blocks-token-key-0123456789-abcdef';
    const url = await serve([...lines[0]!.slice(2), '--ice-host-addresses', '127.0.0.1', '--token-key', key]);
    const minted = bash(`${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} token --role spectator --token-key ${key}`, WORK);
    expect(await minted.exited, minted.err()).toBe(0);
    const env = { SPECTATOR_TOKEN: minted.out().trim() };
    const rx = new ChildRpc<ReceiversRequest>(new URL('./helpers/wrtc-receivers.ts', import.meta.url));
    try {
      const dir = join(WORK, 'whep');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'offer.sdp'), (await rx.ask<{ sdp: string }>({ type: 'offer' })).sdp);
      const [post, del] = text.replace(/\\\n/g, ' ').split('\n').filter((l) => l.trim().startsWith('curl')).map((l) => l.trim().replaceAll('http://127.0.0.1:3000', url));
      const posted = bash(post!, dir, env);
      expect(await posted.exited, posted.err()).toBe(0);
      expect(posted.out()).toMatch(/^HTTP\/1\.1 201 Created\r?$/m);
      expect(posted.out()).toMatch(/^content-type: application\/sdp\r?$/im);
      const id = /^location: \/whep\/([0-9a-f-]{36})\r?$/im.exec(posted.out())?.[1];
      expect(id, posted.out()).toBeDefined();
      expect(posted.out()).toMatch(/^a=candidate:/m);
      const deleted = bash(del!.replace('<id>', id!), dir, env);
      expect(await deleted.exited, deleted.err()).toBe(0);
      expect(deleted.out()).toBe(''); // 200, no body
      const again = bash(del!.replace('<id>', id!), dir, env);
      expect(await again.exited).toBe(0);
      expect(again.out()).toContain('"code":"unknown_peer"'); // it was deleted
    } finally {
      await rx.close();
    }
  });

  it('docs/fleet.md: redis-server starts with the fleet\'s flags', { timeout: 60_000 }, async () => {
    const redisLine = commandsOf(block('docs/fleet.md', '# Redis: one primary with AOF')).find((w) => w[0] === 'redis-server')!;
    const redis = await startRedis({ args: redisLine.slice(1) });
    try {
      const config = execFileSync('redis-cli', ['-u', redis.url, 'config', 'get', 'maxmemory-policy'], { encoding: 'utf8' });
      expect(config.split('\n')[1]).toBe('noeviction');
      expect(execFileSync('redis-cli', ['-u', redis.url, 'config', 'get', 'appendonly'], { encoding: 'utf8' }).split('\n')[1]).toBe('yes');
    } finally {
      await redis.stop();
    }
  });
});

describe('the text blocks', () => {
  it('docs/architecture.md: every path in the folder tree exists, and every folder and file of src/ (and of src/transport/) is in it', () => {
    const text = block('docs/architecture.md', 'src/');
    const stack: { indent: number; path: string }[] = [];
    const paths: string[] = [];
    for (const line of text.split('\n')) {
      const m = /^( *)(\S+)(?: {2,}|$)/.exec(line);
      if (!m || (m[1]!.length > 0 && m[1]!.length % 2 !== 0) || m[1]!.length > 4 * 2) continue; // a description's wrapped line
      if (line.length > m[0].length && /^ {10,}/.test(line)) continue;
      const indent = m[1]!.length;
      while (stack.length > 0 && stack[stack.length - 1]!.indent >= indent) stack.pop();
      const path = `${stack[stack.length - 1]?.path ?? ''}${m[2]}`;
      paths.push(path);
      if (path.endsWith('/')) stack.push({ indent, path });
    }
    expect(paths.filter((p) => !existsSync(join(ROOT, p)))).toEqual([]);
    const listed = (dir: string): string[] => readdirSync(join(ROOT, dir)).map((name) => `${dir}${name}${statSync(join(ROOT, dir, name)).isDirectory() ? '/' : ''}`);
    const unnamed = [...listed('src/'), ...listed('src/transport/')].filter((p) => !paths.includes(p) && !(p.startsWith('src/transport/') && !p.endsWith('/') && p !== 'src/transport/inspect.ts'));
    expect(unnamed).toEqual([]);
    expect(paths.length).toBeGreaterThan(25);
  });

  it("docs/architecture.md: the mermaid chart's states and transitions are the runtime machine's", () => {
    const text = block('docs/architecture.md', 'stateDiagram-v2');
    const graph = chartGraph(runtimeMachine);
    const keys = new Set(graph.states.map((s) => s.key));
    const named = [...text.matchAll(/^\s*state (\w+) \{$/gm)].map((m) => m[1]!);
    const arrows = [...text.matchAll(/^\s*(\[\*\]|\w+) --> (\[\*\]|\w+)/gm)].map((m) => [m[1]!, m[2]!] as const);
    expect(arrows.length).toBeGreaterThan(20);
    const names = new Set([...named, ...arrows.flat()].filter((n) => n !== '[*]'));
    expect([...names].filter((n) => !keys.has(n))).toEqual([]);
    // A transition between the named states, or between states inside them (`alive --> recovering` leaves from any state in alive).
    const inside = (id: string, key: string): boolean => id.split('.').includes(key);
    const missing = arrows.filter(([a, b]) => a !== '[*]' && b !== '[*]').filter(([a, b]) => !graph.transitions.some((t) => inside(t.source, a) && inside(t.target, b)));
    expect(missing.map(([a, b]) => `${a} --> ${b}`)).toEqual([]);
  });

  it('docs/fleet.md: the drawing\'s events are the fleet\'s', () => {
    const text = block('docs/fleet.md', 'client ──ride:request──▶ gateway');
    const sources = ['src/fleet', 'src/transport/socket'].flatMap((dir) => readdirSync(join(ROOT, dir)).filter((f) => f.endsWith('.ts')).map((f) => readFileSync(join(ROOT, dir, f), 'utf8'))).join('\n');
    const events = ['ride:request', 'queue', 'assigned', 'session:start'];
    for (const e of events) {
      expect(text).toContain(e);
      expect(sources, e).toMatch(new RegExp(`['"\`]${e}['"\`]`));
    }
    expect(text).toContain('BullMQ queue `rides`');
    expect(SUBCOMMANDS.gateway.options.queue.description).toContain('default rides');
  });

  it('docs/writing-a-model.md: the FAIL sample says what src/check/ says', () => {
    const text = block('docs/writing-a-model.md', '  FAIL  isolation');
    const check = readdirSync(join(ROOT, 'src', 'check')).map((f) => readFileSync(join(ROOT, 'src', 'check', f), 'utf8')).join('\n');
    for (const phrase of ['keep per-session values in createSessionState', 'the leak starts with command', 'applied at frame', "'s journal: ", '(framehost replay FILE --out DIR plays it']) {
      expect(text, phrase).toContain(phrase);
      expect(check, phrase).toContain(phrase);
    }
  });
});

/**
 * Every TypeScript block typechecked in one tsc run, started before the other tests so that it
 * overlaps their children (it reads all of src/ through `framehost`: ~8 s alone, far longer on a
 * loaded machine); incremental, its build info kept in node_modules/.cache between runs.
 */
let typecheck: Promise<{ code: number | null; out: string }> | null = null;
beforeAll(() => {
  const dir = join(WORK, 'typecheck');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const b of BLOCKS.filter((x) => x.lang === 'ts')) writeFileSync(join(dir, `${b.file.replace(/[/.]/g, '-')}-${b.line}.ts`), typecheckSource(b));
  // This repository's settings (strict, NodeNext, `framehost` resolved to src/ by its export condition).
  const buildInfo = join(ROOT, 'node_modules', '.cache', 'framehost-docs-blocks', 'tsbuildinfo');
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ extends: '../../../tsconfig.json', include: ['*.ts'], exclude: [], compilerOptions: { incremental: true, tsBuildInfoFile: buildInfo } }));
  const tsc = spawn(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(dir, 'tsconfig.json')], { cwd: ROOT });
  let out = '';
  tsc.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  tsc.stderr.setEncoding('utf8').on('data', (c: string) => (out += c));
  typecheck = once(tsc, 'close').then(([code]) => ({ code: code as number | null, out }));
});

describe('the TypeScript blocks (last: tsc has run beside the tests above)', () => {
  it('typecheck against the real API', { timeout: 240_000 }, async () => {
    expect(BLOCKS.filter((b) => b.lang === 'ts').length).toBeGreaterThanOrEqual(8);
    const { code, out } = await typecheck!;
    expect(out).toBe('');
    expect(code).toBe(0);
  });
});
