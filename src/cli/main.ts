/**
 * `framehost <command> [options]`: parse the command line and hand over to the subcommand.
 *
 * Exit codes: what the subcommand returns (0 done, 1 failed at run time); 2 for a bad command
 * line (a UsageError, wherever it is found). Errors are one line, with a hint where there is one;
 * the stack of an unexpected error only with --log-level debug (the line says so).
 * Runners are imported lazily so a subcommand does not pay for another's dependencies.
 */
import { closest, isSubcommand, parseCommandLine, subcommandUsage, usage, usageHint, UsageError, SUBCOMMANDS, type ParsedCommandLine, type SubcommandName } from './args.ts';
import { RunError } from './problems.ts';
import { RUNNING_FROM_SOURCE, useSourceCondition } from '../util/typescript.ts';
import { runExitHooks } from '../util/exit-hooks.ts';

// From the sources by any entry (the bin, `tsx src/cli/main.ts` in npm start): a model's
// `import 'framehost'` gets these sources, not a dist/ that may not exist (see typescript.ts).
if (RUNNING_FROM_SOURCE) useSourceCondition();

type Runner = (cli: ParsedCommandLine) => Promise<number>;

const RUNNERS: Record<SubcommandName, () => Promise<Runner>> = {
  serve: async () => (await import('./serve.ts')).runServe,
  headless: async () => (await import('./headless/main.ts')).runHeadless,
  gateway: async () => (await import('./gateway.ts')).runGateway,
  replay: async () => (await import('./replay.ts')).runReplay,
  check: async () => (await import('./check.ts')).runCheckCommand,
  init: async () => (await import('./init.ts')).runInit,
  token: async () => (await import('./token.ts')).runToken,
};

function usageError(message: string, name?: SubcommandName): number {
  process.stderr.write(`framehost: ${name ? `${name}: ` : ''}${message}\n${usageHint(name)}`);
  return 2;
}

let debug = false;

async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) return usageError('missing command');
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return 0;
  }
  if (!isSubcommand(name)) {
    const near = closest(name, Object.keys(SUBCOMMANDS));
    return usageError(`unknown command ${JSON.stringify(name)}${near ? `: did you mean ${near}?` : ''}`);
  }
  let cli: ParsedCommandLine;
  try {
    cli = parseCommandLine(name, rest);
  } catch (err) {
    if (err instanceof UsageError) return usageError(err.message, name);
    throw err;
  }
  if (cli.help) {
    process.stdout.write(subcommandUsage(name));
    return 0;
  }
  debug = cli.logLevel === 'debug' || cli.logLevel === 'trace';
  const run = await RUNNERS[name]();
  try {
    return await run(cli);
  } catch (err) {
    if (err instanceof UsageError) return usageError(err.message, name);
    if (err instanceof RunError) {
      process.stderr.write(`framehost: ${name}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

/** Exit once stdout has flushed: a runner may leave handles (stdin, timers) that would keep Node alive. */
function exit(code: number): void {
  process.stdout.write('', () => {
    runExitHooks();
    process.exit(code);
  });
}

// A promise nobody handled (deep in a library, say) must not take the server and its session down.
process.on('unhandledRejection', (reason) => {
  process.stderr.write(`framehost: unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}\n`);
});

main(process.argv.slice(2)).then(exit, (err: unknown) => {
  const text = err instanceof Error ? (debug ? (err.stack ?? err.message) : err.message) : String(err);
  process.stderr.write(`framehost: ${text}${debug ? '' : '\n(--log-level debug shows where it came from)'}\n`);
  exit(1);
});
