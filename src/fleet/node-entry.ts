/**
 * What a fleet node writes to the registry each heartbeat (and at every change of its charts'
 * active states): its state, its ride and lease, its counts, and both charts' active states
 * for the gateway's /charts page.
 */
import type { StateValue } from 'xstate';
import { activeStateIds } from '../machines/chart-graph.ts';
import { registryStateOf, type NodeSnapshot } from '../machines/node.machine.ts';
import type { Phase } from '../machines/phase.ts';
import { runtimeMachine } from '../machines/runtime.machine.ts';
import type { NodeEntry } from './registry.ts';

/** The node's registry entry now. `now`: the chart's monotonic clock; `runtimeValue`: the runtime chart's state value. */
export function nodeEntry(snap: NodeSnapshot, url: string, phase: Phase, runtimeValue: StateValue, now: number): NodeEntry {
  const c = snap.context;
  return {
    id: c.nodeId,
    url,
    state: registryStateOf(snap),
    at: Date.now(),
    sessions: c.sessions,
    ride: c.hold?.jobId ?? null,
    leaseAgeMs: c.hold ? Math.round(now - c.proof.proofAt) : null,
    fences: c.fences,
    refusedCompletions: c.refusedCompletions,
    chart: activeStateIds('node', snap.value),
    phase,
    // A dozen short ids: cheap enough for every heartbeat, and the gateway's /charts then
    // lights the watchdog and attended/orphaned too, which a phase cannot say.
    runtimeChart: activeStateIds(runtimeMachine.id, runtimeValue),
  };
}

/** Calls `changed` whenever a chart's set of active states differs from the last one it saw. */
export class StateChanges {
  private last = '';

  constructor(
    private readonly chartId: string,
    private readonly changed: () => void,
  ) {}

  /** A snapshot of the chart: its state value. */
  saw(value: StateValue): void {
    const states = activeStateIds(this.chartId, value).join(' ');
    if (states === this.last) return;
    this.last = states;
    this.changed();
  }
}
