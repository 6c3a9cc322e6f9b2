/**
 * `framehost serve`: the runtime behind Socket.IO and HTTP, until SIGTERM or SIGINT.
 *
 * Shutdown: the first signal refuses new sessions, stops the running one within its deadline
 * (its client is told `shutdown`), releases the model, closes connections, flushes the log and
 * exits 0. A second signal exits at once with 1 (or by the signal: shutdown-trigger.ts). A signal
 * during the load waits for the ONNX Runtime call under way (runtime.machine.ts, closingEarly).
 * A model that fails to load: one line on stderr,
 * the same shutdown, exit 1.
 */
import { pino, type Logger } from 'pino';
import { logDestination } from '../util/log-output.ts';
import { createRuntime, type Runtime } from '../runtime/runtime.ts';
import { listen, type FramehostHttpServer } from '../transport/server.ts';
import { errorValue, FramehostError } from '../errors.ts';
import { DEFAULT_TRANSPORT, type TransportOptions } from '../transport/options.ts';
import { startInspection, type Inspection } from '../transport/inspect.ts';
import { isProviderChoice, PROVIDER_CHOICES, type ProviderChoice } from '../gpu/providers.ts';
import { intOption, stringOption, UsageError, type ParsedCommandLine } from './args.ts';
import type { FleetNode, NodeOptions } from '../fleet/node.ts';
import { leaseSettings } from '../fleet/options.ts';
import { recordOptions } from '../journal/cli-options.ts';
import type { JournalOptions } from '../journal/recorder.ts';
import { onShutdownRequest, ShutdownLatch, type ShutdownCause } from './shutdown-trigger.ts';
import { checkModelArgument, checkWebSocketUrl, listenProblem, portProblem } from './problems.ts';
import { parseMediaOptions } from './media-options.ts';
import { tokenVerifier } from './token-options.ts';
import type { TokenVerifier } from '../auth/tokens.ts';

const nonEmpty = (value: string | undefined): string | undefined => (value === undefined || value === '' ? undefined : value);

/** `serve`'s flags with their environment fallbacks, checked: everything it needs before the model loads. */
interface ServeSettings {
  readonly values: ParsedCommandLine['values'];
  readonly provider: ProviderChoice;
  readonly host: string;
  readonly port: number;
  readonly origins: string[];
  readonly orphan: number | undefined;
  readonly deadline: number | undefined;
  readonly threads: number | undefined;
  readonly inspectPort: number;
  readonly fleetOptions: NodeOptions | undefined;
  readonly record: JournalOptions | undefined;
  readonly media: ReturnType<typeof parseMediaOptions>;
  readonly tokens: TokenVerifier | undefined;
  readonly metricsPort: number | undefined;
}

/** Reads and checks the flags (flags win over the environment); throws UsageError. */
async function readSettings(cli: ParsedCommandLine, env: NodeJS.ProcessEnv): Promise<ServeSettings> {
  const v = { ...cli.values };
  // Environment fallbacks for the serve options (flags win).
  v.host ??= nonEmpty(env.FRAMEHOST_HOST);
  v.port ??= nonEmpty(env.FRAMEHOST_PORT);
  v['auth-token'] ??= nonEmpty(env.FRAMEHOST_AUTH_TOKEN);
  v['orphan-timeout'] ??= nonEmpty(env.FRAMEHOST_ORPHAN_TIMEOUT_MS);
  v.provider ??= nonEmpty(env.FRAMEHOST_PROVIDER);
  v.threads ??= nonEmpty(env.FRAMEHOST_ORT_THREADS);
  if (v.inspect === undefined && env.FRAMEHOST_INSPECT === '1') v.inspect = true;
  const origins = Array.isArray(v['cors-origin'])
    ? (v['cors-origin'] as string[])
    : (env.FRAMEHOST_CORS_ORIGINS ?? '').split(',').map((o) => o.trim()).filter(Boolean);

  const provider = stringOption(v, 'provider') ?? 'auto';
  if (!isProviderChoice(provider)) throw new UsageError(`--provider must be one of ${PROVIDER_CHOICES.join(', ')}`);
  const port = intOption(v, 'port', 0, 65535) ?? DEFAULT_TRANSPORT.port;
  const orphan = intOption(v, 'orphan-timeout', 100, 86_400_000);
  const deadline = intOption(v, 'stop-deadline', 10, 600_000);
  const threads = intOption(v, 'threads', 1, 256);
  const inspectPort = intOption(v, 'inspect-port', 1, 65535) ?? 8080;

  const fleetOptions = v.fleet === true ? parseFleetOptions(v, env) : undefined;
  const record = recordOptions(v);
  checkModelArgument(cli.model);
  const inspectUrl = stringOption(v, 'inspect-url');
  if (inspectUrl !== undefined) checkWebSocketUrl('inspect-url', inspectUrl);
  const host = stringOption(v, 'host') ?? DEFAULT_TRANSPORT.host;
  const media = parseMediaOptions(v, env);
  const tokens = await tokenVerifier(v, env);
  const metricsPort = intOption(v, 'metrics-port', 0, 65535) ?? (nonEmpty(env.FRAMEHOST_METRICS_PORT) ? Number(env.FRAMEHOST_METRICS_PORT) : undefined);
  return { values: v, provider, host, port, origins, orphan, deadline, threads, inspectPort, fleetOptions, record, media, tokens, metricsPort };
}

