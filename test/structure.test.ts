/**
 * The shape of src/: short functions, no import circles, no import from a lower layer up to a
 * higher one. Measured from the TypeScript AST (test/helpers/source-tree.ts).
 *
 * Long functions and upward imports start as a ratchet: today's offenders are listed with their
 * length as a ceiling, and the list may only shrink. A new offender, a listed one that grows,
 * and a listed one that is fixed but still listed all fail, so the list always says what is left.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { closureState, cycles, functionLengths, importsOf, sourceFiles } from './helpers/source-tree.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FILES = sourceFiles(ROOT, 'src');

/** The longest a function may be, first line to last. */
const MAX_FUNCTION_LINES = 80;

/** Functions still longer than MAX_FUNCTION_LINES, with their length as the ceiling (none left today). */
const LONG_FUNCTIONS: Readonly<Record<string, number>> = {
};

/**
 * `let`s that a nested function assigns, left as they are: each lives for one call (a timer raced
 * once, an accumulator of one report, a one-shot guard) or is the whole point of its function (a
 * generator's seed). Anything else that outlives its call belongs in a named class or a chart.
 * Listed with why; the list may only shrink.
 */
const CLOSURE_STATE: Readonly<Record<string, string>> = {
  'src/check/narrow.ts: replayedHashes: timer': 'one call: the timer of one race, cleared before it returns',
  'src/fleet/client.ts: boundConnect/<anon>: late': 'one call: whether this connect outlived its bound',
  'src/journal/replay-script.ts: parseJournal: readsWithoutBytes': 'one call: counted while one journal is parsed',
  'src/page/webrtc.ts: readStats: bytes': 'one call: summed over one stats report',
  'src/page/webrtc.ts: readStats: codecId': 'one call: read from one stats report',
  'src/page/webrtc.ts: readStats: decoded': 'one call: summed over one stats report',
  'src/page/webrtc.ts: readStats: dropped': 'one call: summed over one stats report',
  'src/page/webrtc.ts: readStats: fps': 'one call: read from one stats report',
  'src/page/webrtc.ts: readStats: jitterBufferMs': 'one call: read from one stats report',
  'src/page/webrtc.ts: readStats: lost': 'one call: summed over one stats report',
  'src/page/webrtc.ts: readStats: rttMs': 'one call: read from one stats report',
  'src/transport/socket/connection-slots.ts: take: released': 'a one-shot guard: the release a slot hands out frees it once',
  'src/transport/webrtc/sdp.ts: boundBitrate: videoTypes': 'one call: gathered over one SDP',
  'src/transport/webrtc/whep.ts: readBody/<anon>: size': 'one call: the bytes of one request body',
  'src/transport/webrtc/whep.ts: drain: dropped': 'one call: the bytes of one refused request body, read and dropped',
  'src/util/random.ts: seededRandom: a': 'the generator is its state: mulberry32\'s one word',
};

/**
 * The layers, lowest first; a module may import from its own layer and the ones below. The
 * longest matching prefix of a path under src/ places it.
 */
const LAYERS: readonly { readonly path: string; readonly layer: number; readonly why: string }[] = [
  { path: 'errors.ts', layer: 0, why: 'the one table of error codes: a value every layer returns' },
  { path: 'util/', layer: 0, why: 'helpers that know nothing of framehost: emitters, PNG, option tables, the seeded generator' },
  { path: 'machines/', layer: 1, why: 'the charts and their types: pure, no I/O, the vocabulary of everything above' },
  { path: 'model/', layer: 2, why: 'the model API and its loader, typed by the charts\' events' },
  { path: 'gpu/', layer: 2, why: 'the execution providers a model\'s session runs on: the model API names them, and gpu/frames reads model frames' },
  { path: 'models/', layer: 2, why: 'the built-in models, written against the model API like anyone else\'s' },
  { path: 'charts/', layer: 2, why: 'draws the machines\' charts; read by the HTTP and fleet pages above' },
  { path: 'actors/', layer: 3, why: 'the inference worker and its actor: a model running, driven by the chart' },
  { path: 'runtime/', layer: 4, why: 'createRuntime(): the runtime chart with its actors, its record of the running session, its catch of the chart\'s answers' },
  { path: 'auth/', layer: 4, why: 'who may do what (tokens, principals, rights): checked by the transports and the fleet above' },
  { path: 'media/', layer: 4, why: 'the media pipeline (frames encoded once, outlets): what the transports attach viewers to' },
  { path: 'transport/', layer: 5, why: 'one server in front of one runtime: its options and the listen() that puts the parts together' },
  { path: 'transport/socket/', layer: 5, why: 'the Socket.IO protocol: its event map, validation, limits, the owner\'s control and the frame stream' },
  { path: 'transport/http/', layer: 5, why: 'the plain HTTP endpoints beside it: health, metrics, the page\'s files, the chart page and both SSE streams' },
  { path: 'transport/webrtc/', layer: 5, why: 'WebRTC viewers: signalling over Socket.IO, WHEP over HTTP, peers fed by the media room' },
  { path: 'client/', layer: 5, why: 'the typed client (framehost/client), on the protocol\'s own event map' },
  { path: 'page/', layer: 5, why: 'the browser page: the typed client in a browser, with its own tsconfig (DOM types)' },
  { path: 'journal/', layer: 5, why: 'records a runtime\'s sessions and replays them through one' },
  { path: 'check/', layer: 5, why: 'the model author\'s conformance run, driving a runtime' },
  { path: 'transport/inspect.ts', layer: 5, why: 'a window onto running charts for the Stately inspector, beside the transports' },
  { path: 'fleet/', layer: 6, why: 'many runtimes behind a gateway: nodes and the gateway use the transports' },
  { path: 'cli/', layer: 7, why: 'the commands: each puts the layers below together' },
  { path: 'index.ts', layer: 8, why: 'the package\'s public entry: re-exports from every layer' },
];

