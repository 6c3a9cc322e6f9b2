/**
 * Colour maps and presets of the Gray-Scott world. A palette is a gradient over t in [0, 1]
 * (0 where the V chemical is dense, 1 on the empty background), rasterised to the 256×4 bytes
 * that the graph's `Gather` reads.
 */

type Rgb = readonly [number, number, number];

const GRADIENTS = {
  ocean: [[250, 250, 210], [40, 190, 200], [20, 60, 140], [8, 12, 40]],
  ember: [[255, 255, 200], [255, 170, 40], [190, 40, 20], [20, 5, 10]],
  mono: [[255, 255, 255], [0, 0, 0]],
  neon: [[255, 60, 200], [120, 255, 120], [40, 40, 255], [5, 5, 20]],
} as const satisfies Record<string, readonly Rgb[]>;

export type PaletteName = keyof typeof GRADIENTS;
export const PALETTES = Object.keys(GRADIENTS) as PaletteName[];

export function paletteBytes(name: PaletteName): Uint8Array {
  const stops: readonly Rgb[] = GRADIENTS[name];
  const out = new Uint8Array(256 * 4);
  for (let i = 0; i < 256; i++) {
    const pos = (i / 255) * (stops.length - 1);
    const k = Math.min(stops.length - 2, Math.floor(pos));
    const f = pos - k;
    const a = stops[k]!;
    const b = stops[k + 1]!;
    for (let c = 0; c < 3; c++) out[i * 4 + c] = Math.round(a[c]! + (b[c]! - a[c]!) * f);
    out[i * 4 + 3] = 255;
  }
  return out;
}

/** Feed and kill rates of well-known Gray-Scott regimes. */
export const PRESETS = {
  coral: { feed: 0.0545, kill: 0.062 },
  mitosis: { feed: 0.0367, kill: 0.0649 },
  spots: { feed: 0.03, kill: 0.062 },
  worms: { feed: 0.078, kill: 0.061 },
  maze: { feed: 0.029, kill: 0.057 },
  waves: { feed: 0.014, kill: 0.045 },
} as const;

export type PresetName = keyof typeof PRESETS;
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];
