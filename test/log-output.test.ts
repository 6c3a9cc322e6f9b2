/** The terminal's log lines (src/util/log-output.ts): pino's JSON made readable, anything else unchanged. */
import { describe, expect, it } from 'vitest';
import { formatLogLine } from '../src/util/log-output.ts';

describe('formatLogLine', () => {
  it('shows time, level, message and the fields, without pid and hostname', () => {
    const line = JSON.stringify({ level: 30, time: Date.UTC(2026, 11, 6, 12, 3, 4, 512), pid: 7, hostname: 'h', msg: 'state running', state: 'running', from: 'loading', socket: 'a b' });
    expect(formatLogLine(line)).toBe('12:03:04.512 INFO  state running  state=running from=loading socket="a b"\n');
  });

  it('puts an error message on the line and its stack below, and colours the level on request', () => {
    const line = JSON.stringify({ level: 50, time: 0, msg: 'request handler threw', err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at x' } });
    expect(formatLogLine(line)).toBe('00:00:00.000 ERROR request handler threw  err=boom\nError: boom\n    at x\n');
    expect(formatLogLine(line, true)).toContain('\x1b[31mERROR\x1b[0m');
  });

  it('passes a line that is not JSON unchanged', () => {
    expect(formatLogLine('not json\n')).toBe('not json\n');
  });
});