/** Imports from a lower layer up to a higher one, still to be turned around. */
const UPWARD_IMPORTS: readonly string[] = [
  // The runtime opens a session's journal (and its LiveSession holds it); turning this around
  // (the journal subscribing to the runtime's events) is left for the move of the runtime's parts
  // into a folder of their own.
  'src/runtime/runtime.ts -> src/journal/recorder.ts',
  'src/runtime/live-session.ts -> src/journal/recorder.ts',
];

function layerOf(file: string): number | undefined {
  const inSrc = file.replace(/^src\//, '');
  const matches = LAYERS.filter((l) => inSrc === l.path || (l.path.endsWith('/') && inSrc.startsWith(l.path)));
  return matches.sort((a, b) => b.path.length - a.path.length)[0]?.layer;
}

const GRAPH = new Map(FILES.map((file) => [file, importsOf(ROOT, file)] as const));

describe('src/ structure', () => {
  it(`has no function longer than ${MAX_FUNCTION_LINES} lines beyond the listed ones, and none of those grows`, () => {
    const long = FILES.flatMap((file) => functionLengths(ROOT, file)).filter((f) => f.lines > MAX_FUNCTION_LINES);
    const measured = Object.fromEntries(long.map((f) => [f.key, f.lines]));
    const grown = long.filter((f) => f.lines > (LONG_FUNCTIONS[f.key] ?? MAX_FUNCTION_LINES)).map((f) => `${f.key}: ${f.lines} lines (ceiling ${LONG_FUNCTIONS[f.key] ?? MAX_FUNCTION_LINES})`);
    expect(grown, 'new or grown long functions: split them').toEqual([]);
    const fixed = Object.keys(LONG_FUNCTIONS).filter((key) => !(key in measured));
    expect(fixed, 'short now (or gone): remove them from LONG_FUNCTIONS').toEqual([]);
  });

  it('keeps no state in closures beyond the listed ones', () => {
    const found = FILES.flatMap((file) => closureState(ROOT, file));
    expect(found.filter((key) => !(key in CLOSURE_STATE)), 'state shared by closures: give it a named class').toEqual([]);
    expect(Object.keys(CLOSURE_STATE).filter((key) => !found.includes(key)), 'gone: remove them from CLOSURE_STATE').toEqual([]);
  });

  it('finds state in a closure (the check checked)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'closure-'));
    writeFileSync(join(dir, 'a.ts'), 'export function counter() {\n  let n = 0;\n  let fixed = 1;\n  fixed = 2;\n  return { up: () => n++, fixed };\n}\n');
    expect(closureState(dir, 'a.ts')).toEqual(['a.ts: counter: n']);
  });

  it('imports only modules that exist', () => {
    const missing = [...GRAPH].flatMap(([file, imports]) => imports.filter((to) => !existsSync(`${ROOT}/${to}`)).map((to) => `${file} -> ${to}`));
    expect(missing).toEqual([]);
  });

  it('has no import circle (type-only imports included)', () => {
    expect(cycles(GRAPH)).toEqual([]);
  });

  it('places every module in a layer', () => {
    expect(FILES.filter((file) => layerOf(file) === undefined)).toEqual([]);
  });

  it('imports from its own layer or lower, beyond the listed upward imports', () => {
    const upward = [...GRAPH].flatMap(([file, imports]) => imports.filter((to) => layerOf(to)! > layerOf(file)!).map((to) => `${file} -> ${to}`));
    expect(upward.filter((edge) => !UPWARD_IMPORTS.includes(edge)), 'imports up a layer: turn them around').toEqual([]);
    expect(UPWARD_IMPORTS.filter((edge) => !upward.includes(edge)), 'fixed: remove them from UPWARD_IMPORTS').toEqual([]);
  });

  it('has one seeded generator: mulberry32 in src/util/random.ts, and no copy of it in src/, test/ or bench/', () => {
    // Its increment constant marks a copy, whatever the copy is called.
    const files = ['src', 'test', 'bench'].flatMap((dir) => sourceFiles(ROOT, dir));
    expect(files.length).toBeGreaterThan(FILES.length);
    const copies = files.filter((file) => /0x6d2b79f5/i.test(readFileSync(`${ROOT}/${file}`, 'utf8')) && file !== 'test/structure.test.ts');
    expect(copies).toEqual(['src/util/random.ts']);
  });

  it('finds a circle (the check checked)', () => {
    expect(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]]))).toEqual([['a', 'b', 'c']]);
    expect(cycles(new Map([['a', ['a']]]))).toEqual([['a']]);
    expect(cycles(new Map([['a', ['b']], ['b', []]]))).toEqual([]);
  });
});
