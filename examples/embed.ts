/**
 * Embedding framehost in another Node program, without Socket.IO: load the demo world, run a
 * session, paint into it, save frames as PNG files, stop, shut down.
 *
 *   npx tsx examples/embed.ts [OUT_DIR]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { pino } from 'pino';
import { createRuntime, type RuntimeFrame } from '../src/index.ts';

const out = process.argv[2] ?? 'embed-output';
mkdirSync(out, { recursive: true });

// The program's own lines on stdout; the runtime's log only when something goes wrong, on stderr.
const runtime = await createRuntime({ modelOptions: { size: 128, fps: 30 }, logger: pino({ level: 'warn' }, pino.destination(2)) });
const model = await runtime.ready();
console.log(`loaded ${model.name} ${model.version} on ${model.provider} in ${model.loadMs} ms`);

function save(frame: RuntimeFrame, name: string): void {
  const png = new PNG({ width: frame.width, height: frame.height });
  png.data = Buffer.from(frame.data.buffer, frame.data.byteOffset, frame.width * frame.height * 4);
  writeFileSync(join(out, name), PNG.sync.write(png));
}

let saved = 0;
runtime.on('frame', (frame) => {
  if (frame.seq % 10 === 0 && saved < 6) save(frame, `frame-${String(frame.seq).padStart(4, '0')}.png`), saved++;
});

const started = runtime.start();
if (!started.ok) throw new Error(started.error.message);
await new Promise((r) => setTimeout(r, 500));
console.log('stamp:', runtime.command('stamp', { x: 64, y: 64, radius: 20 }).ok);
await new Promise((r) => setTimeout(r, 1500));
runtime.stop();
const end = await runtime.whenSessionOver(started.sessionId);
console.log(`session ended: ${end?.reason}; saved ${saved} frames in ${out}`);
await runtime.shutdown();
