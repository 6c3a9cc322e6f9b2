/**
 * The readers of one server-sent event stream, bounded: behind the `observe` right when access is
 * checked (src/auth/access.ts: `Authorization: Bearer …`, or `?token=…` since a browser's
 * EventSource cannot set headers), at most `maxClients` at once (more are answered 503), and a reader that does not
 * keep up (more than `maxBufferedBytes` waiting in its response) is disconnected, not buffered
 * for. `/events` (events-sse.ts) and `/chart/events` (chart-sse.ts) are both built on it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { errorValue, type ErrorCode } from '../../errors.ts';
import { authorizeRequest, type Access } from '../../auth/access.ts';
import { json } from './json-reply.ts';

export interface SseReaderOptions {
  /** Who may read (the `observe` right); everyone when unset. */
  readonly access?: Access;
  /** Concurrent readers; more are answered 503. */
  readonly maxClients: number;
  /** Bytes waiting in one reader's response (past the kernel's socket buffers) before it is dropped. */
  readonly maxBufferedBytes: number;
  /** A comment line this often keeps proxies from closing an idle stream. */
  readonly keepAliveMs: number;
  /** Names the stream in log lines (`events`, `chart`). */
  readonly name: string;
}

export interface SseReaders {
  /** Answer a request: refused (401, 403, 503) or opened; `hello` is written to an opened one first. */
  accept(req: IncomingMessage, res: ServerResponse, hello: () => string): void;
  /** Write an already formatted event to every reader, dropping the ones that do not keep up. */
  broadcast(text: string): void;
  size(): number;
  /** End every stream (before the HTTP server closes: an open one would hold it open). */
  close(): void;
}

export function createSseReaders(options: SseReaderOptions, log: Logger): SseReaders {
  const { maxClients, maxBufferedBytes: maxBuffered, name } = options;
  const readers = new Set<ServerResponse>();

  const drop = (res: ServerResponse, why: string): void => {
    if (!readers.delete(res)) return;
    log.warn({ why }, `${name}: reader dropped`);
    res.destroy();
  };

  const keepAlive = setInterval(() => {
    for (const res of readers) {
      if (res.writableLength > maxBuffered) drop(res, 'not reading');
      else res.write(': keep-alive\n\n');
    }
  }, options.keepAliveMs);
  keepAlive.unref();

  const refuse = (res: ServerResponse, status: number, code: ErrorCode, detail?: string): null => {
    json(res, status, { error: errorValue(code, detail) });
    return null;
  };

  const open = (req: IncomingMessage, res: ServerResponse, hello: () => string): ServerResponse | null => {
    // Checking credentials is asynchronous: the reader may have left meanwhile.
    if (res.destroyed || req.socket.destroyed) return null;
    if (readers.size >= maxClients) return refuse(res, 503, 'too_many_connections', `limit ${maxClients} ${name} readers`);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no', // nginx: do not buffer the stream
      'x-content-type-options': 'nosniff',
    });
    if (req.method === 'HEAD') {
      res.end();
      return null;
    }
    readers.add(res);
    res.write(`retry: 2000\n\n${hello()}`);
    // The response's close: the reader went away or the stream was ended.
    res.on('close', () => void readers.delete(res));
    return res;
  };

  return {
    accept(req, res, hello) {
      if (!options.access) return void open(req, res, hello);
      authorizeRequest(options.access, req, res, 'observe', { query: true, log }).then(
        (principal) => {
          if (principal) open(req, res, hello);
        },
        (err: unknown) => {
          log.error({ err }, `${name}: access check failed`);
          if (!res.headersSent) refuse(res, 500, 'internal');
        },
      );
    },
    broadcast(text) {
      for (const res of readers) {
        if (res.writableLength + text.length > maxBuffered) drop(res, `more than ${maxBuffered} bytes unread`);
        else res.write(text);
      }
    },
    size: () => readers.size,
    close() {
      clearInterval(keepAlive);
      for (const res of readers) res.end();
      readers.clear();
    },
  };
}
