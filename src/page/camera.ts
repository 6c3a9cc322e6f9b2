/**
 * The Camera section, for models with input tracks (`caps.inputs`): the browser's camera,
 * scaled to cover the track's size, drawn on a preview canvas and published on the track at the
 * chosen rate (no ack; refusals come back as `input:rejected` and show in #error). Only the
 * session's owner may publish; the button works while a session starts or runs, and sending
 * stops when the session ends.
 */
import type { FramehostClient } from '../client/client.ts';
import type { InputTrackSpec } from '../model/api.ts';
import type { Phase } from '../machines/phase.ts';
import type { PageMedia } from './media.ts';
import { $, log, showError } from './dom.ts';

/** Refusals that no later frame can fix: sending stops (the error stays shown). */
const FATAL_INPUT_ERRORS = new Set(['not_owner', 'no_session', 'unknown_track', 'invalid_input']);

/** Phases in which the runtime takes input frames. */
const takesInput = (state: Phase): boolean => state === 'starting' || state === 'running';

/**
 * The Camera section: getUserMedia → preview canvas (the track's size) → client.publish, or, with
 * "via WebRTC", the preview canvas as a video track on the page's peer (server: decoded frames →
 * the same input track, newest wins).
 */
class Camera {
  private readonly names: string[];
  private readonly toggle = $<HTMLButtonElement>('camera-toggle');
  private readonly fpsSelect = $<HTMLSelectElement>('camera-fps');
  private readonly trackSelect = $<HTMLSelectElement>('camera-track');
  private readonly preview = $<HTMLCanvasElement>('camera-preview');
  private readonly pctx = this.preview.getContext('2d', { willReadFrequently: true })!;
  private readonly video = document.createElement('video');
  /** The button's state: on from the click until stop (the stream arrives in between). */
  on = false;
  private stream: MediaStream | null = null;
  private timer: number | undefined;
  /** The preview as a video track, while the camera goes over WebRTC. */
  private rtcTrack: MediaStreamTrack | null = null;
  /** Bumped by every start and stop: a getUserMedia that resolves after a stop is released. */
  private generation = 0;

  constructor(
    private readonly client: FramehostClient,
    private readonly inputs: Readonly<Record<string, InputTrackSpec>>,
    private readonly media: PageMedia,
    private readonly sent: { inputsSent: number },
  ) {
    this.names = Object.keys(inputs);
    for (const name of this.names) this.trackSelect.append(new Option(`${name} (${inputs[name]!.width}×${inputs[name]!.height})`, name));
    this.trackSelect.hidden = this.names.length < 2;
    this.video.muted = true;
    this.video.playsInline = true;
    this.describe();
  }

  private track(): string {
    return this.trackSelect.value || this.names[0]!;
  }

  private spec(): InputTrackSpec {
    return this.inputs[this.track()]!;
  }

  describe(): void {
    const s = this.spec();
    this.preview.width = s.width;
    this.preview.height = s.height;
    $('camera-info').textContent = `${this.track()}: ${s.width}×${s.height} ${s.format}`;
  }

  private count(): void {
    this.sent.inputsSent++;
    $('camera-sent').textContent = String(this.sent.inputsSent);
  }

  private sendFrame(): void {
    const video = this.video;
    if (video.readyState < HTMLMediaElement.HAVE_CURRENT_DATA || video.videoWidth === 0) return;
    const { width, height, format } = this.spec();
    // Cover: scale the video to fill the track, centred, cropping what overflows.
    const scale = Math.max(width / video.videoWidth, height / video.videoHeight);
    const w = video.videoWidth * scale;
    const h = video.videoHeight * scale;
    this.pctx.drawImage(video, (width - w) / 2, (height - h) / 2, w, h);
    if (this.rtcTrack) {
      // The canvas track captures what was drawn; the peer encodes and sends it.
      (this.rtcTrack as CanvasCaptureMediaStreamTrack).requestFrame?.();
      this.count();
      return;
    }
    const rgba = new Uint8Array(this.pctx.getImageData(0, 0, width, height).data.buffer);
    let data = rgba;
    if (format === 'rgb') {
      data = new Uint8Array(width * height * 3);
      for (let p = 0; p < width * height; p++) data.set(rgba.subarray(p * 4, p * 4 + 3), p * 3);
    }
    this.client.publish(this.track(), { data, width, height, format });
    this.count();
  }

  schedule(): void {
    window.clearInterval(this.timer);
    this.timer = this.stream ? window.setInterval(() => this.sendFrame(), 1000 / Number(this.fpsSelect.value)) : undefined;
  }

