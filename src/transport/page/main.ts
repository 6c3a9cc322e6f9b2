/**
 * The demo page: the live stream on a canvas and controls generated from the model's command
 * schema. Plain DOM, no framework; bundled by esbuild on request (src/transport/assets.ts).
 *
 * Models with input tracks (`caps.inputs`) also get a Camera section: the browser's camera,
 * scaled to cover the track's size, drawn on a preview canvas and published on the track at the
 * chosen rate (no ack; refusals come back as `input:rejected` and show in #error). Only the
 * session's owner may publish; the button works while a session starts or runs, and sending
 * stops when the session ends.
 */
import { FramehostClient, type ClientFrame } from '../client.ts';
import type { JsonSchema } from '../../model/schema.ts';
import type { InputTrackSpec } from '../../model/api.ts';
import type { Phase } from '../../machines/phase.ts';
import type { Encoding } from '../events.ts';
import { createPageMedia, type PageMedia } from './media.ts';

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const canvas = $<HTMLCanvasElement>('view');
const ctx2d = canvas.getContext('2d')!;
const stats = { frames: 0, fps: 0, dropped: 0, seq: -1, lastFrameAt: 0, role: 'none' as 'none' | 'owner' | 'viewer', inputsSent: 0, transport: 'socket.io' as 'socket.io' | 'webrtc', startedAt: 0, firstFrameAt: 0 };

/** Start → first frame drawn after it (performance.now() ms), for the curious and the bench. */
function countFrame(): void {
  stats.frames++;
  stats.lastFrameAt = performance.now();
  if (stats.startedAt > stats.firstFrameAt) stats.firstFrameAt = stats.lastFrameAt;
}
let lastFrame = { width: canvas.width, height: canvas.height };

/** Errors show under the buttons, where the eye is, and go at the next request that succeeds. */
function showError(text: string): void {
  $('error').textContent = text;
}

function clearError(): void {
  $('error').textContent = '';
}

/** A request from a control: its error shown, or the last error cleared when it succeeds. */
function act<T>(what: string, request: Promise<T>, done?: (value: T) => void): void {
  request.then(
    (value) => {
      clearError();
      done?.(value);
    },
    (err: Error) => showError(`${what}: ${err.message}`),
  );
}

/** The banner for a viewer whose stream another viewer took; its button takes it back. */
function showBanner(text: string | null): void {
  $('banner').hidden = text === null;
  $('banner-text').textContent = text ?? '';
}

/** A slider's value as a person reads it: integers as they are, fractions to four figures. */
function shownValue(input: HTMLInputElement, schema: JsonSchema): string {
  const v = Number(input.value);
  return schema.type === 'integer' ? String(Math.round(v)) : String(Number(v.toPrecision(4)));
}

function log(line: string): void {
  const box = $('messages');
  box.textContent = `${line}\n${box.textContent ?? ''}`.slice(0, 20_000);
}

function setRole(role: typeof stats.role): void {
  stats.role = role;
  $('role').textContent = role;
}

async function draw({ meta, data }: ClientFrame): Promise<void> {
  if (canvas.width !== meta.width || canvas.height !== meta.height) {
    canvas.width = meta.width;
    canvas.height = meta.height;
  }
  lastFrame = { width: meta.width, height: meta.height };
  if (meta.format === 'jpeg') {
    const bitmap = await createImageBitmap(new Blob([data as BlobPart], { type: 'image/jpeg' }));
    ctx2d.drawImage(bitmap, 0, 0);
    bitmap.close();
  } else {
    const pixels = meta.width * meta.height;
    const rgba = new Uint8ClampedArray(pixels * 4);
    if (meta.format === 'rgba') rgba.set(data.subarray(0, pixels * 4));
    else for (let i = 0; i < pixels; i++) rgba.set([data[i * 3]!, data[i * 3 + 1]!, data[i * 3 + 2]!, 255], i * 4);
    ctx2d.putImageData(new ImageData(rgba, meta.width, meta.height), 0, 0);
  }
  countFrame();
  stats.seq = meta.seq;
  stats.dropped = meta.dropped;
}

