/**
 * The gateway's record of what happened to the rides it speaks for: each line is emitted to
 * listeners (the tests' invariant checks, the fleet page) and the last few are kept for the
 * page's history.
 */
import { Emitter } from '../util/emitter.ts';

export type GatewayRecord =
  | { kind: 'requested'; t: number; jobId: string }
  | { kind: 'assigned'; t: number; jobId: string; node: string; attempt: number; reassignment: boolean }
  | { kind: 'stale_assignment'; t: number; jobId: string; node: string; attempt: number; why: string }
  | { kind: 'requeued'; t: number; jobId: string }
  | { kind: 'ended'; t: number; jobId: string; reason: string; error?: string }
  | { kind: 'abandoned'; t: number; jobId: string; removed: boolean };

/** One line of the page's history, in words. */
export function describeRecord(r: GatewayRecord): string {
  switch (r.kind) {
    case 'requested':
      return 'in line';
    case 'assigned':
      return `to ${r.node} (attempt ${r.attempt})${r.reassignment ? ', after a requeue' : ''}`;
    case 'stale_assignment':
      return `ignored ${r.node}'s stale assignment: ${r.why}`;
    case 'requeued':
      return 'its node was lost: back at the head of the line';
    case 'ended':
      return r.reason + (r.error ? ` (${r.error})` : '');
    case 'abandoned':
      return r.removed ? 'client gone: left the line' : 'client gone: the ride lives on at its node';
  }
}

export class GatewayRecords {
  private readonly emitter: Emitter<{ record: GatewayRecord }>;
  private readonly kept: GatewayRecord[] = [];

  /** `keep`: how many of the last records the history holds. */
  constructor(
    private readonly keep: number,
    onListenerError: (err: unknown) => void,
  ) {
    this.emitter = new Emitter(onListenerError);
  }

  add(r: GatewayRecord): void {
    this.kept.push(r);
    if (this.kept.length > this.keep) this.kept.shift();
    this.emitter.emit('record', r);
  }

  on(fn: (r: GatewayRecord) => void): () => void {
    return this.emitter.on('record', fn);
  }

  /** Newest first. */
  history(): readonly GatewayRecord[] {
    return [...this.kept].reverse();
  }
}
