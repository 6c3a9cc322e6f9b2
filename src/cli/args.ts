/**
 * The command line: `framehost <subcommand> [options]`, parsed with node:util `parseArgs`.
 *
 * One table per subcommand (SUBCOMMANDS) on top of the options every subcommand shares
 * (COMMON_OPTIONS). Adding a subcommand means adding a table entry here and a runner in
 * main.ts; parsing, environment fallbacks and `--help` follow from the tables.
 *
 * Precedence for the shared options: flag, then environment variable, then default.
 */
import { parseArgs } from 'node:util';
import { RECORD_OPTIONS } from '../journal/flags.ts';
import { MEDIA_OPTIONS } from './media-options.ts';
import { stringOption, UsageError, type OptionTable, type OptionValues, type RawValue } from '../util/option-table.ts';

// The option-table helpers live below the CLI (the journal's and media's flag tables use them
// too); the subcommands keep importing them from here, beside the parser.
export { intOption, stringOption, UsageError, type OptionSpec, type OptionTable } from '../util/option-table.ts';

export interface SubcommandSpec {
  readonly summary: string;
  readonly usage: string;
  readonly options: OptionTable;
  /** A positional argument (`framehost check MODEL`), if the subcommand takes one. */
  readonly positional?: { readonly name: string; readonly description: string };
  /** Default for `--log-level` when neither the flag nor FRAMEHOST_LOG_LEVEL is set. */
  readonly defaultLogLevel: LogLevel;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The built-in models, by the name `--model` takes. */
export const BUILTIN_MODELS = {
  'gray-scott': 'Gray-Scott reaction-diffusion, the default (also "demo"); click to stamp, commands for feed/kill/palette',
  'video-filter': 'edges or toon shading of the video the page sends from your camera (input track "camera")',
  'vae-decoder': 'a VAE-decoder-shaped network with random weights (frames are noise): a GPU workload to measure',
} as const;

/** Options of the subcommands that run a model (not the gateway). */
const MODEL_OPTIONS = {
  model: {
    type: 'string',
    valueName: 'PATH',
    description: `model module (.ts, .mts, .cts, .js, .mjs path, or URL) or a built-in: ${Object.keys(BUILTIN_MODELS).join(', ')}; default gray-scott [env FRAMEHOST_MODEL]`,
  },
  'model-option': { type: 'string', multiple: true, valueName: 'KEY=VALUE', description: 'pass an option to the model (repeatable; numeric values become numbers)' },
} as const satisfies OptionTable;

export const COMMON_OPTIONS = {
  'log-level': { type: 'string', valueName: 'LEVEL', description: `${LOG_LEVELS.join('|')} [env FRAMEHOST_LOG_LEVEL]` },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
} as const satisfies OptionTable;

/** Where the fleet's queue lives: the same for `serve --fleet` and `gateway`. */
const FLEET_QUEUE_OPTIONS = {
  redis: { type: 'string', valueName: 'URL', description: 'fleet: Redis URL of the queue, e.g. redis://127.0.0.1:6379 [env FRAMEHOST_REDIS_URL]' },
  queue: { type: 'string', valueName: 'NAME', description: 'fleet: queue name (default rides)' },
} as const satisfies OptionTable;

/** Access-token keys (src/auth/keys.ts): the same flags and variables for `serve`, `gateway` and `token`. */
const TOKEN_KEY_OPTIONS = {
  'token-key': { type: 'string', valueName: 'SECRET|PEM', description: 'access tokens: an HS256 secret (32+ characters) or the path of a PEM private key (Ed25519, P-256, RSA) to sign and verify with [env FRAMEHOST_TOKEN_KEY]' },
  'token-public-key': { type: 'string', valueName: 'FILES', description: 'access tokens: verify only, with these PEM public key or JWK Set files (comma-separated; several keys during a rotation) [env FRAMEHOST_TOKEN_PUBLIC_KEY]' },
  'token-max-ttl': { type: 'string', valueName: 'DURATION', description: 'access tokens: the longest lifetime (exp - iat) accepted or minted, e.g. 3600, 10m, 1d (default 1d) [env FRAMEHOST_TOKEN_MAX_TTL]' },
} as const satisfies OptionTable;

export const SUBCOMMANDS = {
  serve: {
    summary: 'serve the model over Socket.IO and HTTP (the demo page at /)',
    usage: 'framehost serve [--model PATH] [--host 127.0.0.1] [--port 3000] [--inspect] [options]',
    options: {
      ...MODEL_OPTIONS,
      host: { type: 'string', valueName: 'HOST', description: 'address to listen on (default 127.0.0.1) [env FRAMEHOST_HOST]' },
      port: { type: 'string', short: 'p', valueName: 'PORT', description: 'port (default 3000; 0 picks a free one) [env FRAMEHOST_PORT]' },
      inspect: { type: 'boolean', description: 'send the chart to the Stately inspector through a local relay [env FRAMEHOST_INSPECT=1]' },
      'inspect-port': { type: 'string', valueName: 'PORT', description: 'port of the local inspector relay (default 8080)' },
      'inspect-url': { type: 'string', valueName: 'WS_URL', description: 'send inspection events to this WebSocket instead of a local relay' },
      'auth-token': { type: 'string', valueName: 'SECRET', description: 'LAN mode: require this shared secret at the Socket.IO handshake and for /events [env FRAMEHOST_AUTH_TOKEN]' },
      ...TOKEN_KEY_OPTIONS,
      'metrics-port': { type: 'string', valueName: 'PORT', description: 'also serve /metrics alone, without credentials, on this port (keep it private) [env FRAMEHOST_METRICS_PORT]' },
      'metrics-host': { type: 'string', valueName: 'HOST', description: 'address of the --metrics-port listener (default 127.0.0.1)' },
      'cors-origin': { type: 'string', multiple: true, valueName: 'ORIGIN', description: 'allow browser pages from this origin (repeatable) [env FRAMEHOST_CORS_ORIGINS, comma-separated]' },
      'orphan-timeout': { type: 'string', valueName: 'MS', description: 'stop a session whose owner is gone this long (default 30000) [env FRAMEHOST_ORPHAN_TIMEOUT_MS]' },
      'stop-deadline': { type: 'string', valueName: 'MS', description: 'kill a loop that ignores stop after this long (default 5000)' },
      provider: { type: 'string', valueName: 'NAME', description: 'auto|cpu|webgpu|cuda|tensorrt (default auto: CUDA if installed, else WebGPU if a GPU device exists, else CPU) [env FRAMEHOST_PROVIDER]' },
      threads: { type: 'string', valueName: 'N', description: 'ONNX Runtime intra-op threads (default cores − 1, 1 to 4) [env FRAMEHOST_ORT_THREADS]' },
      // Fleet node (src/fleet/node.ts): take ride requests from a queue, admit ticket holders only.
      fleet: { type: 'boolean', description: 'run as a fleet node: take sessions from the gateway\'s queue (needs --redis and a secret)' },
      ...FLEET_QUEUE_OPTIONS,
      'public-url': { type: 'string', valueName: 'URL', description: 'fleet: the URL clients reach this node at (default: the listening URL) [env FRAMEHOST_PUBLIC_URL]' },
      secret: { type: 'string', valueName: 'SECRET', description: 'fleet: ticket secret shared by the fleet\'s nodes [env FRAMEHOST_FLEET_SECRET]' },
      lease: { type: 'string', valueName: 'MS', description: 'fleet: lease (BullMQ lock) on the user; renewed every lease/4 (default 5000)' },
      'stall-interval': { type: 'string', valueName: 'MS', description: 'fleet: how often to look for jobs of lost nodes (default 2000)' },
      'max-stalled': { type: 'string', valueName: 'N', description: 'fleet: requeues before a ride fails with node_lost (default 2)' },
      'no-show': { type: 'string', valueName: 'MS', description: 'fleet: release the node if the assigned user has not started by then (default 15000)' },
      'drain-deadline': { type: 'string', valueName: 'MS', description: 'fleet: at SIGTERM, stop the running session after this long (default 300000)' },
      ...RECORD_OPTIONS,
      ...MEDIA_OPTIONS,
    },
    defaultLogLevel: 'info',
  },
  headless: {
    summary: 'run sessions from JSON lines on stdin, write frames as PNG files, report events as JSON lines on stdout',
    usage: 'framehost headless --out DIR [--model PATH] [--frames N] [--input TRACK=DIR [--input-fps N]] [options] < commands.jsonl',
    options: {
      ...MODEL_OPTIONS,
      out: { type: 'string', short: 'o', valueName: 'DIR', description: 'directory for the PNG frames (created if missing; required)' },
      frames: { type: 'string', short: 'n', valueName: 'N', description: 'write at most N frames in all, then stop the session and exit' },
      input: {
        type: 'string',
        multiple: true,
        valueName: 'TRACK=DIR',
        description: "while a session runs, feed the *.png files of DIR (sorted by name, looping) into the model's input track TRACK (repeatable, one per track)",
      },
      'input-fps': { type: 'string', valueName: 'N', description: 'input frames per second fed into each --input track (1-120, default 10)' },
      ...RECORD_OPTIONS,
    },
    // Logs go to stderr in headless mode; keep them quiet so stderr stays readable next to stdout's JSON.
    defaultLogLevel: 'warn',
  },
  gateway: {
    summary: 'fleet gateway: queue clients for the fleet\'s nodes and send each to its node (no frames pass through)',
    usage: 'framehost gateway --redis URL [--host 127.0.0.1] [--port 3000] [options]',
    options: {
      host: { type: 'string', valueName: 'HOST', description: 'address to listen on (default 127.0.0.1) [env FRAMEHOST_HOST]' },
      port: { type: 'string', short: 'p', valueName: 'PORT', description: 'port (default 3000; 0 picks a free one) [env FRAMEHOST_PORT]' },
      ...FLEET_QUEUE_OPTIONS,
      'auth-token': { type: 'string', valueName: 'SECRET', description: 'LAN mode: require this shared secret at the Socket.IO handshake [env FRAMEHOST_AUTH_TOKEN]' },
      ...TOKEN_KEY_OPTIONS,
      'cors-origin': { type: 'string', multiple: true, valueName: 'ORIGIN', description: 'allow browser pages from this origin (repeatable) [env FRAMEHOST_CORS_ORIGINS, comma-separated]' },
      secret: { type: 'string', valueName: 'SECRET', description: 'optional: forward only assignments whose ticket verifies [env FRAMEHOST_FLEET_SECRET]' },
      'reconnect-grace': { type: 'string', valueName: 'MS', description: 'a waiting client gone this long leaves the queue (default 5000)' },
      'max-queue': { type: 'string', valueName: 'N', description: 'refuse requests with queue_full past this many waiting (default 100000)' },
      'min-nodes': { type: 'string', valueName: 'N', description: '/ready answers 503 while fewer nodes than this are live (default 0)' },
    },
    defaultLogLevel: 'info',
  },
  token: {
    summary: 'mint an access token (a signed JWT) and print it',
    usage: 'framehost token --role player|spectator|operator [--ttl 10m] [--sub ID] --token-key SECRET|PEM',
    options: {
      role: { type: 'string', valueName: 'ROLE', description: 'player (start and drive a session, ride the fleet), spectator (watch), operator (/events, /chart, /metrics); required' },
      ttl: { type: 'string', valueName: 'DURATION', description: 'lifetime: seconds, or like 90s, 10m, 2h, 1d (default 10m)' },
      sub: { type: 'string', valueName: 'ID', description: "the user's id in your system (default a random anon-… id)" },
      ...TOKEN_KEY_OPTIONS,
    },
    defaultLogLevel: 'warn',
  },
  replay: {
    summary: 'run a recorded session (a --record journal) again, write its frames as PNG and verify the recorded frame hashes',
    usage: 'framehost replay FILE --out DIR [--force] [--video OUT.webm] [--model PATH] [--model-option K=V]...',
    options: {
      out: { type: 'string', short: 'o', valueName: 'DIR', description: 'directory for the PNG frames, frame-NNNNNN.png from 0 (created if missing, refused if not empty; required)' },
      force: { type: 'boolean', description: 'replay into a folder that is not empty: its frame-NNNNNN.png files are removed first, other files are kept' },
      video: { type: 'string', valueName: 'FILE', description: "also encode the frames into a WebM video with ffmpeg (Debian's ffmpeg package; refused when it is not installed)" },
      model: { ...MODEL_OPTIONS.model, description: 'replay through this model instead of the recorded one (path, URL or built-in)' },
      'model-option': { ...MODEL_OPTIONS['model-option'], description: 'override a recorded model option (repeatable; numeric values become numbers)' },
    },
    defaultLogLevel: 'warn',
    positional: { name: 'FILE', description: 'the journal to replay (a .jsonl file written by --record)' },
  },
  check: {
    summary: "the model author's conformance run: load, frames, commands, stop, isolation; exit 1 on a failure",
    usage: 'framehost check MODEL [--stop-deadline MS] [--seed N] [options]',
    positional: { name: 'MODEL', description: 'the model module to check (as --model)' },
    options: {
      ...MODEL_OPTIONS,
      // No default model here: check refuses to guess (serve's "default gray-scott" would be untrue).
      model: { ...MODEL_OPTIONS.model, description: `the model instead of MODEL: a module (.ts, .mts, .cts, .js, .mjs path, or URL) or a built-in: ${Object.keys(BUILTIN_MODELS).join(', ')} [env FRAMEHOST_MODEL]` },
      'stop-deadline': { type: 'string', valueName: 'MS', description: 'how long the loop may take to honour stop (default 5000, as serve)' },
      'first-frame-timeout': { type: 'string', valueName: 'MS', description: 'how long to wait for the first frame (default 10000)' },
      'min-fps': { type: 'string', valueName: 'N', description: 'fail below this frame rate (default 1)' },
      seed: { type: 'string', valueName: 'N', description: 'seed of the random commands of the isolation run (default 1)' },
      commands: { type: 'string', valueName: 'N', description: 'random commands in the isolation run (default 30)' },
      threads: { type: 'string', valueName: 'N', description: 'ONNX Runtime intra-op threads (default cores − 1, 1 to 4) [env FRAMEHOST_ORT_THREADS]' },
    },
    // The report says what failed; the runtime's own log lines (with the stacks) on request: --log-level warn.
    defaultLogLevel: 'fatal',
  },
  init: {
    summary: 'create a model project: package.json, model.ts with a command and its ONNX graph, a README',
    usage: 'framehost init DIR [--name NAME] [--framehost SPEC] [--force]',
    positional: { name: 'DIR', description: 'the folder to create (it may exist if empty)' },
    options: {
      name: { type: 'string', valueName: 'NAME', description: "the model's and package's name (default: the folder's name)" },
      framehost: { type: 'string', valueName: 'SPEC', description: "the project's framehost dependency: a version range (default ^ this version) or the path of a tarball from npm pack" },
      force: { type: 'boolean', description: 'write into a folder that is not empty (files of the same name are replaced)' },
    },
    defaultLogLevel: 'warn',
  },
} as const satisfies Readonly<Record<string, SubcommandSpec>>;

export type SubcommandName = keyof typeof SUBCOMMANDS;

export interface ParsedCommandLine {
  readonly subcommand: SubcommandName;
  readonly help: boolean;
  /** Undefined: the built-in demo model. */
  readonly model: string | undefined;
  readonly modelOptions: Readonly<Record<string, string | number>>;
  readonly logLevel: LogLevel;
  /** The subcommand's own options, raw; read them with `stringOption` / `intOption`. */
  readonly values: OptionValues;
  /** The positional argument, for subcommands that take one. */
  readonly positional: string | undefined;
}

export function isSubcommand(name: string): name is SubcommandName {
  return Object.hasOwn(SUBCOMMANDS, name);
}

/** Parse the arguments that follow the subcommand's name. Throws UsageError. */
export function parseCommandLine(subcommand: SubcommandName, argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ParsedCommandLine {
  const spec: SubcommandSpec = SUBCOMMANDS[subcommand];
  let values: Record<string, RawValue>;
  let positionals: string[];
  const options = { ...COMMON_OPTIONS, ...spec.options };
  try {
    ({ values, positionals } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: spec.positional !== undefined }));
  } catch (err) {
    // parseArgs reports unknown flags, missing values and stray positionals as TypeErrors.
    throw new UsageError(parseArgsMessage(err instanceof Error ? err.message : String(err), Object.keys(options)));
  }
  if (positionals.length > 1) throw new UsageError(`expected one ${spec.positional?.name ?? 'argument'}, got ${positionals.length}: ${positionals.join(' ')}`);
  return {
    subcommand,
    help: values.help === true,
    model: stringOption(values, 'model') ?? nonEmpty(env.FRAMEHOST_MODEL),
    modelOptions: parseModelOptions(values['model-option']),
    logLevel: parseLogLevel(stringOption(values, 'log-level') ?? nonEmpty(env.FRAMEHOST_LOG_LEVEL) ?? spec.defaultLogLevel),
    values,
    positional: positionals[0],
  };
}

