import { describe, expect, it } from 'vitest';
import { InferenceTimer } from '../src/actors/inference-timer.ts';
import type { OnnxSession } from '../src/gpu/session.ts';

describe('InferenceTimer', () => {
  it('adds up the time of every run and starts from zero after a take', async () => {
    const session = { run: (x: number) => new Promise<number>((resolve) => setTimeout(() => resolve(x * 2), 20)) };
    const timer = new InferenceTimer();
    timer.time({ session } as unknown as OnnxSession);
    expect(await session.run(2)).toBe(4);
    await session.run(1);
    expect(timer.take()).toBeGreaterThanOrEqual(30);
    expect(timer.take()).toBe(0);
  });
});
