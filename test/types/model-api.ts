/**
 * Type tests for the model API, checked by `npm run typecheck` (tsc covers test/; nothing here
 * runs). Each `@ts-expect-error` sits on the line that makes the mistake: if the error moved
 * elsewhere, or vanished, tsc fails ("unused @ts-expect-error" or the error itself).
 */
import { defineModel, t, type CommandDef, type NumberField, type SessionContext } from '../../src/index.ts';

interface Model {
  readonly size: number;
}
interface State {
  count: number;
}

// A command typed by hand, with framehost's exported types: fits the model.
const bump: CommandDef<{ by: NumberField }, Model, State> = {
  args: { by: t.int({ min: 1, max: 10 }) },
  handler: ({ by }, { state }) => {
    state.count += by;
  },
};

export const good = defineModel({
  name: 'good',
  version: '1.0.0',
  load: async (): Promise<Model> => ({ size: 8 }),
  createSessionState: (): State => ({ count: 0 }),
  commands: {
    bump,
    reset: { args: {}, handler: (_args, { state }) => void (state.count = 0) },
  },
  async loop(ctx) {
    const n: number = ctx.state.count + ctx.model.size;
    void n;
  },
});

// The loop's context is the model's own: M and S come from load and createSessionState.
export const loopContext: (ctx: SessionContext<Model, State>) => Promise<void> = good.loop;

// A hand-typed command for another session state: the error is at the command, not "unknown" elsewhere.
const wrongState: CommandDef<{ by: NumberField }, Model, { other: string }> = {
  args: { by: t.int() },
  handler: () => {},
};
export const wrongCommand = defineModel({
  name: 'wrong-command',
  version: '1.0.0',
  load: async () => ({ size: 8 }),
  createSessionState: () => ({ count: 0 }),
  commands: {
    // @ts-expect-error the command's session state is not the model's
    wrongState,
  },
  async loop(ctx) {
    const n: number = ctx.state.count; // still typed: the mistake did not widen S to unknown
    void n;
  },
});

export const wrongArgs = defineModel({
  name: 'wrong-args',
  version: '1.0.0',
  load: async () => ({ size: 8 }),
  createSessionState: () => ({ count: 0 }),
  commands: {
    go: {
      args: { n: t.int(), mode: t.enum(['a', 'b']) },
      handler: ({ n, mode }, { state }) => {
        state.count = n;
        // @ts-expect-error an enum argument is its literal union, not any string
        const m: 'c' = mode;
        void m;
        // @ts-expect-error an undeclared argument does not exist
        void (n as number) + ({ n, mode }).speed;
      },
    },
  },
  async loop(ctx) {
    // @ts-expect-error the session state has no such field
    ctx.state.missing = 1;
  },
});

// @ts-expect-error an enum's default must be one of its values
export const badDefault = t.enum(['edges', 'toon'], { default: 'blur' });
export const goodDefault = t.enum(['edges', 'toon'], { default: 'toon' });
