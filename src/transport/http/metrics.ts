/**
 * Prometheus metrics for one server (its own registry, so several servers in one process, as
 * in the tests, do not collide). Fed by the runtime's events and the stream; read at /metrics.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Runtime } from '../../runtime/runtime.ts';
import { PHASES } from '../../machines/phase.ts';
import type { ErrorCode } from '../../errors.ts';

export interface Metrics {
  readonly registry: Registry;
  commandError(code: ErrorCode): void;
  frameSent(bytes: number): void;
  frameDropped(n: number): void;
  connections(n: number): void;
  /** Stop following the runtime (the server closed). */
  detach(): void;
}

export function createMetrics(runtime: Runtime): Metrics {
  const registry = new Registry();
  // prom-client's names already start with process_ or nodejs_: framehost_process_cpu_seconds_total, framehost_nodejs_heap_size_used_bytes.
  collectDefaultMetrics({ register: registry, prefix: 'framehost_' });
  const started = new Counter({ name: 'framehost_sessions_started_total', help: 'Sessions started', registers: [registry] });
  const ended = new Counter({ name: 'framehost_sessions_ended_total', help: 'Sessions ended, by reason', labelNames: ['reason'], registers: [registry] });
  const generated = new Counter({ name: 'framehost_frames_generated_total', help: 'Frames the model emitted and the main thread received', registers: [registry] });
  const sent = new Counter({ name: 'framehost_frames_sent_total', help: 'Frames written to the viewer', registers: [registry] });
  const sentBytes = new Counter({ name: 'framehost_frames_sent_bytes_total', help: 'Frame payload bytes written to the viewer', registers: [registry] });
  const dropped = new Counter({ name: 'framehost_frames_dropped_total', help: 'Frames dropped, by where (worker: main thread behind; viewer: client behind)', labelNames: ['where'], registers: [registry] });
  const inference = new Histogram({
    name: 'framehost_inference_seconds',
    help: 'ONNX Runtime time per frame',
    buckets: [0.001, 0.002, 0.004, 0.008, 0.016, 0.033, 0.066, 0.133, 0.25, 0.5, 1, 2],
    registers: [registry],
  });
  const commandErrors = new Counter({ name: 'framehost_command_errors_total', help: 'Refused or failed requests, by error code', labelNames: ['code'], registers: [registry] });
  const state = new Gauge({ name: 'framehost_state', help: 'Current lifecycle state (1 for the current one)', labelNames: ['state'], registers: [registry] });
  const conns = new Gauge({ name: 'framehost_connections', help: 'Open Socket.IO connections', registers: [registry] });
  // Read at scrape time: the provider is known once the model loaded (and may change if a stuck
  // loop forced a fresh worker that fell back), so no event has to keep it in step.
  new Gauge({
    name: 'framehost_execution_provider',
    help: 'The execution provider running the model and what runs it (1 for the current one)',
    labelNames: ['provider', 'adapter'],
    registers: [registry],
    collect() {
      this.reset();
      const model = runtime.status().model;
      if (model) this.set({ provider: model.provider, adapter: model.adapter }, 1);
    },
  });

  const setState = (current: string): void => {
    for (const p of PHASES) state.set({ state: p }, p === current ? 1 : 0);
  };
  setState(runtime.phase());
  const subscriptions = [
    runtime.on('phase', ({ phase }) => setState(phase)),
    runtime.on('session.began', () => started.inc()),
    runtime.on('session.finished', (e) => {
      ended.inc({ reason: e.reason });
      if (e.dropped > 0) dropped.inc({ where: 'worker' }, e.dropped);
    }),
    runtime.on('frame', (f) => {
      generated.inc(f.count);
      if (f.inferMs > 0) inference.observe(f.inferMs / 1000);
    }),
    runtime.on('command.failed', (e) => commandErrors.inc({ code: e.error.code })),
  ];

  return {
    registry,
    commandError: (code) => commandErrors.inc({ code }),
    frameSent: (bytes) => {
      sent.inc();
      sentBytes.inc(bytes);
    },
    frameDropped: (n) => dropped.inc({ where: 'viewer' }, n),
    connections: (n) => conns.set(n),
    detach: () => subscriptions.forEach((off) => off()),
  };
}
