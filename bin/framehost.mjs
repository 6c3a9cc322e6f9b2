#!/usr/bin/env node
// The `framehost` command: runs the TypeScript sources through tsx's loader, so no build step is
// needed. process.argv is left as it is; main.ts reads the arguments after the script's path.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
