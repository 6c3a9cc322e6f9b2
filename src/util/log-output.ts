/**
 * Where the root logger writes. A person at a terminal reads lines (`12:03:04.512 INFO  state
 * running  from=loading`); a pipe, a file or a log collector gets pino's JSON, one object a line,
 * unchanged. A small formatter rather than pino-pretty: one dependency less, and synchronous like
 * the destination it wraps (the serve command's lines must not come out after its exit).
 */
import { isatty } from 'node:tty';
import { pino, type DestinationStream } from 'pino';

const LEVELS: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
/** ANSI colours per level: warnings and errors stand out, the rest stays quiet. */
const COLOURS: Readonly<Record<number, string>> = { 10: '\x1b[90m', 20: '\x1b[90m', 30: '\x1b[36m', 40: '\x1b[33m', 50: '\x1b[31m', 60: '\x1b[41m' };
const RESET = '\x1b[0m';
/** Fields every line has, shown in their own places (or not at all: pid and hostname). */
const OWN = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

function shown(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

/** One pino JSON line as a person reads it; a line that is not JSON passes unchanged. */
export function formatLogLine(line: string, colour = false): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const level = typeof entry.level === 'number' ? entry.level : 30;
  const time = typeof entry.time === 'number' ? new Date(entry.time).toISOString().slice(11, 23) : '';
  const label = LEVELS[level] ?? String(level);
  const fields: string[] = [];
  for (const [key, value] of Object.entries(entry)) {
    if (OWN.has(key)) continue;
    // An error: its message on the line, its stack below it (where a person looks for it).
    if (key === 'err' && value && typeof value === 'object' && 'message' in value) fields.push(`err=${shown((value as { message: unknown }).message)}`);
    else fields.push(`${key}=${shown(value)}`);
  }
  const stack = entry.err && typeof entry.err === 'object' && typeof (entry.err as { stack?: unknown }).stack === 'string' && level >= 50 ? `\n${(entry.err as { stack: string }).stack}` : '';
  const head = colour ? `${COLOURS[level] ?? ''}${label}${RESET}` : label;
  return `${time} ${head} ${String(entry.msg ?? '')}${fields.length ? `  ${fields.join(' ')}` : ''}${stack}\n`;
}

/** The logger's destination on a file descriptor: readable lines on a terminal, JSON otherwise. */
export function logDestination(fd: 1 | 2, options: { sync?: boolean } = {}): DestinationStream {
  const dest = pino.destination({ dest: fd, sync: options.sync ?? false });
  if (!isatty(fd)) return dest;
  return { write: (line: string) => void dest.write(formatLogLine(line, true)) };
}
