/**
 * `npm run bench [-- --quick] [-- --json PATH] [-- --sizes 256,512] [-- --throughput-only] [-- --memory-only]
 *   [-- --joins-only] [-- --room-only] [-- --parts demo,decoder,ocr,room] [-- --decoder-size 128] [-- --provider cpu]`:
 * framehost against the bare ONNX loop. FRAMEHOST_ORT_THREADS=1 compares another thread setting
 * (it applies to the bare loop and the runtime alike).
 *
 * Parts: `room` is the encode-once room sender (bench/room.ts, in a process of its own; `--room-only`
 * is `--parts room`, its JSON in bench/results-room.json unless --json says otherwise).
 * `demo` is everything below on the demo world; `decoder` and `ocr` are the workloads
 * shaped like real networks (bench/networks.ts: delivered ÷ bare in paired phases). All run on
 * `--provider` (default cpu; bare loop and runtime alike; WebRTC's section stays on the CPU). The decoder runs at 128² by default: ~75 ms a frame on one CPU
 * thread here (0.3 s at 256²), so a phase still holds ~25 frames.
 *
 * Variants, interleaved in rounds so machine noise hits them alike (the machine drifts ±10-15% between runs):
 *   bare       the demo graph in a tight loop on a worker thread, nothing else
 *   runtime    the same model driven by framehost's loop, headless (no viewer)
 *   delivered  frames received per second by a socket.io-client in another process (raw, jpeg)
 * Ratios are taken per round (adjacent phases) and the median over rounds is reported.
 * Then latencies, the cost of idle extra viewers, and memory over many sessions.
 */
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { pino } from 'pino';
import * as ort from 'onnxruntime-node';
import { createRuntime, type Runtime } from '../src/runtime/runtime.ts';
import { listen, type FramehostHttpServer } from '../src/transport/server.ts';
import { Bare } from './bare.ts';
import type { ClientRequest } from './client-process.ts';
import { ChildRpc } from './child-rpc.ts';
import { median, pct, r2, r3, sleep } from './stats.ts';
import { runWebRtcBench } from './webrtc.ts';
import { networksMarkdown, pairedRun, type PairedResult } from './networks.ts';
import { WORKLOADS } from './workloads.ts';
import { isProviderChoice, type ProviderChoice } from '../src/gpu/providers.ts';
import { memoryMarkdown, memoryOverSessions, type MemoryResult } from './memory.ts';
import { joinsMarkdown, runJoinsBench } from './webrtc-joins.ts';
import type { RoomRequest } from './room.ts';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
/** `--room-only`: the room sender's section alone (bench/room.ts). */
const ROOM_ONLY = args.includes('--room-only') || (args.includes('--parts') && args[args.indexOf('--parts') + 1] === 'room');
const jsonPath = args.includes('--json') ? args[args.indexOf('--json') + 1]! : ROOM_ONLY ? 'bench/results-room.json' : 'bench/results.json';
const PHASE_MS = quick ? 1000 : 2000;
const ROUNDS = quick ? 3 : 6;
const SIZES = args.includes('--sizes') ? args[args.indexOf('--sizes') + 1]!.split(',').map(Number) : quick ? [256] : [256, 512];
/** `--throughput-only`: the paired fps rounds alone (e.g. to compare ORT thread settings). */
const THROUGHPUT_ONLY = args.includes('--throughput-only');
/** Sessions of the memory section; BENCH_MEMORY_SESSIONS=10000 shows whether RSS levels off. */
const MEMORY_SESSIONS = Number(process.env.BENCH_MEMORY_SESSIONS) || (quick ? 300 : 1000);
/** `--memory-only`: the memory section alone (bench/memory.ts). */
const MEMORY_ONLY = args.includes('--memory-only');
/** `--joins-only`: server RSS over BENCH_JOINS WebRTC joins alone (bench/webrtc-joins.ts). */
const JOINS_ONLY = args.includes('--joins-only');
const JOINS = Number(process.env.BENCH_JOINS) || (quick ? 300 : 2000);
/** FRAMEHOST_ORT_THREADS: the same ORT thread count for the bare loop and the runtime. */
const THREADS = Number(process.env.FRAMEHOST_ORT_THREADS) || undefined;
const PARTS = (args.includes('--parts') ? args[args.indexOf('--parts') + 1]! : ROOM_ONLY ? 'room' : 'demo,decoder,ocr,room').split(',');
for (const p of PARTS) if (p !== 'demo' && p !== 'room' && !(WORKLOADS as readonly string[]).includes(p)) throw new Error(`--parts: unknown part ${p} (demo, decoder, ocr, room)`);
const DECODER_SIZE = args.includes('--decoder-size') ? Number(args[args.indexOf('--decoder-size') + 1]) : 128;
const PROVIDER: ProviderChoice = ((p: string) => {
  if (!isProviderChoice(p)) throw new Error('--provider: auto, cpu, webgpu, cuda or tensorrt');
  return p;
})(args.includes('--provider') ? args[args.indexOf('--provider') + 1]! : 'cpu');


