/**
 * Where `--publish` sends the stream: `janus://HOST:PORT[/BASE]/ROOM` (Janus's REST API over
 * HTTP at http://HOST:PORT/BASE, default base `/janus`; ROOM is the VideoRoom's numeric id),
 * or `janus+https://…` when Janus's HTTP transport serves TLS. The room is created if it does
 * not exist; `?display=NAME` names the publisher there. Nothing here throws: a problem is a message for the command line's usage error.
 */
export interface JanusTarget {
  readonly kind: 'janus';
  /** The REST endpoint, e.g. http://127.0.0.1:8088/janus. */
  readonly endpoint: string;
  readonly room: number;
  /** The publisher's display name in the room (`?display=NAME`, default framehost): fleet nodes sharing a room tell theirs apart. */
  readonly display: string;
  /** The URL as the operator wrote it, without credentials (for logs). */
  readonly label: string;
}

export function parseJanusTarget(text: string): JanusTarget | string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `--publish must be a URL like janus://127.0.0.1:8088/1234, got ${JSON.stringify(text)}`;
  }
  const scheme = url.protocol === 'janus:' ? 'http' : url.protocol === 'janus+https:' ? 'https' : null;
  if (!scheme) return `--publish supports janus:// and janus+https:// (Janus VideoRoom over its REST API), whip+http:// and whip+https:// (WHIP), got ${url.protocol}//`;
  if (!url.hostname) return '--publish needs a host: janus://HOST:PORT/ROOM';
  if (url.username || url.password) return '--publish takes no credentials in the URL';
  const parts = url.pathname.split('/').filter((p) => p !== '');
  const roomText = parts.pop();
  // Janus room ids are unsigned 64-bit; JSON numbers are exact up to 2^53, which is what Janus's own demos use.
  if (!roomText || !/^\d{1,15}$/.test(roomText) || Number(roomText) === 0) return '--publish needs the VideoRoom id (a positive integer) as the last path segment: janus://HOST:PORT/ROOM';
  const display = url.searchParams.get('display') ?? 'framehost';
  if (display.length === 0 || display.length > 64) return '--publish: display must be 1-64 characters';
  const base = parts.length > 0 ? `/${parts.join('/')}` : '/janus';
  const port = url.port ? `:${url.port}` : '';
  const endpoint = `${scheme}://${url.hostname}${port}${base}`;
  return { kind: 'janus', endpoint, room: Number(roomText), display, label: `${url.protocol}//${url.hostname}${port}${base === '/janus' ? '' : base}/${roomText}` };
}
