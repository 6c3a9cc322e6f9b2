/**
 * `npm run device:check [-- --dry] [-- --providers cpu,webgpu,cuda] [-- --out PATH] [-- --budget-s 210]`
 *
 * The GPU check, as one run that writes one JSON file: the demo world at 256², 512² and 1024²,
 * the VAE-decoder-shaped network at 256² and the PP-OCRv4 detector at 256², each on every
 * provider: its first output against the CPU's (the same input), and fps bare, delivered over
 * Socket.IO (raw) and to one WebRTC viewer, in paired phases (bench/networks.ts).
 *
 * Default providers: cpu and webgpu, plus cuda when its provider library is installed. A
 * provider that fails is recorded with its error, and the run goes on. `--dry`: the same run
 * on the CPU alone at small sizes with short phases (a check of the script itself, ~1 minute
 * here). The budget stops starting new workloads once spent, so the run ends in ~4 minutes.
 * Carried to a GPU machine by bench/device-pack.sh and started there by bench/device-check.sh.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { cudaInstalled, gpuDevicePresent, isProviderChoice, type ProviderChoice } from '../src/gpu/providers.ts';
import type { OutputCheck } from '../src/gpu/compare.ts';
import { ChildRpc } from './child-rpc.ts';
import type { ClientRequest } from './client-process.ts';
import type { RtcClientRequest } from './webrtc-client.ts';
import { compareFirst, pairedRun, type PairedResult } from './networks.ts';
import type { WorkloadName } from './workloads.ts';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const dry = args.includes('--dry');
const providers = (flag('--providers') ?? (dry ? 'cpu' : ['cpu', 'webgpu', ...(cudaInstalled() ? ['cuda'] : [])].join(','))).split(',');
for (const p of providers) if (!isProviderChoice(p) || p === 'auto') throw new Error(`--providers: ${p} is not one of cpu, webgpu, cuda, tensorrt`);
const out = flag('--out') ?? (process.env.OUT ? join(process.env.OUT, 'device-check.json') : 'bench/device-check.json');
const budgetMs = Number(flag('--budget-s') ?? 210) * 1000;
const webrtc = !args.includes('--no-webrtc');

/** What runs, in order: the cheap ones first, so a spent budget drops the heaviest. */
const PLAN: readonly { workload: WorkloadName; size: number }[] = dry
  ? [{ workload: 'demo', size: 64 }, { workload: 'demo', size: 128 }, { workload: 'decoder', size: 64 }, { workload: 'ocr', size: 256 }]
  : [{ workload: 'demo', size: 256 }, { workload: 'demo', size: 512 }, { workload: 'ocr', size: 256 }, { workload: 'decoder', size: 256 }, { workload: 'demo', size: 1024 }];
const PHASE_MS = dry ? 300 : 1000;
const ROUNDS = dry ? 2 : 3;

function nvidiaSmi(): string | null {
  try {
    return execFileSync('nvidia-smi', ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'], { encoding: 'utf8', timeout: 10_000 }).trim();
  } catch {
    return null;
  }
}

interface Entry {
  readonly workload: WorkloadName;
  readonly size: number;
  readonly provider: ProviderChoice;
  readonly result?: PairedResult;
  readonly check?: OutputCheck | null;
  readonly vs_cpu?: ReturnType<typeof compareFirst>;
  readonly error?: string;
  readonly skipped?: string;
}

async function runPlan(client: ChildRpc<ClientRequest>, viewers: ChildRpc<RtcClientRequest> | undefined, started: number): Promise<Entry[]> {
  const entries: Entry[] = [];
  for (const { workload, size } of PLAN) {
    let cpuFirst: Uint8Array | undefined;
    for (const provider of providers as ProviderChoice[]) {
      if (Date.now() - started > budgetMs) {
        entries.push({ workload, size, provider, skipped: 'time budget spent' });
        continue;
      }
      try {
        const run = await pairedRun(client, workload, size, { provider, phaseMs: PHASE_MS, rounds: ROUNDS, ...(viewers ? { webrtc: viewers } : {}) });
        if (provider === 'cpu') cpuFirst = run.first;
        entries.push({ workload, size, provider, result: run.result, check: run.check, ...(cpuFirst && provider !== 'cpu' ? { vs_cpu: compareFirst(run.first, cpuFirst) } : {}) });
      } catch (err) {
        entries.push({ workload, size, provider, error: (err instanceof Error ? err.message : String(err)).slice(0, 500) });
        process.stderr.write(`  ${workload} ${size}² ${provider}: ${String(err)}\n`);
      }
    }
  }
  return entries;
}

const started = Date.now();
process.stderr.write(`device check${dry ? ' (dry run)' : ''}: providers ${providers.join(', ')}; ${ROUNDS} rounds of ${PHASE_MS} ms phases\n`);
const client = new ChildRpc<ClientRequest>(new URL('./client-process.ts', import.meta.url));
const viewers = webrtc ? new ChildRpc<RtcClientRequest>(new URL('./webrtc-client.ts', import.meta.url)) : undefined;
const entries = await runPlan(client, viewers, started);
await client.close();
await viewers?.close();
const report = {
  dry,
  machine: {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    gpu: nvidiaSmi(),
    gpu_device: gpuDevicePresent(),
    node: process.version,
    onnxruntime: ort.env.versions.common,
    backends: ort.listSupportedBackends(),
    cuda_provider_installed: cudaInstalled(),
  },
  providers,
  phase_ms: PHASE_MS,
  rounds: ROUNDS,
  entries,
  seconds: Math.round((Date.now() - started) / 1000),
};
writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
process.stderr.write(`device check: ${entries.filter((e) => e.result).length} of ${entries.length} runs done in ${report.seconds} s; ${out}\n`);
// process.exit: libwebrtc's teardown at a natural exit can crash (wrtc 0.10, Linux).
process.exit(0);