// ---------- the pieces under test ----------

/** The bare loop with this run's ORT settings. */
const bareLoop = (size: number): Bare => new Bare(size, { threads: THREADS, provider: PROVIDER });

/** The Socket.IO client, in its own process. */
type Client = ChildRpc<ClientRequest>;

async function world(size: number, fps = 0): Promise<{ rt: Runtime; server: FramehostHttpServer }> {
  const rt = await createRuntime({ modelOptions: { size, fps }, ort: { provider: PROVIDER, ...(THREADS ? { threads: THREADS } : {}) }, logger: pino({ level: 'warn' }) });
  await rt.ready();
  const server = await listen(rt, { host: '127.0.0.1', port: 0, requestsPerSecond: 10_000, requestBurst: 10_000 });
  return { rt, server };
}

async function untilIdle(rt: Runtime): Promise<void> {
  while (rt.phase() !== 'idle') await sleep(1);
}

/** Frames the runtime generated (received on the main thread) during `ms`. */
async function generatedFps(rt: Runtime, ms: number): Promise<number> {
  let frames = 0;
  const off = rt.on('frame', (f) => (frames += f.count));
  const t0 = performance.now();
  await sleep(ms);
  off();
  return (frames * 1000) / (performance.now() - t0);
}

// ---------- suites ----------

interface SizeResult {
  size: number;
  bare_fps: number;
  runtime_fps: number;
  delivered_fps: number;
  delivered_jpeg_fps: number;
  runtime_ratio: number;
  overhead_ratio: number;
  jpeg_ratio: number;
  frame_ms_bare: number;
  frame_ms_delivered: number;
  emit_to_receive_ms_p50: number;
  emit_to_receive_ms_p99: number;
  rounds: number;
}

async function throughput(size: number, client: Client): Promise<SizeResult> {
  const bare = bareLoop(size);
  const { rt, server } = await world(size);
  await client.ask({ type: 'connect', url: server.url, clients: 1 });
  const b: number[] = [];
  const r: number[] = [];
  const d: number[] = [];
  const j: number[] = [];
  const latencies: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    b.push(await bare.fps(PHASE_MS));

    rt.start();
    await sleep(150);
    r.push(await generatedFps(rt, PHASE_MS));
    rt.stop();
    await untilIdle(rt);

    for (const encoding of ['raw', 'jpeg'] as const) {
      await client.ask({ type: 'start', encoding });
      await sleep(150);
      const w = await client.ask<{ frames: number; ms: number; latencies: number[] }>({ type: 'window', ms: PHASE_MS });
      (encoding === 'raw' ? d : j).push((w.frames * 1000) / w.ms);
      if (encoding === 'raw') latencies.push(...w.latencies);
      await client.ask({ type: 'stop' });
    }
    process.stderr.write(`  ${size}² round ${round + 1}/${ROUNDS}: bare ${b.at(-1)!.toFixed(0)} runtime ${r.at(-1)!.toFixed(0)} delivered ${d.at(-1)!.toFixed(0)} jpeg ${j.at(-1)!.toFixed(0)} fps\n`);
  }
  await server.close();
  await rt.shutdown();
  await bare.close();
  const ratio = (xs: number[]) => median(xs.map((x, i) => x / b[i]!));
  return {
    size,
    bare_fps: r2(median(b)),
    runtime_fps: r2(median(r)),
    delivered_fps: r2(median(d)),
    delivered_jpeg_fps: r2(median(j)),
    runtime_ratio: r3(ratio(r)),
    overhead_ratio: r3(ratio(d)),
    jpeg_ratio: r3(ratio(j)),
    frame_ms_bare: r3(1000 / median(b)),
    frame_ms_delivered: r3(1000 / median(d)),
    emit_to_receive_ms_p50: r3(pct(latencies, 50)),
    emit_to_receive_ms_p99: r3(pct(latencies, 99)),
    rounds: ROUNDS,
  };
}

