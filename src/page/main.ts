/**
 * The demo page: the live stream on a canvas that uses the space it has, the session's state
 * and this page's role, and controls generated from the model's command schema that show the
 * session's command state. Plain DOM, no framework; bundled by esbuild on request
 * (src/transport/http/assets.ts). The parts: controls.ts (the forms), figures.ts (fps, frame,
 * bitrate), presence.ts (role, buttons, notices, the tab's memory), media.ts and webrtc.ts (the
 * WebRTC stream), camera.ts (input tracks).
 *
 * A ride survives a reload and a network drop: the tab keeps its session token
 * (sessionStorage) and presents it again (`session:resume`), then takes its stream back
 * (WebRTC negotiated anew); meanwhile other pages show the owner away with the orphan countdown.
 */
import { FramehostClient, type ClientFrame } from '../client/client.ts';
import type { Encoding } from '../transport/socket/events.ts';
import { PageMedia } from './media.ts';
import { CommandForms, type CommandInfo } from './controls.ts';
import { Figures } from './figures.ts';
import { Presence, TabCredential, TabMemory, type TabRide } from './presence.ts';
import { setupCamera } from './camera.ts';
import { $, act, log, showError } from './dom.ts';

const canvas = $<HTMLCanvasElement>('view');
const ctx2d = canvas.getContext('2d')!;

/** The picture's size in frame pixels, and its aspect ratio for the CSS that sizes the canvas. */
function sizeCanvas(width: number, height: number): void {
  if (canvas.width === width && canvas.height === height) return;
  canvas.width = width;
  canvas.height = height;
  canvas.style.setProperty('--aspect', String(width / height));
}

/** A Socket.IO frame drawn on the canvas. */
async function drawFrame({ meta, data }: ClientFrame): Promise<void> {
  sizeCanvas(meta.width, meta.height);
  if (meta.format === 'jpeg') {
    const bitmap = await createImageBitmap(new Blob([data as BlobPart], { type: 'image/jpeg' }));
    ctx2d.drawImage(bitmap, 0, 0);
    bitmap.close();
    return;
  }
  const pixels = meta.width * meta.height;
  const rgba = new Uint8ClampedArray(pixels * 4);
  if (meta.format === 'rgba') rgba.set(data.subarray(0, pixels * 4));
  else for (let i = 0; i < pixels; i++) rgba.set([data[i * 3]!, data[i * 3 + 1]!, data[i * 3 + 2]!, 255], i * 4);
  ctx2d.putImageData(new ImageData(rgba, meta.width, meta.height), 0, 0);
}

/**
 * The picture as a pointing device for the command that takes x and y: drag with the mouse or
 * a finger, or focus it and move a target with the arrow keys, Enter or Space to send.
 */
class PointerInput {
  private down = false;
  private last = 0;
  private target = { x: 0.5, y: 0.5 };

  constructor(private readonly send: (at: { x: number; y: number }) => void) {
    canvas.addEventListener('pointerdown', (e) => {
      this.down = true;
      this.last = 0;
      this.at(e);
    });
    canvas.addEventListener('pointermove', (e) => this.down && this.at(e));
    window.addEventListener('pointerup', () => (this.down = false));
    canvas.addEventListener('keydown', (e) => this.key(e));
    canvas.tabIndex = 0;
    this.describe();
  }

  private at(e: PointerEvent): void {
    const rect = canvas.getBoundingClientRect();
    const now = performance.now();
    if (now - this.last < 30) return; // ~30 strokes a second is plenty, and under the rate limit
    this.last = now;
    this.target = { x: (e.clientX - rect.left) / rect.width, y: (e.clientY - rect.top) / rect.height };
    this.fire();
  }

  private key(e: KeyboardEvent): void {
    const step = e.shiftKey ? 0.1 : 1 / 32;
    const moves: Record<string, [number, number]> = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    const move = moves[e.key];
    if (move) this.target = { x: Math.min(1, Math.max(0, this.target.x + move[0])), y: Math.min(1, Math.max(0, this.target.y + move[1])) };
    else if (e.key === 'Enter' || e.key === ' ') this.fire();
    else return;
    e.preventDefault();
    this.describe();
  }

  private fire(): void {
    const x = Math.min(canvas.width - 1, Math.max(0, Math.floor(this.target.x * canvas.width)));
    const y = Math.min(canvas.height - 1, Math.max(0, Math.floor(this.target.y * canvas.height)));
    this.send({ x, y });
  }

  private describe(): void {
    const x = Math.floor(this.target.x * canvas.width);
    const y = Math.floor(this.target.y * canvas.height);
    canvas.setAttribute('aria-label', `the picture; arrows move the target (now ${x}, ${y}), Enter sends`);
  }
}

