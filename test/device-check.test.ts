/**
 * The device check's dry run: the script a GPU machine runs, on this machine's CPU at small
 * sizes with short phases, end to end (real workloads, real Socket.IO client process), and the
 * one JSON file it writes.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { compareFirst } from '../bench/networks.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

interface Report {
  dry: boolean;
  providers: string[];
  machine: { backends: { name: string; bundled: boolean }[]; gpu_device: boolean };
  entries: { workload: string; size: number; provider: string; result?: { bare_fps: number; delivered_fps: number; delivered_ratio: number }; error?: string }[];
}

describe('the device check', () => {
  it('runs dry on the CPU and writes one JSON file with every workload', { timeout: 120_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'fh-device-'));
    try {
      const out = join(dir, 'check.json');
      const run = spawnSync(process.execPath, ['--import', 'tsx', 'bench/device-check.ts', '--dry', '--no-webrtc', '--out', out], { cwd: root, encoding: 'utf8', timeout: 110_000 });
      expect(run.status, run.stderr).toBe(0);
      const report = JSON.parse(readFileSync(out, 'utf8')) as Report;
      expect(report).toMatchObject({ dry: true, providers: ['cpu'] });
      expect(report.machine.backends).toContainEqual({ name: 'webgpu', bundled: true });
      expect(report.entries.map((e) => `${e.workload} ${e.size}`)).toEqual(['demo 64', 'demo 128', 'decoder 64', 'ocr 256']);
      for (const e of report.entries) {
        expect(e.error).toBeUndefined();
        expect(e.result!.bare_fps).toBeGreaterThan(0);
        expect(e.result!.delivered_fps).toBeGreaterThan(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('compares two providers’ first outputs byte by byte', () => {
    expect(compareFirst(Uint8Array.of(10, 20, 30), Uint8Array.of(10, 22, 34))).toEqual({ max_abs_diff: 4, share_over_2: 0.333333 });
    expect(compareFirst(Uint8Array.of(1), Uint8Array.of(1, 2)).max_abs_diff).toBe(Infinity);
  });
});
