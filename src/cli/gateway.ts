/**
 * `framehost gateway`: the fleet's front door (src/fleet/gateway.ts), until SIGTERM or SIGINT.
 * It holds no state of its own: stop it and start another, or run several behind one name.
 *
 * It listens at once, Redis or not (`/ready` answers 503 with the reason until Redis answers),
 * and the signal handlers are in place before anything else, so a signal at any moment (while
 * starting, while Redis is away, while serving) ends it cleanly: close client connections (a
 * waiting client reconnects to another replica and resumes its ride) and the Redis connections,
 * exit 0. A second signal exits at once with 1 (the gateway runs no model: never by the signal).
 */
import { pino } from 'pino';
import { logDestination } from '../util/log-output.ts';
import type { Gateway } from '../fleet/gateway.ts';
import { DEFAULT_GATEWAY } from '../fleet/options.ts';
import { intOption, stringOption, UsageError, type ParsedCommandLine } from './args.ts';
import { onShutdownRequest, ShutdownLatch } from './shutdown-trigger.ts';
import { listenProblem } from './problems.ts';
import { tokenVerifier } from './token-options.ts';

const nonEmpty = (value: string | undefined): string | undefined => (value === undefined || value === '' ? undefined : value);

export async function runGateway(cli: ParsedCommandLine): Promise<number> {
  const env = process.env;
  const v = cli.values;
  const redisUrl = stringOption(v, 'redis') ?? nonEmpty(env.FRAMEHOST_REDIS_URL);
  if (!redisUrl) throw new UsageError('needs --redis URL (or FRAMEHOST_REDIS_URL)');
  const port = intOption(v, 'port', 0, 65535) ?? (nonEmpty(env.FRAMEHOST_PORT) ? Number(env.FRAMEHOST_PORT) : DEFAULT_GATEWAY.port);
  const grace = intOption(v, 'reconnect-grace', 0, 3_600_000);
  const maxQueue = intOption(v, 'max-queue', 1, 100_000_000);
  const minNodes = intOption(v, 'min-nodes', 0, 1_000_000);
  const origins = Array.isArray(v['cors-origin'])
    ? (v['cors-origin'] as string[])
    : (env.FRAMEHOST_CORS_ORIGINS ?? '').split(',').map((o) => o.trim()).filter(Boolean);
  const authToken = stringOption(v, 'auth-token') ?? nonEmpty(env.FRAMEHOST_AUTH_TOKEN);
  const secret = stringOption(v, 'secret') ?? nonEmpty(env.FRAMEHOST_FLEET_SECRET);
  const tokens = await tokenVerifier(v, env);

  // Synchronous writes: pino's default stream is asynchronous and its flush() does not wait (sonic-boom,
  // minLength 0), so at exit lines still in a retry on a full pipe came out late, or after the last one.
  const log = pino({ level: cli.logLevel }, logDestination(1, { sync: true }));
  const host = stringOption(v, 'host') ?? nonEmpty(env.FRAMEHOST_HOST) ?? DEFAULT_GATEWAY.host;
  const latch = new ShutdownLatch();
  onShutdownRequest(log, (signal) => {
    log.info({ signal, started: latch.attached }, 'gateway shutting down');
    latch.request(signal);
  });
  return new Promise<number>((resolve) => {
    const finish = (code: number): void => log.flush(() => resolve(code)); // the log is synchronous; flush() keeps that true if it changes
    // A signal before the gateway listens is held by the latch: it closes what the start made as soon as it returns.
    const closeOnRequest = (g: Gateway): void =>
      latch.attach(() =>
        g.close().then(
          () => finish(0),
          (err: unknown) => {
            log.error({ err }, 'gateway shutdown failed');
            finish(1);
          },
        ),
      );

    import('../fleet/gateway.ts')
      .then(({ startGateway }) =>
        startGateway({
          redisUrl,
          host,
          port,
          corsOrigins: origins,
          logger: log,
          ...(stringOption(v, 'queue') ? { queue: stringOption(v, 'queue') } : {}),
          ...(grace !== undefined ? { reconnectGraceMs: grace } : {}),
          ...(maxQueue ? { maxQueue } : {}),
          ...(minNodes !== undefined ? { minNodes } : {}),
          ...(authToken ? { authToken } : {}),
          ...(tokens ? { tokens } : {}),
          ...(secret ? { secret } : {}),
        }),
      )
      .then(
        (g) => {
          process.stderr.write(`framehost: gateway on ${g.url}\n`);
          closeOnRequest(g);
        },
        async (err: unknown) => {
          // A port in use is one line with a hint (as serve); anything else is logged whole.
          const problem = await listenProblem(err, host, port);
          if (problem) process.stderr.write(`framehost: gateway: ${problem.message}\n`);
          else log.error({ err }, 'the gateway could not start');
          finish(1);
        },
      );
  });
}