/** A frame the WebRTC <video> presented, drawn on the same canvas. */
function drawVideo(video: HTMLVideoElement): void {
  if (video.videoWidth === 0) return;
  if (canvas.width !== video.videoWidth || canvas.height !== video.videoHeight) {
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
  }
  lastFrame = { width: video.videoWidth, height: video.videoHeight };
  ctx2d.drawImage(video, 0, 0);
  countFrame();
}

type Props = Record<string, JsonSchema>;

/** One input per argument, from its JSON Schema. */
function inputFor(name: string, schema: JsonSchema): HTMLInputElement | HTMLSelectElement {
  if (Array.isArray(schema.enum)) {
    const select = document.createElement('select');
    for (const v of schema.enum as string[]) select.append(new Option(v, v));
    return select;
  }
  const input = document.createElement('input');
  input.name = name;
  if (schema.type === 'integer' || schema.type === 'number') {
    const ranged = typeof schema.minimum === 'number' && typeof schema.maximum === 'number';
    input.type = ranged ? 'range' : 'number';
    if (typeof schema.minimum === 'number') input.min = String(schema.minimum);
    if (typeof schema.maximum === 'number') input.max = String(schema.maximum);
    input.step = schema.type === 'integer' ? '1' : 'any';
    if (ranged && schema.type === 'number') input.step = String(((schema.maximum as number) - (schema.minimum as number)) / 1000);
    // The schema's default: what the model starts with, so "send" untouched changes nothing.
    input.value = String(schema.default ?? schema.minimum ?? 0);
  } else if (schema.type === 'boolean') {
    input.type = 'checkbox';
    input.checked = schema.default === true;
  } else {
    input.type = 'text';
    if (typeof schema.maxLength === 'number') input.maxLength = schema.maxLength;
    input.value = typeof schema.default === 'string' ? schema.default : '';
  }
  return input;
}

function valueOf(input: HTMLInputElement | HTMLSelectElement, schema: JsonSchema): unknown {
  if (input instanceof HTMLSelectElement) return input.value;
  if (input.type === 'checkbox') return input.checked;
  if (schema.type === 'integer') return Math.round(Number(input.value));
  if (schema.type === 'number') return Number(input.value);
  return input.value;
}

function buildControls(client: FramehostClient, commands: Record<string, { description?: string; args: JsonSchema }>): void {
  const root = $('controls');
  root.textContent = '';
  for (const [name, info] of Object.entries(commands)) {
    const props = (info.args.properties ?? {}) as Props;
    const fieldset = document.createElement('fieldset');
    const legend = document.createElement('legend');
    legend.textContent = name;
    legend.title = info.description ?? '';
    fieldset.append(legend);
    const inputs: [string, HTMLInputElement | HTMLSelectElement][] = [];
    const pointed = 'x' in props && 'y' in props;
    for (const [arg, schema] of Object.entries(props)) {
      if (pointed && (arg === 'x' || arg === 'y')) continue; // from the canvas
      const input = inputFor(arg, schema);
      const label = document.createElement('label');
      const text = document.createElement('span');
      text.textContent = arg;
      label.title = String(schema.description ?? '');
      label.append(text, input);
      if (input instanceof HTMLInputElement && input.type === 'range') {
        const output = document.createElement('output');
        output.textContent = shownValue(input, schema);
        input.addEventListener('input', () => (output.textContent = shownValue(input, schema)));
        label.append(output);
      }
      fieldset.append(label);
      inputs.push([arg, input]);
    }
    const args = (): Record<string, unknown> => Object.fromEntries(inputs.map(([arg, input]) => [arg, valueOf(input, props[arg]!)]));
    const send = (extra: Record<string, unknown> = {}): void => act(name, client.command(name, { ...args(), ...extra }));
    if (pointed) {
      $('pointer-hint').hidden = false; // the hint applies: a command takes x and y from the picture
      const hint = document.createElement('div');
      hint.className = 'hint';
      hint.textContent = 'click the picture';
      fieldset.append(hint);
      bindCanvas(send);
    } else if (inputs.length === 1 && inputs[0]![1] instanceof HTMLSelectElement) {
      inputs[0]![1].addEventListener('change', () => send());
    } else {
      const button = document.createElement('button');
      button.textContent = inputs.length ? `send ${name}` : name;
      button.addEventListener('click', () => send());
      fieldset.append(button);
    }
    root.append(fieldset);
  }
}

