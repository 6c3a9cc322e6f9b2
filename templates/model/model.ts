import * as ort from 'onnxruntime-node';
import { defineModel, t, tensorToFrame } from 'framehost';

export default defineModel({
  name: 'my-world',
  version: '0.1.0',
  // Model scope: runs once per process. './model.onnx' is found beside this file.
  async load({ createSession }) {
    return { onnx: await createSession('./model.onnx') };
  },
  // Session scope: fresh for every user. Keep all that a session changes here, never at module level.
  createSessionState: () => ({ time: 0, speed: 1, size: 2 }),
  commands: {
    waves: {
      description: 'Change the speed and the size of the waves.',
      args: { speed: t.float({ min: 0, max: 5, default: 1 }), size: t.float({ min: 0.5, max: 8, default: 2 }) },
      handler: ({ speed, size }, { state }) => {
        state.speed = speed;
        state.size = size;
      },
    },
  },
  async loop(ctx) {
    const FPS = 30;
    let due = performance.now(); // when the next frame is due: pacing by deadline keeps 30 frames/s honest
    while (!ctx.shouldStop()) { // also applies the commands that arrived
      const out = await ctx.model.onnx.session.run({
        time: new ort.Tensor('float32', [ctx.state.time], [1]),
        size: new ort.Tensor('float32', [ctx.state.size], [1]),
      });
      ctx.emit(tensorToFrame(out.rgba!)); // [H, W, 4] uint8; the buffer moves to the viewer
      ctx.state.time += ctx.state.speed / FPS;
      due += 1000 / FPS; // the time a frame takes is inside its period, not added to it
      const wait = due - performance.now();
      if (wait > 0) await ctx.sleep(wait); // wakes at once at stop
      else due = performance.now(); // behind: go on from now rather than burst to catch up
    }
  },
});
