/**
 * `framehost check MODEL`: run src/check/run.ts and print its report, one line a step;
 * exit 0 when every step passed, 1 otherwise, 2 for a bad command line.
 */
import { pino } from 'pino';
import { logDestination } from '../util/log-output.ts';
import { runCheck, type CheckResult } from '../check/run.ts';
import { intOption, UsageError, type ParsedCommandLine } from './args.ts';
import { checkModelArgument } from './problems.ts';

const MARK = { pass: 'ok  ', fail: 'FAIL', skip: 'skip' } as const;

export async function runCheckCommand(cli: ParsedCommandLine): Promise<number> {
  if (cli.positional !== undefined && cli.model !== undefined && cli.values.model !== undefined) {
    throw new UsageError('give the model once: as MODEL or as --model');
  }
  const model = cli.positional ?? cli.model;
  if (model === undefined) throw new UsageError('which model? framehost check ./model.ts (or a built-in: gray-scott, video-filter, vae-decoder)');
  checkModelArgument(model);
  // FRAMEHOST_ORT_THREADS as serve reads it: a fallback for the flag, checked like the flag.
  const v = { ...cli.values, threads: cli.values.threads ?? (process.env.FRAMEHOST_ORT_THREADS || undefined) };
  const stopDeadlineMs = intOption(v, 'stop-deadline', 10, 600_000);
  const firstFrameTimeoutMs = intOption(v, 'first-frame-timeout', 10, 600_000);
  const minFps = intOption(v, 'min-fps', 0, 10_000);
  const seed = intOption(v, 'seed', 0, 2 ** 31);
  const randomCommands = intOption(v, 'commands', 0, 100_000);
  const threads = intOption(v, 'threads', 1, 256);
  // The report is stdout; the runtime's own log lines (warnings and up by default) go to stderr.
  const log = pino({ level: cli.logLevel }, logDestination(2));

  process.stdout.write(`framehost check ${model}\n`);
  const width = 18;
  const print = (r: CheckResult): void => {
    process.stdout.write(`  ${MARK[r.status]}  ${r.step.padEnd(width)} ${r.detail}\n`);
    for (const note of r.notes ?? []) process.stdout.write(`${' '.repeat(width + 9)}${note}\n`);
  };
  const results = await runCheck(
    {
      model,
      modelOptions: cli.modelOptions,
      log,
      ...(threads ? { ort: { threads } } : {}),
      ...(stopDeadlineMs !== undefined ? { stopDeadlineMs } : {}),
      ...(firstFrameTimeoutMs !== undefined ? { firstFrameTimeoutMs } : {}),
      ...(minFps !== undefined ? { minFps } : {}),
      ...(seed !== undefined ? { seed } : {}),
      ...(randomCommands !== undefined ? { randomCommands } : {}),
    },
    print,
  );
  const failed = results.filter((r) => r.status === 'fail').length;
  const passed = results.filter((r) => r.status === 'pass').length;
  const skipped = results.length - failed - passed;
  process.stdout.write(`${failed === 0 ? 'passed' : 'FAILED'}: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  await new Promise<void>((resolve) => log.flush(() => resolve()));
  return failed === 0 ? 0 : 1;
}
