/**
 * Where `--publish` sends the stream by WHIP (RFC 9725, WebRTC-HTTP ingestion, which LiveKit and
 * MediaMTX take): `whip+http://HOST:PORT/PATH` or `whip+https://…`, the endpoint's own URL with
 * the scheme marked (a plain http:// URL could be anything). `--publish-token` is sent as
 * `Authorization: Bearer`. Nothing here throws: a problem is a message for the command line's
 * usage error.
 */
export interface WhipTarget {
  readonly kind: 'whip';
  /** The WHIP endpoint, e.g. http://127.0.0.1:8889/cam/whip. */
  readonly endpoint: string;
  /** The bearer token, or null for an endpoint that takes anyone. */
  readonly token: string | null;
  /** The URL as the operator wrote it, without the token (for logs). */
  readonly label: string;
}

/** Bearer tokens (RFC 6750's b64token): what fits an Authorization header unquoted. */
const TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** Largest token taken: LiveKit's JWTs run to a few hundred bytes; a header this big is a mistake. */
export const MAX_PUBLISH_TOKEN = 4096;

export function parseWhipTarget(text: string, token: string | null): WhipTarget | string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `--publish must be a URL like whip+http://127.0.0.1:8889/cam/whip, got ${JSON.stringify(text)}`;
  }
  const scheme = url.protocol === 'whip+http:' ? 'http' : url.protocol === 'whip+https:' ? 'https' : null;
  if (!scheme) return `--publish by WHIP takes whip+http:// or whip+https://, got ${url.protocol}//`;
  if (!url.hostname) return '--publish needs a host: whip+http://HOST:PORT/PATH';
  if (url.username || url.password) return '--publish takes no credentials in the URL: give --publish-token';
  if (token !== null && (token.length > MAX_PUBLISH_TOKEN || !TOKEN.test(token))) return `--publish-token must be a bearer token (letters, digits, -._~+/ and trailing =; at most ${MAX_PUBLISH_TOKEN} characters)`;
  const port = url.port ? `:${url.port}` : '';
  const rest = `${url.hostname}${port}${url.pathname}${url.search}`;
  return { kind: 'whip', endpoint: `${scheme}://${rest}`, token, label: `${url.protocol}//${rest}` };
}
