/**
 * Child script for test/inspect.test.ts: start inspection towards argv[2], stop it after
 * argv[3] ms, and print `stopped`. Nothing else holds the event loop, so once stopped the
 * process must exit by itself.
 */
import { startInspection } from '../../src/transport/inspect.ts';

const url = process.argv[2] ?? 'ws://127.0.0.1:1';
const after = Number(process.argv[3] ?? 200);
const inspection = startInspection(url);
setTimeout(() => {
  void inspection.stop().then(() => process.stdout.write('stopped\n'));
}, after);