async function latencies(client: Client) {
  // At a real-time pace (60 fps), as a user would run the model; saturation is reported apart.
  const { rt, server } = await world(256, 60);
  await client.ask({ type: 'connect', url: server.url, clients: 1 });
  await client.ask({ type: 'start', encoding: 'raw' });
  await sleep(300);
  const paced = await client.ask<{ latencies: number[] }>({ type: 'window', ms: PHASE_MS * 2 });
  await client.ask({ type: 'stop' });
  const firstFrames: number[] = [];
  for (let i = 0; i < (quick ? 10 : 30); i++) {
    firstFrames.push((await client.ask<{ firstFrameMs: number }>({ type: 'start', encoding: 'raw' })).firstFrameMs);
    await client.ask({ type: 'stop' });
  }
  await client.ask({ type: 'start', encoding: 'raw' });
  const command = await client.ask<{ samples: number[] }>({ type: 'commandLatency', trials: quick ? 20 : 60 });
  const sw = await client.ask<{ samples: number[] }>({ type: 'switchLatency', trials: quick ? 10 : 30 });
  await client.ask({ type: 'stop' });
  await server.close();
  await rt.shutdown();
  return {
    emit_to_receive_ms_p50_60fps: r3(pct(paced.latencies, 50)),
    emit_to_receive_ms_p99_60fps: r3(pct(paced.latencies, 99)),
    first_frame_ms_p50: r3(median(firstFrames)),
    first_frame_ms_p99: r3(pct(firstFrames, 99)),
    command_to_frame_ms_p50: r3(median(command.samples)),
    command_to_frame_ms_p99: r3(pct(command.samples, 99)),
    session_switch_ms_p50: r3(median(sw.samples)),
    session_switch_ms_p99: r3(pct(sw.samples, 99)),
  };
}

/** Delivered fps with 1 connected client vs 2 and 4 (only the first is the viewer). */
async function viewers(client: Client) {
  const { rt, server } = await world(256);
  const byCount: Record<number, number[]> = { 1: [], 2: [], 4: [] };
  for (let round = 0; round < (quick ? 2 : 4); round++) {
    for (const n of [1, 2, 4]) {
      await client.ask({ type: 'connect', url: server.url, clients: n });
      await client.ask({ type: 'start', encoding: 'raw' });
      await sleep(150);
      const w = await client.ask<{ frames: number; ms: number }>({ type: 'window', ms: PHASE_MS / 2 });
      byCount[n]!.push((w.frames * 1000) / w.ms);
      await client.ask({ type: 'stop' });
    }
  }
  await server.close();
  await rt.shutdown();
  const base = byCount[1]!;
  return {
    viewers_fps: { 1: r2(median(base)), 2: r2(median(byCount[2]!)), 4: r2(median(byCount[4]!)) },
    viewers_ratio_4_to_1: r3(median(byCount[4]!.map((x, i) => x / base[i]!))),
  };
}

async function memory(): Promise<MemoryResult> {
  const { rt, server } = await world(256);
  const mem = await memoryOverSessions(rt, MEMORY_SESSIONS);
  await server.close();
  await rt.shutdown();
  return mem;
}

