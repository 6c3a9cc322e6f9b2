/**
 * How a Socket.IO request's arguments are read, for every request event of every server
 * (node and gateway): the acknowledgement is the last argument when it is a function, and the
 * arguments before it are the payload. Reading `(req, ack)` positionally took a stray second
 * argument for the ack and dropped the request as ack-less; the client waited for its timeout.
 */
import type { Result } from '../../errors.ts';

export type Ack = (result: Result) => void;

export interface RequestArgs {
  /** The acknowledgement, when the last argument is a function. */
  readonly ack: Ack | undefined;
  /** The payload arguments (everything before the ack). */
  readonly payload: readonly unknown[];
}

export function splitAck(args: readonly unknown[]): RequestArgs {
  const last = args.at(-1);
  return typeof last === 'function' ? { ack: last as Ack, payload: args.slice(0, -1) } : { ack: undefined, payload: args };
}

/** The message of the `bad_request` for a request with more payload arguments than it takes. */
export function extraArgumentsMessage(event: string, takes: number, got: number): string {
  return `${event} takes ${takes === 1 ? 'one payload argument' : `${takes} payload arguments`} and an acknowledgement; got ${got}`;
}
