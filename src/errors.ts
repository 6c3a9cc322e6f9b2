/**
 * Every error framehost reports to a caller, in one table (the fastify `lib/errors.js` pattern).
 *
 * Errors are values: `{ code, message }` travels in acknowledgements and JSON lines; an
 * exception is only thrown at the edges, as a `FramehostError` carrying the same code.
 * The error table of docs/protocol.md is checked against this one by `test/errors.test.ts`.
 */

export const ERRORS = {
  // lifecycle
  busy: 'a session is already running (or still being cleaned up); only one session at a time',
  not_ready: 'the model is not loaded yet; retry when /ready answers 200',
  load_failed: 'the model failed to load; the runtime cannot serve sessions',
  provider_failed: 'the requested execution provider (webgpu, cuda, tensorrt) could not start; --provider auto falls back to the CPU',
  shutting_down: 'the runtime is shutting down and takes no new sessions',
  no_session: 'there is no running session',
  not_owner: 'only the session owner may do this',
  // commands
  unknown_command: 'the model has no command with this name',
  invalid_args: 'the command arguments do not match its schema',
  command_failed: "the model's command handler threw",
  unknown_track: 'the model declares no input track with this name',
  invalid_input: 'the input frame does not match its track (size, format or data length)',
  // the model's own faults, reported as a session's end
  loop_failed: "the model's loop threw",
  bad_frame: 'the model emitted a malformed frame (its data length does not match width × height × format)',
  worker_crashed: 'the inference worker died',
  // requests and transport
  bad_request: 'the request is malformed',
  payload_too_large: 'the request is larger than the configured limit',
  rate_limited: 'too many requests from this client; slow down',
  unauthorized: 'missing or invalid credentials',
  forbidden: "the credentials' role does not allow this",
  token_expired: 'the access token has expired; get a new one',
  too_many_connections: 'the server has reached its connection limit',
  bad_token: 'the session token does not match the running session',
  timeout: 'the operation did not finish in time',
  internal: 'an internal error occurred; see the server log',
  // fleet: gateway, queue and node admission (src/fleet)
  ticket_invalid: 'the ticket is not valid for this node (forged, malformed, or not the one it expects)',
  ticket_expired: 'the ticket has expired; wait for the gateway to assign a node again',
  ticket_used: 'the ticket has already been used',
  queue_full: 'the queue is full; try again later',
  queue_unavailable: 'the queue (Redis) cannot be reached; try again later',
  node_lost: 'the nodes serving this request were lost too many times; the request failed',
  // WebRTC media (src/transport/webrtc)
  webrtc_unavailable: 'WebRTC is not available on this server; use Socket.IO frames',
  bad_sdp: 'the session description is malformed or cannot be applied',
  unknown_peer: 'this connection has no peer connection with that id',
  too_many_peers: 'the server has reached its peer connection limit',
  too_many_viewers: 'the broadcast has reached its viewer limit',
  lease_lost: 'this fleet node no longer holds the ride (its lease lapsed); the gateway assigns it again',
  // publishing to an SFU (--publish, src/media/janus)
  sfu_unreachable: 'the SFU (Janus or a WHIP endpoint) did not answer, lost the session or the media connection to it failed; the publisher connects again',
  sfu_refused: 'the SFU (Janus or a WHIP endpoint) refused a request of the publisher (the error names its code, or the WHIP endpoint\'s HTTP status and the first line of its reply); the publisher connects again',
  // the command line (src/cli): failures whose message is the whole story, printed without a stack
  bad_usage: 'the command line is wrong (an unknown flag, a missing or malformed value); framehost prints the mistake and exits 2',
  bad_journal: 'the file is not a journal this framehost can replay',
  listen_failed: 'the server cannot listen on this host and port',
  write_failed: 'a file or folder could not be written',
} as const;

export type ErrorCode = keyof typeof ERRORS;

export interface ErrorValue {
  readonly code: ErrorCode;
  readonly message: string;
}

/** Build an error value; `detail` refines the table's generic message. */
export function errorValue(code: ErrorCode, detail?: string): ErrorValue {
  return { code, message: detail ? `${ERRORS[code]}: ${detail}` : ERRORS[code] };
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERRORS, value);
}

/** The thrown form, for APIs that return promises (createRuntime, the client). */
export class FramehostError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string = ERRORS[code], options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FramehostError';
    this.code = code;
  }
  static from(value: ErrorValue): FramehostError {
    return new FramehostError(value.code, value.message);
  }
  toValue(): ErrorValue {
    return { code: this.code, message: this.message };
  }
}

/** Result of any request: what acknowledgements carry. */
export type Result<T extends object = object> = ({ ok: true } & T) | { ok: false; error: ErrorValue };

export function fail(code: ErrorCode, detail?: string): { ok: false; error: ErrorValue } {
  return { ok: false, error: errorValue(code, detail) };
}