/** Everything the handlers share: one object, named, instead of variables in a closure. */
interface Page {
  readonly client: FramehostClient;
  readonly presence: Presence;
  readonly figures: Figures;
  readonly media: PageMedia;
  readonly forms: CommandForms;
  /** Frames presented since the page loaded (monotonic), and when the first was (performance.now(): since navigation). */
  readonly counts: { frames: number; inputsSent: number; firstFrameAt: number | null };
}

/** The encoding chosen in the box, WebRTC negotiated if need be (falls back to raw, and says so). */
async function encoding(page: Page): Promise<Encoding> {
  const box = $<HTMLSelectElement>('encoding');
  const chosen = box.value === 'raw' || box.value === 'jpeg' ? box.value : 'webrtc';
  const used = await page.media.encodingFor(chosen);
  box.value = used; // the box says what is in use (raw frames when WebRTC could not connect)
  return used;
}

function remember(page: Page): void {
  const sessionId = page.presence.session?.id ?? page.client.sessionId;
  TabMemory.write({ sessionId, token: page.presence.owner ? page.client.sessionToken : null, watching: page.presence.viewing });
}

function refresh(page: Page): void {
  page.presence.render();
  page.forms.allow(page.presence.commandRefusal());
  remember(page);
}

/** Receive the stream (Watch, take-back, after Start's refusal-free path, after a resume). */
async function watch(page: Page): Promise<void> {
  await act('watch', encoding(page).then(async (enc) => {
    await page.client.attach({ encoding: enc });
    page.presence.viewing = true;
    page.figures.begin(enc === 'webrtc' ? 'webrtc' : 'socket.io');
    $('banner').hidden = true;
  }));
  refresh(page);
}

async function start(page: Page): Promise<void> {
  const hadPeer = page.media.view() !== null;
  await act('start', encoding(page).then(async (enc) => {
    try {
      await page.client.start({ encoding: enc });
    } catch (err) {
      if (!hadPeer && !page.presence.viewing) page.media.release(); // refused: no peer left behind
      throw err;
    }
    Object.assign(page.presence, { owner: true, viewing: true });
    page.figures.begin(enc === 'webrtc' ? 'webrtc' : 'socket.io');
  }));
  refresh(page);
}

/** The session ended or this page lost its stream: role, figures and controls follow. */
function streamGone(page: Page, sessionOver: boolean): void {
  page.presence.viewing = false;
  if (sessionOver) {
    page.presence.owner = false;
    page.presence.update(null);
    page.forms.show(null);
  }
  page.figures.end();
  refresh(page);
}

/** After a reload or a reconnect: what the server says now, and this tab's ride taken back. */
async function rejoin(page: Page, memory: TabRide): Promise<void> {
  const caps = await page.client.capabilities();
  page.presence.rights = caps.you.rights;
  page.presence.phase = caps.state;
  page.presence.update(caps.session);
  page.forms.show(caps.session?.controls ?? null);
  // With the session token this tab kept; a player with an access token also by its user id
  // (the server compares the token's sub with the session's), so another tab or device of the same
  // user takes the ride back too. Refused (another user's session, a spectator): not the owner.
  if (caps.session && (memory.token || (caps.you.sub !== null && caps.you.rights.includes('play')))) {
    await page.client.resume(memory.token ?? undefined).then(
      () => (page.presence.owner = true),
      () => (page.presence.owner = false), // the session is someone else's now
    );
  } else if (!caps.session) page.presence.owner = false;
  refresh(page);
  // Watching again only the session this tab watched, not whatever runs now.
  if (caps.session && (page.presence.owner || (memory.watching && memory.sessionId === caps.session.id))) await watch(page);
}

function listen(page: Page): void {
  const { client, presence, figures } = page;
  client.onFrame((f) => {
    void drawFrame(f).then(() => {
      page.counts.frames++;
      page.counts.firstFrameAt ??= performance.now();
      figures.presented(f.meta.seq, f.meta.dropped, f.data.byteLength);
    });
  });
  client.on('state', ({ state }) => {
    presence.phase = state;
    // No session any more (a page that neither owned nor watched it gets no session:ended).
    if (!presence.running && state !== 'stopping' && presence.session) {
      presence.update(null);
      page.forms.show(null);
    }
    refresh(page);
  });
  client.on('session:update', (view) => {
    presence.update(view);
    page.forms.show(view.controls);
    refresh(page);
  });
  client.on('message', ({ data }) => log(JSON.stringify(data)));
  client.on('session:ended', ({ reason, error }) => {
    log(`session ended: ${reason}${error ? ` (${error.code}: ${error.message})` : ''}`);
    $('banner').hidden = true;
    streamGone(page, true);
  });
  client.on('stream:detached', ({ reason }) => {
    log(`stream detached: ${reason}`);
    if (reason === 'superseded') {
      $('banner-text').textContent = presence.owner ? 'Another page took the stream: the session is still yours (Stop, commands).' : 'Another page took the stream.';
      $('banner').hidden = false;
    }
    streamGone(page, false);
  });
  client.on('command:failed', ({ error }) => showError(`${error.code}: ${error.message}`));
  listenConnection(page);
}