function bindCanvas(send: (extra: Record<string, unknown>) => void): void {
  let down = false;
  let last = 0;
  const at = (e: PointerEvent): void => {
    const rect = canvas.getBoundingClientRect();
    const x = Math.floor(((e.clientX - rect.left) / rect.width) * lastFrame.width);
    const y = Math.floor(((e.clientY - rect.top) / rect.height) * lastFrame.height);
    const now = performance.now();
    if (now - last < 30) return; // ~30 strokes a second is plenty, and under the rate limit
    last = now;
    send({ x: Math.max(0, x), y: Math.max(0, y) });
  };
  canvas.addEventListener('pointerdown', (e) => {
    down = true;
    last = 0;
    at(e);
  });
  canvas.addEventListener('pointermove', (e) => down && at(e));
  window.addEventListener('pointerup', () => (down = false));
}

/** Refusals that no later frame can fix: sending stops (the error stays shown). */
const FATAL_INPUT_ERRORS = new Set(['not_owner', 'no_session', 'unknown_track', 'invalid_input']);

/** Phases in which the runtime takes input frames. */
const takesInput = (state: Phase): boolean => state === 'starting' || state === 'running';

/**
 * The Camera section: getUserMedia → preview canvas (the track's size) → client.publish, or, with
 * "via WebRTC", the preview canvas as a video track on the page's peer (server: decoded frames →
 * the same input track, newest wins).
 */