/** The room sender's section, in a process of its own (node-datachannel never meets wrtc). */
async function roomPart(): Promise<{ result: unknown; markdown: string }> {
  const child = new ChildRpc<RoomRequest>(new URL('./room.ts', import.meta.url));
  const r = await child.ask<{ result: unknown; markdown: string }>({ type: 'run', options: { quick, phaseMs: PHASE_MS, rounds: ROUNDS, sizes: SIZES, threads: THREADS, provider: PROVIDER } });
  await child.close();
  return r;
}

// ---------- main ----------

const client: Client = new ChildRpc(new URL('./client-process.ts', import.meta.url));
const started = Date.now();
process.stderr.write(`framehost bench (${quick ? 'quick' : 'full'}): phases of ${PHASE_MS} ms, ${ROUNDS} rounds\n`);
if (ROOM_ONLY) {
  await client.close();
  const room = await roomPart();
  writeFileSync(jsonPath, `${JSON.stringify({ machine: { cores: availableParallelism(), cpu: cpus()[0]?.model ?? 'unknown', node: process.version, onnxruntime: ort.env.versions.common }, mode: quick ? 'quick' : 'full', room: room.result }, null, 2)}\n`);
  console.log(`${room.markdown}\n\nmachine: ${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}; JSON: ${jsonPath}`);
  process.exit(0);
}
if (JOINS_ONLY) {
  process.stderr.write(`  server RSS over ${JOINS} WebRTC joins…\n`);
  const joins = await runJoinsBench(JOINS);
  await client.close();
  writeFileSync(jsonPath, `${JSON.stringify({ machine: { cores: availableParallelism(), cpu: cpus()[0]?.model ?? 'unknown', node: process.version }, webrtc_joins: joins }, null, 2)}\n`);
  console.log(joinsMarkdown(joins));
  process.exit(0);
}
if (MEMORY_ONLY) {
  process.stderr.write(`  memory over ${MEMORY_SESSIONS} sessions…\n`);
  const mem = await memory();
  await client.close();
  writeFileSync(jsonPath, `${JSON.stringify({ machine: { cores: availableParallelism(), cpu: cpus()[0]?.model ?? 'unknown', node: process.version }, memory: mem }, null, 2)}\n`);
  console.log(memoryMarkdown(mem));
  process.exit(0);
}
const networks: PairedResult[] = [];
for (const part of ['decoder', 'ocr'] as const) {
  if (PARTS.includes(part)) networks.push((await pairedRun(client, part, part === 'decoder' ? DECODER_SIZE : 256, { provider: PROVIDER, phaseMs: PHASE_MS, rounds: ROUNDS, ...(THREADS ? { threads: THREADS } : {}) })).result);
}
if (!PARTS.includes('demo')) {
  await client.close();
  writeFileSync(jsonPath, `${JSON.stringify({ machine: { cores: availableParallelism(), cpu: cpus()[0]?.model ?? 'unknown', node: process.version, onnxruntime: ort.env.versions.common }, mode: quick ? 'quick' : 'full', networks }, null, 2)}\n`);
  console.log(`\n${networksMarkdown(networks)}\n\nmachine: ${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}, onnxruntime ${ort.env.versions.common}; JSON: ${jsonPath}`);
  process.exit(0);
}
const sizes: SizeResult[] = [];
for (const size of SIZES) sizes.push(await throughput(size, client));
if (THROUGHPUT_ONLY) {
  await client.close();
  console.log(JSON.stringify(sizes, null, 2));
  process.exit(0);
}
process.stderr.write('  latencies…\n');
const lat = await latencies(client);
process.stderr.write('  viewers…\n');
const view = await viewers(client);
process.stderr.write(`  memory over ${MEMORY_SESSIONS} sessions…\n`);
const mem = await memory();
await client.close();
// `--no-webrtc`: skip the WebRTC section (bench/webrtc.ts).
const rtc = args.includes('--no-webrtc') ? null : await runWebRtcBench({ quick, phaseMs: PHASE_MS, rounds: ROUNDS, sizes: SIZES, threads: THREADS, bare: bareLoop });
if (!args.includes('--no-webrtc')) process.stderr.write(`  server RSS over ${JOINS} WebRTC joins…\n`);
const joins = args.includes('--no-webrtc') ? null : await runJoinsBench(JOINS);
if (PARTS.includes('room')) process.stderr.write('  room sender…\n');
const room = PARTS.includes('room') ? await roomPart() : null;

