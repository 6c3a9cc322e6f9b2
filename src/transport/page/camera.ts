/**
 * The Camera section, for models with input tracks (`caps.inputs`): the browser's camera,
 * scaled to cover the track's size, drawn on a preview canvas and published on the track at the
 * chosen rate (no ack; refusals come back as `input:rejected` and show in #error). Only the
 * session's owner may publish; the button works while a session starts or runs, and sending
 * stops when the session ends. (Moved here from main.ts as it was; its length is known.)
 */
import type { FramehostClient } from '../client.ts';
import type { InputTrackSpec } from '../../model/api.ts';
import type { Phase } from '../../machines/phase.ts';
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
export function setupCamera(client: FramehostClient, inputs: Readonly<Record<string, InputTrackSpec>>, initialState: Phase, media: PageMedia, sent: { inputsSent: number }): void {
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
      sent.inputsSent++;
      $('camera-sent').textContent = String(sent.inputsSent);
      return;
    }
    const rgba = new Uint8Array(pctx.getImageData(0, 0, width, height).data.buffer);
    let data = rgba;
    if (format === 'rgb') {
      data = new Uint8Array(width * height * 3);
      for (let p = 0; p < width * height; p++) data.set(rgba.subarray(p * 4, p * 4 + 3), p * 3);
    }
    client.publish(track(), { data, width, height, format });
    sent.inputsSent++;
    $('camera-sent').textContent = String(sent.inputsSent);
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
