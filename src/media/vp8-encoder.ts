/**
 * One VP8 encoder for one rendition (size, bitrate): RGBA frames in, VP8 frames out, through
 * FFmpeg's libvpx in node-av (scaled by swscale on the way when the rendition is smaller). Real-time settings (deadline realtime, cpu-used 8, no lag, one
 * thread, no B-frames): a frame leaves the encoder as soon as it is encoded. A keyframe is made on
 * request (the next frame's picture type set to I) and otherwise every `gopFrames`.
 */
import {
  AV_CODEC_ID_VP8,
  AV_LOG_ERROR,
  AV_OPT_SEARCH_CHILDREN,
  AV_OPT_TYPE_STRING,
  AV_PICTURE_TYPE_I,
  AV_PICTURE_TYPE_NONE,
  AV_PIX_FMT_RGBA,
  AV_PIX_FMT_YUV420P,
  Codec,
  CodecContext,
  Frame,
  Log,
  Packet,
  Rational,
  SoftwareScaleContext,
  SWS_BILINEAR,
} from 'node-av';

export interface Vp8EncoderOptions {
  /** The encoded size (even). */
  readonly width: number;
  readonly height: number;
  /** The RGBA frames' size when it is not the encoded one (swscale scales them). */
  readonly source?: { readonly width: number; readonly height: number };
  readonly fps: number;
  readonly bitrateKbps: number;
  /** A keyframe at least this often (frames), for receivers that lose one and send no PLI. */
  readonly gopFrames: number;
}

/** Real time: encode as fast as libvpx can, hold no frames back, survive a lost packet. */
const VPX_OPTIONS = { deadline: 'realtime', 'cpu-used': '8', 'lag-in-frames': '0', 'error-resilient': '1' } as const;

export interface EncodedFrame {
  readonly data: Buffer;
  readonly key: boolean;
}

// FFmpeg's own lines (libvpx's version banner on every open) stay out of framehost's JSON logs.
Log.setLevel(AV_LOG_ERROR);

export class Vp8Encoder {
  private readonly ctx = new CodecContext();
  private readonly sws = new SoftwareScaleContext();
  private readonly i420: Buffer;
  private readonly planes: Buffer[];
  private readonly packet = new Packet();
  private pts = 0n;
  private keyWanted = true;
  private closed = false;

  constructor(readonly options: Vp8EncoderOptions) {
    const { width, height, fps, bitrateKbps } = options;
    const codec = Codec.findEncoder(AV_CODEC_ID_VP8);
    if (!codec) throw new Error('this FFmpeg build has no VP8 encoder');
    this.ctx.allocContext3(codec);
    this.ctx.width = width;
    this.ctx.height = height;
    this.ctx.pixelFormat = AV_PIX_FMT_YUV420P;
    this.ctx.timeBase = new Rational(1, fps);
    this.ctx.framerate = new Rational(fps, 1);
    // Constant bitrate, as libwebrtc runs libvpx: FFmpeg picks libvpx's CBR when the minimum and
    // maximum rates equal the target. Its default (VBR) overshot the target by 7% at 256² and 14%
    // at 512² on the demo world (bench, room quality). The buffer is one second of the rate.
    const bitsPerSecond = BigInt(bitrateKbps * 1000);
    this.ctx.bitRate = bitsPerSecond;
    this.ctx.rcMinRate = bitsPerSecond;
    this.ctx.rcMaxRate = bitsPerSecond;
    this.ctx.rcBufferSize = bitrateKbps * 1000;
    this.ctx.gopSize = options.gopFrames;
    this.ctx.maxBFrames = 0;
    this.ctx.threadCount = 1;
    // libvpx's own options, set on the context: a Dictionary handed to open2Sync in node-av 6.1.1
    // is freed twice (FFmpeg replaces it with the options it did not use), which aborted the
    // process at exit or when collected (measured); setting each option avoids the Dictionary.
    for (const [name, value] of Object.entries(VPX_OPTIONS)) {
      if (this.ctx.setOption(name, value, AV_OPT_TYPE_STRING, AV_OPT_SEARCH_CHILDREN) < 0) throw new Error(`VP8 encoder option ${name} refused`);
    }
    const opened = this.ctx.open2Sync(codec, null);
    if (opened < 0) throw new Error(`VP8 encoder did not open (${opened})`);
    const source = options.source ?? { width, height };
    this.sws.getContext(source.width, source.height, AV_PIX_FMT_RGBA, width, height, AV_PIX_FMT_YUV420P, SWS_BILINEAR);
    const luma = width * height;
    const chroma = (width / 2) * (height / 2);
    this.i420 = Buffer.alloc(luma + 2 * chroma);
    this.planes = [this.i420.subarray(0, luma), this.i420.subarray(luma, luma + chroma), this.i420.subarray(luma + chroma)];
    this.packet.alloc();
  }

  /** The I420 planes (Y, U, V) of the last frame handed to libvpx: what quality is measured against. */
  get input(): Buffer {
    return this.i420;
  }

  /** The next frame is a keyframe. */
  requestKeyframe(): void {
    this.keyWanted = true;
  }

  /** Encode one RGBA frame of the source's size; the encoded frames it gives back (0 or 1). */
  encode(rgba: Uint8Array): EncodedFrame[] {
    if (this.closed) return [];
    const { width, height } = this.options;
    const source = this.options.source ?? { width, height };
    const src = Buffer.from(rgba.buffer, rgba.byteOffset, rgba.byteLength);
    this.sws.scaleSync([src], [source.width * 4], 0, source.height, this.planes, [width, width / 2, width / 2]);
    const frame = Frame.fromVideoBuffer(this.i420, { width, height, format: AV_PIX_FMT_YUV420P, pts: this.pts++ });
    frame.pictType = this.keyWanted ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
    this.keyWanted = false;
    const sent = this.ctx.sendFrameSync(frame);
    frame.free();
    if (sent < 0) throw new Error(`VP8 encode failed (${sent})`);
    const out: EncodedFrame[] = [];
    while (this.ctx.receivePacketSync(this.packet) >= 0) {
      const data = this.packet.data;
      if (data) out.push({ data: Buffer.from(data), key: this.packet.isKeyframe });
      this.packet.unref();
    }
    return out;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.packet.free();
    this.sws.freeContext();
    this.ctx.freeContext();
  }
}