/** A dropped connection: say so, then take the ride back when it returns (the client resumes too). */
function listenConnection(page: Page): void {
  const { client, presence, figures } = page;
  client.socket.on('disconnect', () => {
    presence.connected = false;
    figures.end();
    refresh(page);
  });
  client.socket.io.on('reconnect', () => {
    presence.connected = true;
    const memory: TabRide = { sessionId: presence.session?.id ?? client.sessionId, token: presence.owner ? client.sessionToken : null, watching: presence.viewing };
    presence.viewing = false;
    void rejoin(page, memory);
  });
  // The browser knows of a network change long before the socket's heartbeat would (25 s + 20 s):
  // say so at once, and when the network returns drop the old connection, which may be dead, so
  // the client reconnects now (its ordinary reconnection: the resume and WebRTC follow).
  window.addEventListener('offline', () => {
    presence.connected = false;
    refresh(page);
  });
  window.addEventListener('online', () => {
    if (client.socket.connected) client.socket.io.engine.close();
  });
}

function bindButtons(page: Page): void {
  $('start').addEventListener('click', () => void start(page));
  $('stop').addEventListener('click', () => void act('stop', page.client.stop()));
  $('watch').addEventListener('click', () => void watch(page));
  $('take-back').addEventListener('click', () => void watch(page));
  $('fullscreen').addEventListener('click', () => {
    if (document.fullscreenElement) void document.exitFullscreen();
    else void $('stage').requestFullscreen().catch((err: Error) => log(`full screen refused: ${err.message}`));
  });
  const send = page.forms.pointed();
  $('pointer-hint').hidden = send === null; // the hint applies: a command takes x and y from the picture
  if (send) new PointerInput(send);
}

async function main(): Promise<void> {
  const credential = TabCredential.take();
  const client = await FramehostClient.connect(location.origin, credential ? { authToken: credential } : {});
  const caps = await client.capabilities();
  $('model').textContent = `${caps.model.name} ${caps.model.version}`;
  const counts: Page['counts'] = { frames: 0, inputsSent: 0, firstFrameAt: null };
  const figures = new Figures();
  const presence = new Presence();
  const forms = new CommandForms($('controls'), caps.commands as Record<string, CommandInfo>, (name, args) => void act(name, client.command(name, args)));
  const media = new PageMedia(client, {
    draw: (video) => {
      if (video.videoWidth === 0) return;
      sizeCanvas(video.videoWidth, video.videoHeight);
      ctx2d.drawImage(video, 0, 0);
      counts.frames++;
      counts.firstFrameAt ??= performance.now();
      figures.presented(null, null);
    },
    say: (text) => {
      figures.say(text);
      log(text);
    },
    fallBack: (enc) => {
      $<HTMLSelectElement>('encoding').value = enc; // the box says what is in use
      figures.begin('socket.io');
      if (presence.viewing) void act('watch', client.attach({ encoding: enc }));
    },
  });
  const page: Page = { client, presence, figures, media, forms, counts };
  listen(page);
  bindButtons(page);
  setupCamera(client, caps.inputs ?? {}, caps.state, media, counts);
  setInterval(() => {
    void media.stats().then((w) => figures.tick(w));
    presence.render(); // the orphan countdown moves
  }, 1000);
  // For tests and the curious: window.framehost.stats (the figures shown, and the page's counts).
  const stats = {
    get frames() { return counts.frames; },
    get inputsSent() { return counts.inputsSent; },
    get firstFrameAt() { return counts.firstFrameAt; },
    get fps() { return figures.fps; },
    get seq() { return figures.seq; },
    get dropped() { return figures.dropped; },
    get role() { return presence.role; },
    get transport() { return figures.transport; },
    get webrtc() { return figures.webrtc; },
  };
  Object.assign(window, { framehost: { client, stats, media, presence, figures } });
  await rejoin(page, TabMemory.read());
}

main().catch((err: Error) => {
  showError(`cannot connect: ${err.message}`);
});
