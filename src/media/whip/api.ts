/**
 * WHIP's two HTTP calls (RFC 9725): POST the offer (`application/sdp`) to the endpoint, get
 * `201 Created` with the answer and the session's resource in `Location`; DELETE the resource to
 * end it. No trickle (our offer carries its candidates) and so no PATCH. Every request has a
 * timeout; a transport failure is `sfu_unreachable`, a refusal `sfu_refused` with the status and
 * the first line of the body (what LiveKit and MediaMTX say why).
 */
import { FramehostError } from '../../errors.ts';
import type { WhipTarget } from './target.ts';

export interface WhipApiOptions {
  /** One request (POST of the offer, DELETE of the resource). */
  readonly requestTimeoutMs: number;
  /** Largest answer taken: an SDP answer for one video track is a few KiB. */
  readonly maxAnswerBytes: number;
}

export const DEFAULT_WHIP_API: WhipApiOptions = { requestTimeoutMs: 5000, maxAnswerBytes: 64 * 1024 };

/** The answer and where the session lives (absolute: `Location` is read relative to the URL that answered). */
export interface WhipAnswer {
  readonly sdp: string;
  readonly resource: string;
}

export class WhipApi {
  constructor(
    private readonly target: WhipTarget,
    private readonly options: WhipApiOptions = DEFAULT_WHIP_API,
  ) {}

  private headers(extra: Record<string, string>): Record<string, string> {
    return this.target.token === null ? extra : { ...extra, authorization: `Bearer ${this.target.token}` };
  }

  private async request(url: string, init: RequestInit, signal?: AbortSignal): Promise<Response> {
    const timeout = AbortSignal.timeout(this.options.requestTimeoutMs);
    try {
      return await fetch(url, { ...init, signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
    } catch (err) {
      throw new FramehostError('sfu_unreachable', `the WHIP endpoint did not answer at ${this.target.label}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  /** POST the offer: the answer and the resource, or a coded error. */
  async offer(sdp: string, signal?: AbortSignal): Promise<WhipAnswer> {
    const response = await this.request(this.target.endpoint, { method: 'POST', body: sdp, headers: this.headers({ 'content-type': 'application/sdp' }) }, signal);
    const body = await this.text(response);
    if (response.status !== 201) throw new FramehostError('sfu_refused', `WHIP POST: ${response.status} ${firstLine(body)}`.trim());
    const location = response.headers.get('location');
    if (!location) throw new FramehostError('sfu_refused', 'WHIP POST: 201 without a Location');
    if (!body.startsWith('v=')) throw new FramehostError('sfu_refused', 'WHIP POST: 201 without an SDP answer');
    // Relative to the URL that answered (fetch followed any redirect: RFC 9725 allows 307).
    return { sdp: body, resource: new URL(location, response.url || this.target.endpoint).href };
  }

  /** DELETE the resource: the SFU ends the session (and hangs up its peer). */
  async end(resource: string, signal?: AbortSignal): Promise<void> {
    const response = await this.request(resource, { method: 'DELETE', headers: this.headers({}) }, signal);
    const body = await this.text(response);
    if (!response.ok) throw new FramehostError('sfu_refused', `WHIP DELETE: ${response.status} ${firstLine(body)}`.trim());
  }

  private async text(response: Response): Promise<string> {
    let body: string;
    try {
      body = await response.text();
    } catch (err) {
      throw new FramehostError('sfu_unreachable', `the WHIP endpoint's reply broke off: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    if (Buffer.byteLength(body) > this.options.maxAnswerBytes) throw new FramehostError('sfu_refused', `WHIP: a reply over ${this.options.maxAnswerBytes} bytes`);
    return body;
  }
}

/** The body's first line, bounded (an HTML error page is no log line). */
function firstLine(body: string): string {
  return (body.split(/\r?\n/, 1)[0] ?? '').slice(0, 200);
}
