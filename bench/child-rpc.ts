/**
 * A bench helper process, asked by request/reply over Node's IPC channel: the child sends one
 * message when it is ready, then answers each `{ ...request, id }` with `{ id, result }` or
 * `{ id, error }`. Both the Socket.IO client (client-process.ts) and the WebRTC viewer
 * (webrtc-client.ts) run in their own process this way, so their CPU is not the server's.
 */
import { fork, type ChildProcess } from 'node:child_process';

export class ChildRpc<Request extends { readonly type: string }> {
  private readonly child: ChildProcess;
  private readonly ready: Promise<void>;
  private next = 0;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private readonly listeners = new Set<(event: ChildEvent) => void>();

  constructor(script: URL) {
    this.child = fork(script, [], { execArgv: ['--import', 'tsx'] });
    this.ready = new Promise((r) => this.child.once('message', () => r()));
    this.child.on('message', (m: { id?: number; result?: unknown; error?: string; event?: string }) => {
      if (typeof m.event === 'string') for (const l of this.listeners) l(m as ChildEvent);
      if (m.id === undefined) return;
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.error) p?.reject(new Error(m.error));
      else p?.resolve(m.result);
    });
    // A child that exits (or crashes) answers nothing more: its pending requests fail, never hang.
    this.child.on('exit', (code, signal) => {
      for (const p of this.pending.values()) p.reject(new Error(`the child exited (${signal ?? code})`));
      this.pending.clear();
    });
  }

  async ask<T>(request: Request): Promise<T> {
    await this.ready;
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ ...request, id });
    });
  }

  /** What the child tells on its own (tell() below), in the order it told it, between replies. */
  onEvent(listener: (event: ChildEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The child's process id (tests stop it with SIGSTOP to play a frozen viewer). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Asks the child to close (it exits on its own); a child already gone is fine. */
  async close(): Promise<void> {
    await this.ask({ type: 'close' } as Request).catch(() => undefined);
  }
}

/** A message the child sends unasked (a decoded frame, a gathered candidate): `event` names it. */
export interface ChildEvent {
  readonly event: string;
  readonly [key: string]: unknown;
}

/** The child's side: tell the parent something unasked (IPC keeps the order of all messages). */
export function tell(event: ChildEvent): void {
  process.send!(event);
}

/**
 * The child's side of the same protocol: answer each request with `handle`'s result (or its
 * error's message), then say it is ready. Every helper process of the bench and the tests uses it.
 */
export function answerRequests<Request extends { readonly type: string }>(handle: (request: Request) => Promise<unknown>): void {
  process.on('message', (m: Request & { id: number }) => {
    handle(m).then(
      (result) => process.send!({ id: m.id, result }),
      (err: Error) => process.send!({ id: m.id, error: err.message }),
    );
  });
  process.send!({ ready: true });
}

