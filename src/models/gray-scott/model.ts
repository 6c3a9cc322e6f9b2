/**
 * The built-in demo world: a Gray-Scott reaction-diffusion field you can paint into.
 * It is an ordinary framehost model module, loaded through the same path as any user model.
 *
 * Model scope: the ONNX session, the field size, the palettes' bytes.
 * Session scope: the field itself (the "latents"), feed/kill rates and palette choice: every
 * session starts from the same seeded field, whatever the previous user painted.
 *
 * Options (`--model-option key=value`): size (16-1024, default 256), steps per frame (1-32,
 * default 8), fps cap (0 = as fast as the model runs, default 60).
 */
import * as ort from 'onnxruntime-node';
import { defineModel } from '../../model/api.ts';
import { t } from '../../model/schema.ts';
import { tensorToFrame } from '../../gpu/frames.ts';
import { buildGrayScottGraph } from './graph.ts';
import { PALETTES, PRESETS, PRESET_NAMES, paletteBytes, type PaletteName, type PresetName } from './palettes.ts';
import type { OnnxSession } from '../../gpu/session.ts';
import { seededRandom } from '../../util/random.ts';

interface World {
  readonly onnx: OnnxSession;
  readonly size: number;
  readonly fps: number;
  readonly palettes: Readonly<Record<PaletteName, ort.Tensor>>;
}

export interface Field {
  /** U then V planes, size×size each: the current field. */
  uv: Float32Array;
  /** The other buffer: ONNX Runtime writes the next field into it, then the two swap. */
  spare: Float32Array;
  readonly feed: Float32Array;
  readonly kill: Float32Array;
  palette: PaletteName;
}

function intOption(options: Readonly<Record<string, unknown>>, key: string, fallback: number, min: number, max: number): number {
  const raw = options[key];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new RangeError(`model option ${key} must be an integer in ${min}..${max}, got ${String(raw)}`);
  return n;
}

function paint(field: Field, size: number, cx: number, cy: number, radius: number): void {
  const plane = size * size;
  for (let dy = -radius; dy <= radius; dy++) {
    for (let dx = -radius; dx <= radius; dx++) {
      if (dx * dx + dy * dy > radius * radius) continue;
      // The world is a torus (the graph pads with wrap-around), so strokes wrap too.
      const x = (((cx + dx) % size) + size) % size;
      const y = (((cy + dy) % size) + size) % size;
      field.uv[y * size + x] = 0.5;
      field.uv[plane + y * size + x] = 0.25 + 0.25 * (1 - (dx * dx + dy * dy) / (radius * radius + 1));
    }
  }
}

/** The field every session starts from (exported for the benchmark's bare loop). */
export function seedField(size: number): Field {
  const uv = new Float32Array(2 * size * size);
  uv.fill(1, 0, size * size);
  const field: Field = { uv, spare: new Float32Array(uv.length), feed: new Float32Array([PRESETS.coral.feed]), kill: new Float32Array([PRESETS.coral.kill]), palette: 'ocean' };
  // Deterministic: the seed field must be identical in every session.
  const random = seededRandom(20261127);
  for (let i = 0; i < 12; i++) paint(field, size, Math.floor(random() * size), Math.floor(random() * size), 3 + Math.floor(random() * 6));
  return field;
}

