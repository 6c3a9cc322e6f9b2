import { it } from 'vitest';
import { fromCallback, getNextTransitions, initialTransition, transition } from 'xstate';
import { getShortestPaths } from '@xstate/graph';
import { runtimeMachine } from '../src/machines/runtime.machine.ts';
import { phaseOf } from '../src/machines/phase.ts';
it('proto', () => {
  const m = runtimeMachine.provide({ actors: { inference: fromCallback(() => undefined) } });
  const [s0] = initialTransition(m, {});
  console.log((s0 as any)._nodes.flatMap((n: any) => n.ownEvents));
  const [s1, actions] = transition(m, s0, { type: 'xstate.after.loadTimeout.framehost.alive.loading' } as any);
  console.log(s1.value, phaseOf(s1), actions.map(a=>a.type));
  const paths = getShortestPaths(m, { input: {}, serializeState: (s) => JSON.stringify({ v: s.value, c: { ...s.context, workerStarts: 0, sessionsStarted: 0 } }) });
  console.log(paths.length, [...new Set(paths.map(p => phaseOf(p.state)))]);
});
