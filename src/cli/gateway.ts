/**
 * `framehost gateway`: the fleet's front door (src/fleet/gateway.ts), until SIGTERM or SIGINT.
 * It holds no state of its own: stop it and start another, or run several behind one name.
 *
 * Shutdown: close client connections (a waiting client reconnects to another replica and
 * resumes its ride) and the Redis connections, exit 0. A second signal exits at once with 1.
 */
import { pino } from 'pino';
import { startGateway } from '../fleet/gateway.ts';
import { DEFAULT_GATEWAY } from '../fleet/options.ts';
import { intOption, stringOption, UsageError, type ParsedCommandLine } from './args.ts';
import { onLauncherGone } from './launcher.ts';
import { listenProblem } from './problems.ts';

const nonEmpty = (value: string | undefined): string | undefined => (value === undefined || value === '' ? undefined : value);

export async function runGateway(cli: ParsedCommandLine): Promise<number> {
  const env = process.env;
  const v = cli.values;
  const redisUrl = stringOption(v, 'redis') ?? nonEmpty(env.FRAMEHOST_REDIS_URL);
  if (!redisUrl) throw new UsageError('needs --redis URL (or FRAMEHOST_REDIS_URL)');
  const port = intOption(v, 'port', 0, 65535) ?? (nonEmpty(env.FRAMEHOST_PORT) ? Number(env.FRAMEHOST_PORT) : DEFAULT_GATEWAY.port);
  const grace = intOption(v, 'reconnect-grace', 0, 3_600_000);
  const maxQueue = intOption(v, 'max-queue', 1, 100_000_000);
  const origins = Array.isArray(v['cors-origin'])
    ? (v['cors-origin'] as string[])
    : (env.FRAMEHOST_CORS_ORIGINS ?? '').split(',').map((o) => o.trim()).filter(Boolean);
  const authToken = stringOption(v, 'auth-token') ?? nonEmpty(env.FRAMEHOST_AUTH_TOKEN);
  const secret = stringOption(v, 'secret') ?? nonEmpty(env.FRAMEHOST_FLEET_SECRET);

  // Synchronous writes: pino's default stream is asynchronous and its flush() does not wait (sonic-boom,
  // minLength 0), so at exit lines still in a retry on a full pipe came out late, or after the last one.
  const log = pino({ level: cli.logLevel }, pino.destination({ dest: 1, sync: true }));
  const host = stringOption(v, 'host') ?? nonEmpty(env.FRAMEHOST_HOST) ?? DEFAULT_GATEWAY.host;
  const gateway = await startGateway({
    redisUrl,
    host,
    port,
    corsOrigins: origins,
    logger: log,
    ...(stringOption(v, 'queue') ? { queue: stringOption(v, 'queue') } : {}),
    ...(grace !== undefined ? { reconnectGraceMs: grace } : {}),
    ...(maxQueue ? { maxQueue } : {}),
    ...(authToken ? { authToken } : {}),
    ...(secret ? { secret } : {}),
  }).catch(async (err: unknown) => {
    // main exits once this is reported, whatever the queue's connections still hold.
    throw (await listenProblem(err, host, port)) ?? err;
  });
  process.stderr.write(`framehost: gateway on ${gateway.url}\n`);

  return new Promise<number>((resolve) => {
    let stopping = false;
    /** A signal, or the launching shell gone (src/cli/launcher.ts): the same shutdown. */
    const stop = (signal: NodeJS.Signals | 'launcher-gone'): void => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      stopping = true;
      log.info({ signal }, 'gateway shutting down');
      gateway.close().then(
        // The log is synchronous (above): the last line is out; flush() keeps that true if it changes.
        () => log.flush(() => resolve(0)),
        (err: unknown) => {
          log.error({ err }, 'gateway shutdown failed');
          log.flush(() => resolve(1));
        },
      );
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    onLauncherGone(() => stop('launcher-gone'));
  });
}
