/**
 * A JSON answer to a plain HTTP request, with the headers every framehost endpoint sends. Its own
 * module so that the endpoints (http.ts) and the SSE streams they route to can share it without
 * importing each other.
 */
import type { ServerResponse } from 'node:http';

export function json(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(JSON.stringify(value));
}