const s256 = sizes.find((s) => s.size === 256)!;
const results = {
  machine: { cores: availableParallelism(), cpu: cpus()[0]?.model ?? 'unknown', node: process.version, onnxruntime: ort.env.versions.common, provider: 'cpu' },
  mode: quick ? 'quick' : 'full',
  bare_fps: s256.bare_fps,
  runtime_fps: s256.runtime_fps,
  delivered_fps: s256.delivered_fps,
  overhead_ratio: s256.overhead_ratio,
  emit_to_receive_ms_p50: lat.emit_to_receive_ms_p50_60fps,
  emit_to_receive_ms_p50_saturated: s256.emit_to_receive_ms_p50,
  command_to_frame_ms_p50: lat.command_to_frame_ms_p50,
  first_frame_ms_p50: lat.first_frame_ms_p50,
  session_switch_ms_p50: lat.session_switch_ms_p50,
  rss_growth_mb_1000_sessions: mem.rss_growth_mb_1000_sessions,
  sizes,
  latency: lat,
  viewers: view,
  memory: mem,
  ...(rtc ? { webrtc: rtc.result } : {}),
  networks,
  ...(joins ? { webrtc_joins: joins } : {}),
  ...(room ? { room: room.result } : {}),
  seconds: Math.round((Date.now() - started) / 1000),
};
writeFileSync(jsonPath, `${JSON.stringify(results, null, 2)}\n`);

const rows = sizes.map(
  (s) =>
    `| ${s.size}² | ${s.bare_fps} | ${s.runtime_fps} (${s.runtime_ratio}) | ${s.delivered_fps} (${s.overhead_ratio}) | ${s.delivered_jpeg_fps} (${s.jpeg_ratio}) | ${s.frame_ms_bare} / ${s.frame_ms_delivered} | ${s.emit_to_receive_ms_p50} / ${s.emit_to_receive_ms_p99} |`,
);
console.log(`
| size | bare fps | runtime fps (÷bare) | delivered raw fps (÷bare) | delivered jpeg fps (÷bare) | ms/frame bare / delivered | emit→receive at saturation p50 / p99 ms |
|---|---|---|---|---|---|---|
${rows.join('\n')}

| latency (256², raw, typed client) | p50 ms | p99 ms |
|---|---|---|
| emit → client receive, model paced at 60 fps | ${lat.emit_to_receive_ms_p50_60fps} | ${lat.emit_to_receive_ms_p99_60fps} |
| start → first frame | ${lat.first_frame_ms_p50} | ${lat.first_frame_ms_p99} |
| command → first frame showing it | ${lat.command_to_frame_ms_p50} | ${lat.command_to_frame_ms_p99} |
| stop acknowledged → next session's first frame | ${lat.session_switch_ms_p50} | ${lat.session_switch_ms_p99} |

| connected clients (1 viewer) | 1 | 2 | 4 | 4 ÷ 1 |
|---|---|---|---|---|
| delivered fps | ${view.viewers_fps[1]} | ${view.viewers_fps[2]} | ${view.viewers_fps[4]} | ${view.viewers_ratio_4_to_1} |

${memoryMarkdown(mem)}

${rtc ? `${rtc.markdown}

` : ''}${networks.length ? `${networksMarkdown(networks)}

` : ''}${joins ? `${joinsMarkdown(joins)}

` : ''}${room ? `${room.markdown}

` : ''}machine: ${results.machine.cores} cores (${results.machine.cpu}), Node ${results.machine.node}, onnxruntime ${results.machine.onnxruntime}, CPU provider; ${results.seconds} s; JSON: ${jsonPath}`);
process.exit(0);
