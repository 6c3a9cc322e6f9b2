/**
 * A chart as a graph to draw: its states (compound ones containing their children) and its
 * transitions, read from the machine's own definition, so a drawing can never disagree with the
 * chart. Also which states a snapshot's value makes active. Pure: no layout, no DOM.
 */
import type { AnyStateMachine, InspectionEvent, StateValue } from 'xstate';
import type { Phase } from './phase.ts';

export interface ChartState {
  /** The state node's id, as XState names it (`node.ride.free.taking`). */
  readonly id: string;
  readonly key: string;
  readonly parent: string | null;
  readonly type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  /** Its parent's initial state. */
  readonly initial: boolean;
}

export interface ChartTransition {
  readonly id: string;
  readonly source: string;
  readonly target: string;
  /** The event, shortened (`after noShow`, `take done`), with its guard if any. */
  readonly label: string;
}

/**
 * A running chart a page can show: its machine's definition (what is drawn) and the actor
 * running it (what is lit: its snapshots; and what is listed: the events it receives, read
 * from its system's inspection stream). The runtime's actor and a fleet node's are both one.
 */
export interface LiveChart {
  readonly machine: AnyStateMachine;
  readonly actor: {
    getSnapshot(): { readonly value: StateValue };
    subscribe(observer: { next: () => void; error: (err: unknown) => void }): { unsubscribe(): void };
    readonly system: { inspect(observer: (event: InspectionEvent) => void): { unsubscribe(): void } };
  };
}

export interface ChartGraph {
  readonly id: string;
  readonly states: readonly ChartState[];
  readonly transitions: readonly ChartTransition[];
}

/** The parts of an XState state node read here. */
interface StateNodeLike {
  readonly id: string;
  readonly key: string;
  readonly type: ChartState['type'];
  readonly states: Record<string, StateNodeLike>;
  readonly initial?: { readonly target: readonly StateNodeLike[] };
  readonly transitions: ReadonlyMap<string, readonly TransitionLike[]>;
  readonly always?: readonly TransitionLike[];
}
interface TransitionLike {
  readonly target?: readonly StateNodeLike[];
  readonly guard?: unknown;
  readonly eventType: string;
}

export function eventLabel(eventType: string): string {
  let m = /^xstate\.after\.([^.]+)\./.exec(eventType);
  if (m) return `after ${m[1]}`;
  m = /^xstate\.done\.actor\.(.+)$/.exec(eventType);
  if (m) return `${m[1]} done`;
  m = /^xstate\.error\.actor\.(.+)$/.exec(eventType);
  if (m) return `${m[1]} failed`;
  return eventType === '' ? 'always' : eventType;
}

function guardLabel(guard: unknown): string {
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'object' && guard !== null && typeof (guard as { type?: unknown }).type === 'string') return (guard as { type: string }).type;
  return guard ? 'guard' : '';
}

export function chartGraph(machine: AnyStateMachine): ChartGraph {
  const states: ChartState[] = [];
  const transitions: ChartTransition[] = [];
  const walk = (node: StateNodeLike, parent: StateNodeLike | null): void => {
    if (parent) {
      const initial = parent.initial?.target.some((t) => t.id === node.id) ?? false;
      states.push({ id: node.id, key: node.key, parent: parent.id === machine.root.id ? null : parent.id, type: node.type, initial });
    }
    const all: TransitionLike[] = [...[...node.transitions.values()].flat(), ...(node.always ?? []).map((t) => ({ ...t, eventType: '' }))];
    for (const t of all) {
      for (const target of t.target ?? []) {
        const guard = guardLabel(t.guard);
        transitions.push({ id: `t${transitions.length}`, source: node.id, target: target.id, label: eventLabel(t.eventType) + (guard ? ` [${guard}]` : '') });
      }
    }
    for (const child of Object.values(node.states)) walk(child, node);
  };
  walk(machine.root as unknown as StateNodeLike, null);
  // Transitions into the root region's own states only: the root itself is the drawing's frame.
  return { id: machine.root.id, states, transitions: transitions.filter((t) => t.source !== machine.root.id && t.target !== machine.root.id) };
}

/**
 * The runtime chart's lifecycle states that a phase stands for (what a fleet node reports of
 * its runtime; the watchdog region and a running session's orphan substate are not in a phase).
 */
export function runtimeStateIdsOfPhase(phase: Phase): string[] {
  const root = 'framehost';
  if (phase === 'starting' || phase === 'running' || phase === 'stopping') return [`${root}.alive`, `${root}.alive.lifecycle`, `${root}.alive.lifecycle.session`, `${root}.alive.lifecycle.session.${phase}`];
  if (phase === 'loading' || phase === 'idle' || phase === 'cleanup' || phase === 'closing') return [`${root}.alive`, `${root}.alive.lifecycle`, `${root}.alive.lifecycle.${phase}`];
  return [`${root}.${phase}`];
}

/** The ids of every state a snapshot's value makes active (the regions and their ancestors included). */
export function activeStateIds(machineId: string, value: StateValue): string[] {
  const out: string[] = [];
  const walk = (prefix: string, v: StateValue): void => {
    if (typeof v === 'string') {
      out.push(`${prefix}.${v}`);
      return;
    }
    for (const [key, child] of Object.entries(v)) {
      out.push(`${prefix}.${key}`);
      if (child !== undefined) walk(`${prefix}.${key}`, child);
    }
  };
  walk(machineId, value);
  return out;
}
