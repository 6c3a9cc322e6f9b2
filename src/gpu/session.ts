/**
 * Create an ONNX Runtime session the way framehost runs every model: provider selection with a
 * CPU fallback, full graph optimisation, and thread settings measured on the target machine
 * (on the 2-core development machine ORT's default spins its threads, burns every core and starves
 * the event loop and the socket; spinning is off here, and one core is left to everything else).
 */
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import type { Logger } from 'pino';
import { planProviders, type ProviderChoice } from './providers.ts';

export interface CreateSessionOptions {
  readonly provider?: ProviderChoice;
  /** Intra-op threads; default: cores − 1, between 1 and 4 (see defaultThreads). */
  readonly threads?: number;
  /** ORT's busy-wait between ops; off by default (see the module comment). */
  readonly spinning?: boolean;
  readonly graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
}

export interface TensorInfo {
  readonly name: string;
  readonly type: string;
  /** Fixed dimensions as numbers, symbolic ones by name. */
  readonly shape: readonly (number | string)[];
}

export interface OnnxSession {
  readonly session: ort.InferenceSession;
  readonly provider: string;
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  readonly threads: number;
}

/**
 * Intra-op threads: every core but one, at most four. The spare core is for the event loop,
 * the socket and (on one machine) the client: on the 2-core machine here one ORT thread
 * delivered 291 frames/s at 256² and 63 at 512², against 221 and 55 with two threads (the two
 * threads' bare loop is not faster than one's once anything else runs; README, Performance).
 */
export function defaultThreads(): number {
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

function describe(meta: readonly ort.InferenceSession.ValueMetadata[]): TensorInfo[] {
  return meta.map((m) =>
    m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : { name: m.name, type: 'non-tensor', shape: [] },
  );
}

/** Environment variables are the CLI's business (`serve` maps FRAMEHOST_PROVIDER and FRAMEHOST_ORT_THREADS onto these). */
export async function createOnnxSession(source: string | Uint8Array, opts: CreateSessionOptions, log: Logger): Promise<OnnxSession> {
  const plan = planProviders(opts.provider ?? 'auto');
  const threads = opts.threads && opts.threads > 0 ? Math.floor(opts.threads) : defaultThreads();
  let lastError: unknown;
  for (const provider of plan.providers) {
    try {
      const session = await ort.InferenceSession.create(source as never, {
        executionProviders: [provider],
        graphOptimizationLevel: opts.graphOptimizationLevel ?? 'all',
        executionMode: 'sequential',
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        // Honoured by onnxruntime-node although the typings mention WebAssembly only.
        extra: { session: { intra_op: { allow_spinning: opts.spinning ? '1' : '0' } } },
      });
      const chosen = { provider, reason: provider === plan.providers[0] ? plan.reason : `fell back from ${plan.providers[0]}` };
      log.info({ provider, reason: chosen.reason, threads }, `onnx runtime: using the ${provider.toUpperCase()} execution provider`);
      return { session, provider, inputs: describe(session.inputMetadata), outputs: describe(session.outputMetadata), threads };
    } catch (err) {
      lastError = err;
      if (provider !== 'cpu') log.warn({ err, provider }, `onnx runtime: the ${provider} provider failed to start; trying the next one`);
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}