export async function runServe(cli: ParsedCommandLine): Promise<number> {
  const settings = await readSettings(cli, process.env);
  const { values: v, host, port, orphan, deadline, threads, record } = settings;

  // Before the model loads (seconds) and before any log line: a port in use is one line at once.
  const portInUse = await portProblem(host, port);
  if (portInUse) throw portInUse;

  // Synchronous writes: pino's default stream is asynchronous and its flush() does not wait (sonic-boom,
  // minLength 0), so at exit lines still in a retry on a full pipe came out late, or after the last one.
  const log = pino({ level: cli.logLevel }, logDestination(1, { sync: true }));
  const latch = new ShutdownLatch();
  const stop = onShutdownRequest(log, latch.request);
  const inspection = v.inspect === true || stringOption(v, 'inspect-url') ? startInspection(stringOption(v, 'inspect-url') ?? settings.inspectPort, { log: log.child({ component: 'inspect' }) }) : undefined;
  if (inspection) log.info(inspection.describe);

  const runtime = await createRuntime({
    model: cli.model,
    modelOptions: cli.modelOptions,
    logger: log,
    ort: { provider: settings.provider, ...(threads ? { threads } : {}) },
    limits: { ...(orphan ? { orphanTimeoutMs: orphan } : {}), ...(deadline ? { stopDeadlineMs: deadline } : {}) },
    ...(inspection ? { inspect: inspection.inspect } : {}),
    ...(record ? { record } : {}),
  });
  // Fleet node: admission only for the ticket it armed; it takes jobs once the model is ready.
  // Imported only for --fleet: BullMQ alone takes ~0.6 s to load.
  const fleet = settings.fleetOptions ? (await import('../fleet/node.ts')).createFleetNode(runtime, { ...settings.fleetOptions, ...(inspection ? { inspect: inspection.inspect } : {}) }, log) : undefined;
  const server = await listenOrUnwind(runtime, settings, fleet, inspection);
  process.stderr.write(`framehost: open ${server.url} in a browser\n`);
  if (server.metricsUrl) log.info({ url: server.metricsUrl }, `metrics without credentials on ${server.metricsUrl}/metrics`);
  return new ServeLifetime({ runtime, server, fleet, inspection, log, latch, stop }).run();
}

/** The transport's options from the settings (and the fleet node's admission, when there is one). */
function transportOptions(settings: ServeSettings, fleet: FleetNode | undefined): Partial<TransportOptions> {
  const { values: v, host, port, origins, tokens, metricsPort, media } = settings;
  return {
    host,
    port,
    corsOrigins: origins,
    ...(stringOption(v, 'auth-token') ? { authToken: stringOption(v, 'auth-token') } : {}),
    ...(tokens ? { tokens } : {}),
    ...(metricsPort !== undefined ? { metricsPort, metricsHost: stringOption(v, 'metrics-host') ?? '127.0.0.1' } : {}),
    ...(fleet ? { admit: fleet.admit, gate: fleet.gate, charts: [fleet.chart] } : {}),
    ...media,
  };
}

/** Listen; when that fails, release the model and the inspector and throw the listen problem. */
async function listenOrUnwind(runtime: Runtime, settings: ServeSettings, fleet: FleetNode | undefined, inspection: Inspection | undefined): Promise<FramehostHttpServer> {
  try {
    return await listen(runtime, transportOptions(settings, fleet));
  } catch (err) {
    await runtime.shutdown();
    // stop() is asynchronous (it flushes): awaited, so its socket and relay are closed before main exits.
    await inspection?.stop();
    throw (await listenProblem(err, settings.host, settings.port)) ?? err;
  }
}

interface Served {
  readonly runtime: Runtime;
  readonly server: FramehostHttpServer;
  readonly fleet: FleetNode | undefined;
  readonly inspection: Inspection | undefined;
  readonly log: Logger;
  /** The signal handlers, in place since before the model began to load. */
  readonly latch: ShutdownLatch;
  readonly stop: (cause: ShutdownCause) => void;
}