function setupCamera(client: FramehostClient, inputs: Readonly<Record<string, InputTrackSpec>>, initialState: Phase, media: PageMedia): void {
  const names = Object.keys(inputs);
  if (names.length === 0) return;
  $('camera').hidden = false;
  const toggle = $<HTMLButtonElement>('camera-toggle');
  const fpsSelect = $<HTMLSelectElement>('camera-fps');
  const trackSelect = $<HTMLSelectElement>('camera-track');
  const preview = $<HTMLCanvasElement>('camera-preview');
  const pctx = preview.getContext('2d', { willReadFrequently: true })!;
  for (const name of names) trackSelect.append(new Option(`${name} (${inputs[name]!.width}×${inputs[name]!.height})`, name));
  trackSelect.hidden = names.length < 2;

  const video = document.createElement('video');
  video.muted = true;
  video.playsInline = true;
  /** The button's state: on from the click until stop (the stream arrives in between). */
  let on = false;
  let stream: MediaStream | null = null;
  let timer: number | undefined;
  /** The preview as a video track, while the camera goes over WebRTC. */
  let rtcTrack: MediaStreamTrack | null = null;
  /** Bumped by every start and stop: a getUserMedia that resolves after a stop is released. */
  let generation = 0;

  const track = (): string => trackSelect.value || names[0]!;
  const spec = (): InputTrackSpec => inputs[track()]!;
  const describe = (): void => {
    const s = spec();
    preview.width = s.width;
    preview.height = s.height;
    $('camera-info').textContent = `${track()}: ${s.width}×${s.height} ${s.format}`;
  };
  describe();

  function sendFrame(): void {
    if (video.readyState < HTMLMediaElement.HAVE_CURRENT_DATA || video.videoWidth === 0) return;
    const { width, height, format } = spec();
    // Cover: scale the video to fill the track, centred, cropping what overflows.
    const scale = Math.max(width / video.videoWidth, height / video.videoHeight);
    const w = video.videoWidth * scale;
    const h = video.videoHeight * scale;
    pctx.drawImage(video, (width - w) / 2, (height - h) / 2, w, h);
    if (rtcTrack) {
      // The canvas track captures what was drawn; the peer encodes and sends it.
      (rtcTrack as CanvasCaptureMediaStreamTrack).requestFrame?.();
      stats.inputsSent++;
      $('camera-sent').textContent = String(stats.inputsSent);
      return;
    }
    const rgba = new Uint8Array(pctx.getImageData(0, 0, width, height).data.buffer);
    let data = rgba;
    if (format === 'rgb') {
      data = new Uint8Array(width * height * 3);
      for (let p = 0; p < width * height; p++) data.set(rgba.subarray(p * 4, p * 4 + 3), p * 3);
    }
    client.publish(track(), { data, width, height, format });
    stats.inputsSent++;
    $('camera-sent').textContent = String(stats.inputsSent);
  }

  function schedule(): void {
    window.clearInterval(timer);
    timer = stream ? window.setInterval(sendFrame, 1000 / Number(fpsSelect.value)) : undefined;
  }

  function stop(why?: string): void {
    generation++;
    on = false;
    window.clearInterval(timer);
    timer = undefined;
    const had = stream !== null;
    if (rtcTrack) {
      void media.view()?.stopSending();
      rtcTrack.stop();
      rtcTrack = null;
    }
    stream?.getTracks().forEach((t) => t.stop());
    stream = null;
    video.srcObject = null;
    pctx.clearRect(0, 0, preview.width, preview.height); // nothing is being sent
    toggle.textContent = 'Camera on';
    trackSelect.disabled = false;
    if (had && why) log(`camera stopped: ${why}`);
  }

  async function start(): Promise<void> {
    if (!navigator.mediaDevices?.getUserMedia) {
      showError('camera: not available on this page (browsers allow it on https:// and on localhost only)');
      return;
    }
    const mine = ++generation;
    on = true;
    toggle.textContent = 'Camera off';
    trackSelect.disabled = true;
    let media: MediaStream;
    try {
      media = await navigator.mediaDevices.getUserMedia({ video: true });
    } catch (err) {
      if (mine === generation) stop();
      showError(`camera: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
      return;
    }
    if (mine !== generation) {
      media.getTracks().forEach((t) => t.stop()); // stopped while the browser was asking
      return;
    }
    stream = media;
    for (const t of media.getVideoTracks()) t.addEventListener('ended', () => stream === media && stop('the camera went away'));
    video.srcObject = media;
    try {
      await video.play();
    } catch (err) {
      if (stream === media) stop();
      showError(`camera: cannot play the camera (${err instanceof Error ? err.message : String(err)})`);
      return;
    }
    if (stream !== media) return;
    if ($<HTMLSelectElement>('camera-via').value === 'webrtc') {
      const view = await pageMedia.peer();
      if (stream !== media) return;
      if (view) {
        // captureStream(0): a frame only when requestFrame() is called, i.e. once per send.
        const t = preview.captureStream(0).getVideoTracks()[0]!;
        try {
          await view.send(t, track());
          rtcTrack = t;
        } catch (err) {
          t.stop();
          log(`camera: WebRTC refused (${err instanceof Error ? err.message : String(err)}); sending over Socket.IO`);
        }
      } else log('camera: WebRTC unavailable; sending over Socket.IO');
      if (stream !== media) return;
    }
    log(`camera on: sending ${track()} at ${fpsSelect.value} fps${rtcTrack ? ' over WebRTC' : ''}`);
    schedule();
  }

  const pageMedia = media;
  const setState = (state: Phase): void => {
    toggle.disabled = !takesInput(state);
    toggle.title = toggle.disabled ? 'Start a session first' : 'Send your camera to the model (the session owner only)';
    if (!takesInput(state)) stop('the session ended');
  };
  setState(initialState);

  toggle.addEventListener('click', () => {
    if (on) stop('turned off');
    else void start();
  });
  fpsSelect.addEventListener('change', schedule);
  trackSelect.addEventListener('change', describe);
  client.on('state', ({ state }) => setState(state));
  client.on('session:ended', () => stop('the session ended'));
  client.on('input:rejected', ({ track: name, error }) => {
    // Frames that were on their way when the session ended (the camera has stopped already).
    if (!on && error.code === 'no_session') return;
    showError(`camera (${name}): ${error.code}: ${error.message}`);
    if (FATAL_INPUT_ERRORS.has(error.code)) stop(`refused (${error.code})`);
  });
}

async function main(): Promise<void> {
  const client = await FramehostClient.connect(location.origin);
  const caps = await client.capabilities();
  $('model').textContent = `${caps.model.name} ${caps.model.version}`;
  $('state').textContent = caps.state;
  buildControls(client, caps.commands as Record<string, { description?: string; args: JsonSchema }>);

  client.onFrame((f) => void draw(f));
  client.on('state', ({ state }) => ($('state').textContent = state));
  client.on('message', ({ data }) => log(JSON.stringify(data)));
  client.on('session:ended', ({ reason, error }) => {
    log(`session ended: ${reason}${error ? ` (${error.code}: ${error.message})` : ''}`);
    setRole('none');
    showBanner(null);
  });
  client.on('stream:detached', ({ reason }) => {
    log(`stream detached: ${reason}`);
    if (reason === 'superseded') {
      showBanner(stats.role === 'owner' ? 'Another page took the stream: the session is still yours (Stop, commands).' : 'Another page took the stream.');
    }
    if (stats.role === 'viewer') setRole('none');
  });
  client.on('command:failed', ({ error }) => showError(`${error.code}: ${error.message}`));

  const media: PageMedia = createPageMedia(client, {
    draw: (video) => drawVideo(video),
    say: (text) => {
      $('media').textContent = text;
      log(text);
    },
    fallBack: (enc) => {
      stats.transport = 'socket.io';
      if (stats.role !== 'none') act('watch', client.attach({ encoding: enc }));
    },
  });
  setupCamera(client, caps.inputs ?? {}, caps.state, media);
  const encoding = (): Promise<Encoding> => {
    const chosen = $<HTMLSelectElement>('encoding').value;
    return media.encodingFor(chosen === 'raw' || chosen === 'jpeg' ? chosen : 'webrtc');
  };
  const useTransport = (enc: Encoding): Encoding => {
    stats.transport = enc === 'webrtc' ? 'webrtc' : 'socket.io';
    return enc;
  };
  $('start').addEventListener('click', () => {
    stats.startedAt = performance.now();
    act('start', encoding().then((enc) => client.start({ encoding: useTransport(enc) })), () => setRole('owner'));
  });
  $('stop').addEventListener('click', () => act('stop', client.stop()));
  const watch = (): void =>
    act('watch', encoding().then((enc) => client.attach({ encoding: useTransport(enc) })), () => {
      showBanner(null);
      if (stats.role !== 'owner') setRole('viewer');
    });
  $('watch').addEventListener('click', watch);
  $('take-back').addEventListener('click', watch);

  let counted = 0;
  setInterval(() => {
    stats.fps = stats.frames - counted;
    counted = stats.frames;
    $('fps').textContent = String(stats.fps);
    $('dropped').textContent = String(stats.dropped);
    $('seq').textContent = String(stats.seq);
    void media.stats().then((w) => {
      if (!w) return;
      stats.dropped = w.framesDropped;
      $('dropped').textContent = String(w.framesDropped);
      $('media').textContent =
        `WebRTC ${w.codec ?? ''} · ${(w.bitrateKbps / 1000).toFixed(2)} Mbit/s · ${w.fps} fps · rtt ${w.rttMs === null ? '-' : w.rttMs.toFixed(1)} ms · ` +
        `lost ${w.packetsLost} · dropped ${w.framesDropped}${w.jitterBufferMs === null ? '' : ` · buffer ${w.jitterBufferMs.toFixed(0)} ms`}`;
      Object.assign(stats, { webrtc: w });
    });
  }, 1000);

  // For tests and the curious: window.framehost.stats
  Object.assign(window, { framehost: { client, stats, media } });
}

main().catch((err: Error) => showError(`cannot connect: ${err.message}`));
