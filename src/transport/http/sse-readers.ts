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

/** One stream's readers: who reads, the keep-alive timer, and the drop of the ones that lag. */
export class SseReaders {
  private readonly readers = new Set<ServerResponse>();
  private readonly keepAlive: NodeJS.Timeout;

  constructor(
    private readonly options: SseReaderOptions,
    private readonly log: Logger,
  ) {
    this.keepAlive = setInterval(() => {
      for (const res of this.readers) {
        if (res.writableLength > options.maxBufferedBytes) this.drop(res, 'not reading');
        else res.write(': keep-alive\n\n');
      }
    }, options.keepAliveMs);
    this.keepAlive.unref();
  }

  /** Answer a request: refused (401, 403, 503) or opened; `hello` is written to an opened one first. */
  accept(req: IncomingMessage, res: ServerResponse, hello: () => string): void {
    const { access, name } = this.options;
    if (!access) return void this.open(req, res, hello);
    authorizeRequest(access, req, res, 'observe', { query: true, log: this.log }).then(
      (principal) => {
        if (principal) this.open(req, res, hello);
      },
      (err: unknown) => {
        this.log.error({ err }, `${name}: access check failed`);
        if (!res.headersSent) refuse(res, 500, 'internal');
      },
    );
  }

  /** Write an already formatted event to every reader, dropping the ones that do not keep up. */
  broadcast(text: string): void {
    const max = this.options.maxBufferedBytes;
    for (const res of this.readers) {
      if (res.writableLength + text.length > max) this.drop(res, `more than ${max} bytes unread`);
      else res.write(text);
    }
  }

  size(): number {
    return this.readers.size;
  }

  /** End every stream (before the HTTP server closes: an open one would hold it open). */
  close(): void {
    clearInterval(this.keepAlive);
    for (const res of this.readers) res.end();
    this.readers.clear();
  }

  private drop(res: ServerResponse, why: string): void {
    if (!this.readers.delete(res)) return;
    this.log.warn({ why }, `${this.options.name}: reader dropped`);
    res.destroy();
  }

  private open(req: IncomingMessage, res: ServerResponse, hello: () => string): void {
    const { maxClients, name } = this.options;
    // Checking credentials is asynchronous: the reader may have left meanwhile.
    if (res.destroyed || req.socket.destroyed) return;
    if (this.readers.size >= maxClients) return refuse(res, 503, 'too_many_connections', `limit ${maxClients} ${name} readers`);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no', // nginx: do not buffer the stream
      'x-content-type-options': 'nosniff',
    });
    if (req.method === 'HEAD') return void res.end();
    this.readers.add(res);
    res.write(`retry: 2000\n\n${hello()}`);
    // The response's close: the reader went away or the stream was ended.
    res.on('close', () => void this.readers.delete(res));
  }
}

function refuse(res: ServerResponse, status: number, code: ErrorCode, detail?: string): void {
  json(res, status, { error: errorValue(code, detail) });
}
