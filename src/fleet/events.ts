/**
 * The fleet's vocabulary: the gateway's typed Socket.IO event map (shared by the gateway and
 * the fleet client), and what travels through the queue between gateways and nodes (a job's
 * data, its progress = the assignment, its return value = how the ride ended).
 */
import type { Ack } from '../transport/socket/events.ts';
import type { ErrorValue } from '../errors.ts';
import type { EndReason } from '../machines/types.ts';

/** Why a ride ended: a session's end reason, or one of the fleet's own. */
export type RideEndReason =
  | EndReason
  | 'no_show' // assigned, but the user never started the session on the node
  | 'cancelled' // the user left the queue (ride:cancel, or gone past the reconnect grace)
  | 'failed'; // the job failed (error says why: node_lost after too many requeues)

export interface RideRequest {
  /** After a reconnect (to any gateway replica): the ride to take over, with its secret. */
  readonly resume?: { readonly jobId: string; readonly secret: string };
}

export interface RideGrant {
  readonly jobId: string;
  /** Proof of this ride for `resume`; only its SHA-256 is stored in the job. */
  readonly secret: string;
}

/** The client's place in line: 1 is next. */
export interface QueueNotice {
  readonly jobId: string;
  readonly position: number;
  /** Waiting jobs in the whole queue. */
  readonly waiting: number;
  /**
   * The position went up because a job whose node was lost went back to the head of the line
   * (BullMQ requeues stalled jobs first): said outright, so a client never wonders why.
   */
  readonly grewBecause?: 'requeued';
}

/** Where to go: the node's URL and the ticket it armed for this client. */
export interface Assignment {
  readonly jobId: string;
  readonly url: string;
  readonly ticket: string;
  readonly node: string;
  readonly attempt: number;
}

export interface RequeueNotice {
  readonly jobId: string;
  /** The node holding this ride stopped renewing its lease (died, froze, or lost Redis). */
  readonly reason: 'node_lost';
}

export interface RideEnd {
  readonly jobId: string;
  readonly reason: RideEndReason;
  readonly error?: ErrorValue;
}

export interface GatewayClientToServer {
  'ride:request': (request: RideRequest, ack: Ack<RideGrant>) => void;
  'ride:cancel': (request: object, ack: Ack) => void;
}

export interface GatewayServerToClient {
  queue: (notice: QueueNotice) => void;
  assigned: (assignment: Assignment) => void;
  requeued: (notice: RequeueNotice) => void;
  ended: (end: RideEnd) => void;
}

export const GATEWAY_CLIENT_EVENTS: readonly (keyof GatewayClientToServer)[] = ['ride:request', 'ride:cancel'];

/** A ride request in the queue (the BullMQ job's data). */
export interface RideJobData {
  /** SHA-256 (hex) of the ride's resume secret. */
  readonly secretHash: string;
  /** When the gateway added the job, ms since the epoch (for the wait-time histogram). */
  readonly requestedAt: number;
  /** The user the gateway admitted (the access token's `sub`), so the node knows whom it serves; absent without tokens. */
  readonly sub?: string;
}

/** The job's progress: the node publishes its assignment here (and QueueEvents fans it out). */
export interface AssignmentProgress {
  readonly type: 'assigned';
  readonly url: string;
  readonly ticket: string;
  readonly node: string;
  readonly attempt: number;
}

/** The job's progress once the ticket holder began the session on the node (after `AssignmentProgress`). */
export interface RidingProgress {
  readonly type: 'riding';
  readonly node: string;
  readonly attempt: number;
  readonly sessionId: string;
}

/** The job's return value: how the ride ended on the node. */
export interface RideResult {
  readonly reason: RideEndReason;
  readonly node: string;
  readonly attempt: number;
  readonly sessionId?: string;
  readonly frames?: number;
  readonly error?: ErrorValue;
}

export function isAssignmentProgress(value: unknown): value is AssignmentProgress {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return v.type === 'assigned' && typeof v.url === 'string' && typeof v.ticket === 'string' && typeof v.node === 'string' && typeof v.attempt === 'number';
}

export function isRideResult(value: unknown): value is RideResult {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.reason === 'string' && typeof v.node === 'string';
}

export function isRidingProgress(value: unknown): value is RidingProgress {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return v.type === 'riding' && typeof v.node === 'string' && typeof v.attempt === 'number' && typeof v.sessionId === 'string';
}
