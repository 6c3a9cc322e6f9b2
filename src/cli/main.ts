/**
 * `framehost <command> [options]`: parse the command line and hand over to the subcommand.
 *
 * Exit codes: what the subcommand returns (0 done, 1 failed); 2 for a bad command line.
 * Runners are imported lazily so a subcommand does not pay for another's dependencies.
 */
import { isSubcommand, parseCommandLine, usage, UsageError, type ParsedCommandLine, type SubcommandName } from './args.ts';

type Runner = (cli: ParsedCommandLine) => Promise<number>;

const RUNNERS: Record<SubcommandName, () => Promise<Runner>> = {
  serve: async () => (await import('./serve.ts')).runServe,
  headless: async () => (await import('./headless.ts')).runHeadless,
  gateway: async () => (await import('./gateway.ts')).runGateway,
  replay: async () => (await import('./replay.ts')).runReplay,
};

function usageError(message: string): number {
  process.stderr.write(`framehost: ${message}\n\n${usage()}`);
  return 2;
}

async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) return usageError('missing command');
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return 0;
  }
  if (!isSubcommand(name)) return usageError(`unknown command ${JSON.stringify(name)}`);
  let cli: ParsedCommandLine;
  try {
    cli = parseCommandLine(name, rest);
  } catch (err) {
    if (err instanceof UsageError) return usageError(`${name}: ${err.message}`);
    throw err;
  }
  if (cli.help) {
    process.stdout.write(usage());
    return 0;
  }
  const run = await RUNNERS[name]();
  try {
    return await run(cli);
  } catch (err) {
    if (err instanceof UsageError) return usageError(`${name}: ${err.message}`);
    throw err;
  }
}

/** Exit once stdout has flushed: a runner may leave handles (stdin, timers) that would keep Node alive. */
function exit(code: number): void {
  process.stdout.write('', () => process.exit(code));
}

// A promise nobody handled (deep in a library, say) must not take the server and its session down.
process.on('unhandledRejection', (reason) => {
  process.stderr.write(`framehost: unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}\n`);
});

main(process.argv.slice(2)).then(exit, (err: unknown) => {
  process.stderr.write(`framehost: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  exit(1);
});
