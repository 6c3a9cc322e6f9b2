/**
 * Janus's REST API (its HTTP transport), the few calls a VideoRoom publisher needs: a session, a
 * handle on `janus.plugin.videoroom`, plugin messages (synchronous ones answer `success`, the
 * others `ack` and their result comes on the session's long poll), keep-alives and the end.
 * Every request has a timeout; a transport failure or a refusal is a `FramehostError` with a
 * code (`sfu_unreachable`, `sfu_refused`), the foreign error kept as its cause.
 */
import { FramehostError } from '../../errors.ts';

export interface JanusJsep {
  readonly type: 'offer' | 'answer';
  readonly sdp: string;
}

/** One message from Janus: a reply, or an event from the long poll. */
export interface JanusMessage {
  readonly janus: string;
  readonly transaction?: string;
  readonly sender?: number;
  readonly data?: { readonly id?: number };
  readonly error?: { readonly code: number; readonly reason: string };
  readonly plugindata?: { readonly plugin: string; readonly data: Readonly<Record<string, unknown>> };
  readonly jsep?: JanusJsep;
  readonly reason?: string;
}

export interface JanusApiOptions {
  /** A plain request (create, attach, message, keepalive, destroy). */
  readonly requestTimeoutMs: number;
  /** A long poll: Janus holds it up to 30 s and answers `keepalive` when nothing happened. */
  readonly pollTimeoutMs: number;
}

export const DEFAULT_JANUS_API: JanusApiOptions = { requestTimeoutMs: 5000, pollTimeoutMs: 40_000 };

export class JanusApi {
  private transactions = 0;

  constructor(
    readonly endpoint: string,
    private readonly options: JanusApiOptions = DEFAULT_JANUS_API,
  ) {}

  private nextTransaction(): string {
    this.transactions++;
    return `fh${this.transactions}`;
  }

  private async call(path: string, init: { body?: Record<string, unknown>; timeoutMs: number; signal?: AbortSignal }): Promise<JanusMessage | JanusMessage[]> {
    const timeout = AbortSignal.timeout(init.timeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    let response: Response;
    try {
      response = await fetch(`${this.endpoint}${path}`, {
        method: init.body ? 'POST' : 'GET',
        ...(init.body ? { body: JSON.stringify(init.body), headers: { 'content-type': 'application/json' } } : {}),
        signal,
      });
    } catch (err) {
      throw new FramehostError('sfu_unreachable', `${ERR_PREFIX}${this.endpoint}${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    if (!response.ok) throw new FramehostError('sfu_unreachable', `${ERR_PREFIX}${this.endpoint}${path}: HTTP ${response.status}`);
    try {
      return (await response.json()) as JanusMessage | JanusMessage[];
    } catch (err) {
      throw new FramehostError('sfu_unreachable', `${ERR_PREFIX}${this.endpoint}${path}: not JSON`, { cause: err });
    }
  }

  /** A request Janus answers at once; its `error` is a refusal. */
  private async post(path: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<JanusMessage> {
    const reply = await this.call(path, { body: { ...body, transaction: body.transaction ?? this.nextTransaction() }, timeoutMs: this.options.requestTimeoutMs, ...(signal ? { signal } : {}) });
    if (Array.isArray(reply)) throw new FramehostError('sfu_unreachable', `${ERR_PREFIX}${path}: a list where one reply was expected`);
    if (reply.janus === 'error') throw new FramehostError('sfu_refused', `Janus ${body.janus}: ${reply.error?.code ?? '?'} ${reply.error?.reason ?? ''}`.trim());
    return reply;
  }

  async createSession(signal?: AbortSignal): Promise<number> {
    const reply = await this.post('', { janus: 'create' }, signal);
    return idOf(reply, 'create');
  }

  async attach(session: number, plugin: string, signal?: AbortSignal): Promise<number> {
    const reply = await this.post(`/${session}`, { janus: 'attach', plugin }, signal);
    return idOf(reply, 'attach');
  }

  /**
   * A plugin message. A synchronous one's result comes in the reply; an asynchronous one is
   * acknowledged and its result is the session's next event with the same transaction.
   */
  async message(session: number, handle: number, body: Record<string, unknown>, options: { jsep?: JanusJsep; signal?: AbortSignal } = {}): Promise<JanusMessage> {
    const transaction = this.nextTransaction();
    const reply = await this.post(`/${session}/${handle}`, { janus: 'message', transaction, body, ...(options.jsep ? { jsep: options.jsep } : {}) }, options.signal);
    if (reply.janus !== 'ack') return reply;
    for (;;) {
      const events = await this.poll(session, options.signal);
      const answer = events.find((e) => e.transaction === transaction);
      if (answer) return answer;
    }
  }

  /** The session's pending events (up to 10), waiting up to ~30 s for one: also keeps the session alive. */
  async poll(session: number, signal?: AbortSignal): Promise<JanusMessage[]> {
    const reply = await this.call(`/${session}?maxev=10&rid=${Date.now()}`, { timeoutMs: this.options.pollTimeoutMs, ...(signal ? { signal } : {}) });
    const events = Array.isArray(reply) ? reply : [reply];
    const lost = events.find((e) => e.janus === 'error');
    // 458: no such session (Janus restarted, or the session timed out).
    if (lost) throw new FramehostError('sfu_unreachable', `Janus lost the session: ${lost.error?.code ?? '?'} ${lost.error?.reason ?? ''}`.trim());
    return events;
  }

  async keepalive(session: number, signal?: AbortSignal): Promise<void> {
    await this.post(`/${session}`, { janus: 'keepalive' }, signal);
  }

  /** Detach the handle (Janus hangs up the publisher's peer) and destroy the session. */
  async destroy(session: number, handle: number | null, signal?: AbortSignal): Promise<void> {
    if (handle !== null) await this.post(`/${session}/${handle}`, { janus: 'detach' }, signal);
    await this.post(`/${session}`, { janus: 'destroy' }, signal);
  }
}

const ERR_PREFIX = 'Janus did not answer at ';

function idOf(reply: JanusMessage, what: string): number {
  const id = reply.data?.id;
  if (reply.janus !== 'success' || typeof id !== 'number') throw new FramehostError('sfu_refused', `Janus ${what}: unexpected reply ${reply.janus}`);
  return id;
}

/** The VideoRoom's own error in a plugin reply (`error_code`, `error`), or null. */
export function videoRoomError(reply: JanusMessage): { code: number; reason: string } | null {
  const data = reply.plugindata?.data;
  if (!data || typeof data.error_code !== 'number') return null;
  return { code: data.error_code, reason: typeof data.error === 'string' ? data.error : '' };
}
