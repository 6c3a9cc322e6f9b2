/**
 * Work that must happen right before the process exits, registered by the modules that need it:
 * a native library whose threads still run when Node tears down aborts the process (SIGABRT)
 * instead of exiting with the code the command chose. Synchronous, run once, by the CLI's exit.
 */
const hooks = new Set<() => void>();

export function beforeExit(hook: () => void): void {
  hooks.add(hook);
}

export function runExitHooks(): void {
  for (const hook of hooks) {
    try {
      hook();
    } catch {
      // exiting anyway: one hook's failure must not keep the others from running
    }
  }
  hooks.clear();
}