/** parseArgs' message, shortened to one line, with the nearest known option for a typo. */
function parseArgsMessage(message: string, known: readonly string[]): string {
  const unknown = /^Unknown option '--?([^']+)'/.exec(message);
  if (unknown) {
    const near = closest(unknown[1]!, known);
    return `unknown option --${unknown[1]}${near ? `: did you mean --${near}?` : ''}`;
  }
  return message.split('. ')[0]!.replace(/\.$/, '');
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/** The candidate nearest to `word`, if it is near enough to be a typo of it. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = distance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function parseLogLevel(value: string): LogLevel {
  const level = LOG_LEVELS.find((l) => l === value);
  if (!level) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(value)}`);
  return level;
}

const NUMERIC = /^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i;

/** `key=value` pairs; a value that reads as a decimal number becomes a number. */
export function parseModelOptions(raw: RawValue): Record<string, string | number> {
  const pairs = Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
  const options: Record<string, string | number> = {};
  for (const pair of pairs) {
    if (typeof pair !== 'string') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--model-option expects KEY=VALUE, got ${JSON.stringify(pair)}`);
    const value = pair.slice(eq + 1);
    options[pair.slice(0, eq)] = NUMERIC.test(value) ? Number(value) : value;
  }
  return options;
}

function optionLines(table: OptionTable): string[] {
  const rows = Object.entries(table).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.valueName ? ` ${o.valueName}` : ''}`;
    return [flag, o.description] as const;
  });
  const width = Math.max(...rows.map(([flag]) => flag.length));
  return rows.map(([flag, text]) => `  ${flag.padEnd(width)}  ${text}`);
}