export default defineModel({
  name: 'gray-scott',
  version: '1.0.0',
  description: 'Gray-Scott reaction-diffusion: paint with stamp, switch regimes with preset.',

  async load({ createSession, options }) {
    const size = intOption(options, 'size', 256, 16, 1024);
    const steps = intOption(options, 'steps', 8, 1, 32);
    const fps = intOption(options, 'fps', 60, 0, 1000);
    const palettes = Object.fromEntries(PALETTES.map((p) => [p, new ort.Tensor('uint8', paletteBytes(p), [256, 4])])) as Record<PaletteName, ort.Tensor>;
    const warm = seedField(size);
    // A GPU's first frame is checked against the CPU's on the real seed field: made-up values
    // would be a chaotic field and random rates, where GPU and CPU rounding drift apart honestly.
    const probe = {
      state: new ort.Tensor('float32', warm.uv.slice(), [1, 2, size, size]),
      feed: new ort.Tensor('float32', warm.feed, [1]),
      kill: new ort.Tensor('float32', warm.kill, [1]),
      palette: palettes.ocean,
    };
    const onnx = await createSession(buildGrayScottGraph(steps), { probe });
    // Warm-up: the first runs pay for allocation and kernel selection; users should not.
    for (let i = 0; i < 3; i++) {
      await onnx.session.run({
        state: new ort.Tensor('float32', warm.uv, [1, 2, size, size]),
        feed: new ort.Tensor('float32', warm.feed, [1]),
        kill: new ort.Tensor('float32', warm.kill, [1]),
        palette: palettes.ocean,
      });
    }
    return { onnx, size, fps, palettes } satisfies World;
  },

  createSessionState: (world: World): Field => seedField(world.size),

  commands: {
    stamp: {
      description: 'Drop chemical V in a disk at (x, y), in field pixels; coordinates wrap around.',
      args: {
        x: t.int({ min: 0, max: 4095, description: 'column' }),
        y: t.int({ min: 0, max: 4095, description: 'row' }),
        radius: t.int({ min: 1, max: 64, default: 8, description: 'disk radius in pixels' }),
      },
      handler: ({ x, y, radius }, { model, state }) => paint(state, model.size, x, y, radius ?? 8),
    },
    preset: {
      description: 'Switch to the feed/kill rates of a known regime.',
      // The default names what a session starts with (coral), so a form shows it.
      args: { name: t.enum(PRESET_NAMES, { default: 'coral', description: 'regime' }) },
      handler: ({ name }, { state, send }) => {
        const p = PRESETS[name as PresetName];
        state.feed[0] = p.feed;
        state.kill[0] = p.kill;
        send({ preset: name, feed: p.feed, kill: p.kill });
      },
      // The clients' rates sliders move to the preset's rates (docs/writing-a-model.md, "The session's command state").
      shows: ({ name }) => ({ rates: { feed: PRESETS[name as PresetName].feed, kill: PRESETS[name as PresetName].kill } }),
    },
    rates: {
      description: 'Set the feed and kill rates directly.',
      args: {
        // Defaults: the rates a session starts with (the coral regime), so a form shows them.
        feed: t.float({ min: 0, max: 0.1, default: PRESETS.coral.feed, description: 'feed rate of U' }),
        kill: t.float({ min: 0, max: 0.1, default: PRESETS.coral.kill, description: 'kill rate of V' }),
      },
      handler: ({ feed, kill }, { state }) => {
        state.feed[0] = feed;
        state.kill[0] = kill;
      },
      // Rates set by hand are no preset's: the preset box shows none rather than a stale name.
      shows: () => ({ preset: null }),
    },
    palette: {
      description: 'Change the colour map.',
      args: { name: t.enum(PALETTES, { default: 'ocean', description: 'colour map' }) },
      handler: ({ name }, { state }) => {
        state.palette = name as PaletteName;
      },
    },
    clear: {
      description: 'Empty the field (then paint with stamp).',
      args: {},
      handler: (_args, { state }) => {
        state.uv.fill(1, 0, state.uv.length / 2);
        state.uv.fill(0, state.uv.length / 2);
      },
    },
  },

  async loop(ctx) {
    const { model: world, state: field } = ctx;
    const shape = [1, 2, world.size, world.size];
    const feed = new ort.Tensor('float32', field.feed, [1]);
    const kill = new ort.Tensor('float32', field.kill, [1]);
    const interval = world.fps > 0 ? 1000 / world.fps : 0;
    let next = performance.now();
    while (!ctx.shouldStop()) {
      // The next field goes into the spare buffer (no allocation per frame); the picture is a
      // fresh buffer, because emit moves it to the main thread.
      const out = await world.onnx.session.run(
        { state: new ort.Tensor('float32', field.uv, shape), feed, kill, palette: world.palettes[field.palette] },
        { state_out: new ort.Tensor('float32', field.spare, shape), rgba: null },
      );
      [field.uv, field.spare] = [field.spare, field.uv];
      ctx.emit(tensorToFrame(out.rgba!));
      if (interval > 0) {
        next += interval;
        const wait = next - performance.now();
        if (wait > 0) await ctx.sleep(wait);
        else next = performance.now(); // behind: do not try to catch up in a burst
      }
    }
  },
});