  stop(why?: string): void {
    this.generation++;
    this.on = false;
    window.clearInterval(this.timer);
    this.timer = undefined;
    const had = this.stream !== null;
    if (this.rtcTrack) {
      void this.media.view()?.stopSending();
      this.rtcTrack.stop();
      this.rtcTrack = null;
    }
    this.stream?.getTracks().forEach((t) => t.stop());
    this.stream = null;
    this.video.srcObject = null;
    this.pctx.clearRect(0, 0, this.preview.width, this.preview.height); // nothing is being sent
    this.toggle.textContent = 'Camera on';
    this.trackSelect.disabled = false;
    if (had && why) log(`camera stopped: ${why}`);
  }

  async start(): Promise<void> {
    if (!navigator.mediaDevices?.getUserMedia) {
      showError('camera: not available on this page (browsers allow it on https:// and on localhost only)');
      return;
    }
    const mine = ++this.generation;
    this.on = true;
    this.toggle.textContent = 'Camera off';
    this.trackSelect.disabled = true;
    const stream = await this.open(mine);
    if (!stream) return;
    if ($<HTMLSelectElement>('camera-via').value === 'webrtc') {
      await this.sendOverWebRtc();
      if (this.stream !== stream) return;
    }
    log(`camera on: sending ${this.track()} at ${this.fpsSelect.value} fps${this.rtcTrack ? ' over WebRTC' : ''}`);
    this.schedule();
  }

  /** The camera, playing in the hidden video; null when refused, failed or stopped meanwhile. */
  private async open(mine: number): Promise<MediaStream | null> {
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: true });
    } catch (err) {
      if (mine === this.generation) this.stop();
      showError(`camera: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
      return null;
    }
    if (mine !== this.generation) {
      stream.getTracks().forEach((t) => t.stop()); // stopped while the browser was asking
      return null;
    }
    this.stream = stream;
    for (const t of stream.getVideoTracks()) t.addEventListener('ended', () => this.stream === stream && this.stop('the camera went away'));
    this.video.srcObject = stream;
    try {
      await this.video.play();
    } catch (err) {
      if (this.stream === stream) this.stop();
      showError(`camera: cannot play the camera (${err instanceof Error ? err.message : String(err)})`);
      return null;
    }
    return this.stream === stream ? stream : null;
  }

  /** The preview canvas as a track on the page's peer; on refusal the frames go over Socket.IO. */
  private async sendOverWebRtc(): Promise<void> {
    const stream = this.stream;
    const view = await this.media.peer();
    if (this.stream !== stream) return;
    if (!view) {
      log('camera: WebRTC unavailable; sending over Socket.IO');
      return;
    }
    // captureStream(0): a frame only when requestFrame() is called, i.e. once per send.
    const t = this.preview.captureStream(0).getVideoTracks()[0]!;
    try {
      await view.send(t, this.track());
      this.rtcTrack = t;
    } catch (err) {
      t.stop();
      log(`camera: WebRTC refused (${err instanceof Error ? err.message : String(err)}); sending over Socket.IO`);
    }
  }

  setState(state: Phase): void {
    this.toggle.disabled = !takesInput(state);
    this.toggle.title = this.toggle.disabled ? 'Start a session first' : 'Send your camera to the model (the session owner only)';
    if (!takesInput(state)) this.stop('the session ended');
  }
}

/** The Camera section for a model with input tracks (none: it stays hidden). */
export function setupCamera(client: FramehostClient, inputs: Readonly<Record<string, InputTrackSpec>>, initialState: Phase, media: PageMedia, sent: { inputsSent: number }): void {
  if (Object.keys(inputs).length === 0) return;
  $('camera').hidden = false;
  const camera = new Camera(client, inputs, media, sent);
  camera.setState(initialState);
  $('camera-toggle').addEventListener('click', () => {
    if (camera.on) camera.stop('turned off');
    else void camera.start();
  });
  $('camera-fps').addEventListener('change', () => camera.schedule());
  $('camera-track').addEventListener('change', () => camera.describe());
  client.on('state', ({ state }) => camera.setState(state));
  client.on('session:ended', () => camera.stop('the session ended'));
  client.on('input:rejected', ({ track: name, error }) => {
    // Frames that were on their way when the session ended (the camera has stopped already).
    if (!camera.on && error.code === 'no_session') return;
    showError(`camera (${name}): ${error.code}: ${error.message}`);
    if (FATAL_INPUT_ERRORS.has(error.code)) camera.stop(`refused (${error.code})`);
  });
}