/** One subcommand's `--help`: its usage, its options and the shared ones. */
export function subcommandUsage(name: SubcommandName): string {
  const spec: SubcommandSpec = SUBCOMMANDS[name];
  const lines = [`Usage: ${spec.usage}`, '', spec.summary, ''];
  if (spec.positional) lines.push(`  ${spec.positional.name}  ${spec.positional.description}`, '');
  lines.push('Options:', ...optionLines({ ...spec.options, ...COMMON_OPTIONS }), `  (default log level: ${spec.defaultLogLevel})`);
  if ('model' in spec.options) {
    const width = Math.max(...Object.keys(BUILTIN_MODELS).map((n) => n.length));
    lines.push('', 'Built-in models (--model NAME):', ...Object.entries(BUILTIN_MODELS).map(([n, d]) => `  ${n.padEnd(width)}  ${d}`));
  }
  lines.push('');
  return lines.join('\n');
}

/** `framehost --help`: the subcommands, and where each one's options are. */
export function usage(): string {
  const lines = ['Usage: framehost <command> [options]', '', 'Commands:'];
  const names = Object.keys(SUBCOMMANDS) as SubcommandName[];
  const width = Math.max(...names.map((n) => n.length));
  for (const name of names) lines.push(`  ${name.padEnd(width)}  ${SUBCOMMANDS[name].summary}`);
  lines.push('', 'framehost <command> --help shows the options of one command.', '');
  return lines.join('\n');
}

/** The line under a usage error: the subcommand's synopsis and where its options are. */
export function usageHint(name?: SubcommandName): string {
  return name ? `Usage: ${SUBCOMMANDS[name].usage} (framehost ${name} --help for every option)\n` : 'Usage: framehost <command> [options] (framehost --help for the commands)\n';
}