/**
 * Serve until a signal, or until the model fails to load: the runtime never retries a failed
 * load by itself, so on the command line a process left in `failed` would serve nobody; it exits
 * 1 with one line and a process manager's restart is the retry. A signal during the load is a
 * shutdown like any other, said at info (the model did not fail).
 */
class ServeLifetime {
  /** 1 once the model failed to load or the fleet refused the node, whenever the drain ends. */
  private exitCode = 0;

  constructor(private readonly served: Served) {}

  /** Resolves with the exit code once the shutdown is complete. */
  run(): Promise<number> {
    const { runtime, server, fleet, log, latch } = this.served;
    return new Promise<number>((resolve) => {
      const early = latch.requested;
      latch.attach((cause) => this.drain(cause, resolve));
      runtime.ready().then(
        (model) => log.info({ model }, `ready: ${model.name} ${model.version} on ${model.provider} (${model.adapter})`),
        (err: unknown) => this.loadFailed(err),
      );
      if (early) return; // the drain above has begun: a fleet node does not join
      fleet?.start(server.url).catch((err: unknown) => {
        log.error({ err }, 'fleet: the node could not join the fleet');
        this.fail();
      });
    });
  }

  private fail(): void {
    this.exitCode = 1;
    this.served.stop('failure');
  }

  private loadFailed(err: unknown): void {
    const { log } = this.served;
    const error = err instanceof FramehostError ? err.toValue() : errorValue('load_failed', err instanceof Error ? err.message : String(err));
    if (error.code === 'shutting_down') return log.info('shutting down during load: the model was not loaded');
    log.error({ error }, 'the model failed to load; exiting');
    process.stderr.write(`framehost: serve: ${error.message}\n`);
    this.fail();
  }

  private drain(cause: ShutdownCause, resolve: (code: number) => void): void {
    const { runtime, server, fleet, inspection, log } = this.served;
    if (cause !== 'failure') log.info({ signal: cause }, fleet ? 'draining: no new jobs; the running session may finish' : 'shutting down: no new sessions; stopping the running one');
    (fleet ? fleet.drain() : Promise.resolve())
      .then(() => runtime.shutdown())
      .then(() => server.close())
      // After the runtime's end: the chart's final snapshot is among what the inspector flushes.
      .then(() => inspection?.stop())
      .then(() => {
        log.info('shutdown complete');
        // The log is synchronous (above): the last line is out; flush() keeps that true if it changes.
        log.flush(() => resolve(this.exitCode));
      }, (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        log.flush(() => resolve(1));
      });
  }
}

/** `--fleet` settings: flags, then environment variables, then the defaults of src/fleet/options.ts. */
function parseFleetOptions(v: ParsedCommandLine['values'], env: NodeJS.ProcessEnv): NodeOptions {
  const redisUrl = stringOption(v, 'redis') ?? nonEmpty(env.FRAMEHOST_REDIS_URL);
  if (!redisUrl) throw new UsageError('--fleet needs --redis URL (or FRAMEHOST_REDIS_URL)');
  const secret = stringOption(v, 'secret') ?? nonEmpty(env.FRAMEHOST_FLEET_SECRET);
  // Tickets are HMACs with this key: a short one could be guessed.
  if (!secret || secret.length < 16) throw new UsageError('--fleet needs a ticket secret of 16+ characters: --secret or FRAMEHOST_FLEET_SECRET');
  const publicUrl = stringOption(v, 'public-url') ?? nonEmpty(env.FRAMEHOST_PUBLIC_URL);
  const lease = intOption(v, 'lease', 200, 600_000);
  const stall = intOption(v, 'stall-interval', 100, 600_000);
  const maxStalled = intOption(v, 'max-stalled', 0, 1000);
  const noShow = intOption(v, 'no-show', 100, 3_600_000);
  const drain = intOption(v, 'drain-deadline', 0, 86_400_000);
  return {
    redisUrl,
    secret,
    ...(publicUrl ? { publicUrl } : {}),
    ...(stringOption(v, 'queue') ? { queue: stringOption(v, 'queue') } : {}),
    ...(lease ? leaseSettings(lease) : {}),
    ...(stall ? { stalledIntervalMs: stall } : {}),
    ...(maxStalled !== undefined ? { maxStalledCount: maxStalled } : {}),
    ...(noShow ? { noShowMs: noShow } : {}),
    ...(drain !== undefined ? { drainDeadlineMs: drain } : {}),
  };
}
