/**
 * One VP8 decoder for a browser's camera (the receiving side of vp8-encoder.ts): VP8 frames in,
 * RGBA frames out at the size of the input track they feed, through FFmpeg's libvpx decoder in
 * node-av and swscale (the camera's own size may differ from the track's, and change: the browser
 * may scale its picture under load; the scaler follows it). One thread, no Dictionary (node-av
 * 6.1.1 frees a Dictionary handed to open2Sync twice: see vp8-encoder.ts).
 */
import {
  AV_CODEC_ID_VP8,
  AV_PIX_FMT_RGBA,
  AVERROR_EAGAIN,
  AVERROR_EOF,
  Codec,
  CodecContext,
  Frame,
  Packet,
  SoftwareScaleContext,
  SWS_BILINEAR,
} from 'node-av';
import type { AVPixelFormat } from 'node-av/constants';

export interface DecodedFrame {
  /** RGBA at the decoder's output size. */
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
}

export class Vp8Decoder {
  private readonly ctx = new CodecContext();
  private readonly packet = new Packet();
  private readonly frame = new Frame();
  private sws: { ctx: SoftwareScaleContext; key: string } | null = null;
  private closed = false;

  /** `width` × `height`: the size every frame comes out at (the input track's). */
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    const codec = Codec.findDecoder(AV_CODEC_ID_VP8);
    if (!codec) throw new Error('this FFmpeg build has no VP8 decoder');
    this.ctx.allocContext3(codec);
    this.ctx.threadCount = 1;
    const opened = this.ctx.open2Sync(codec, null);
    if (opened < 0) throw new Error(`VP8 decoder did not open (${opened})`);
    this.packet.alloc();
    this.frame.alloc();
  }

  /** Decode one VP8 frame; the RGBA frames it gives (0 or 1). Throws on a decode error. */
  decode(vp8: Buffer): DecodedFrame[] {
    if (this.closed) return [];
    this.packet.data = vp8;
    const sent = this.ctx.sendPacketSync(this.packet);
    this.packet.unref();
    if (sent < 0) throw new Error(`VP8 decode failed (${sent})`);
    const out: DecodedFrame[] = [];
    for (;;) {
      const r = this.ctx.receiveFrameSync(this.frame);
      if (r === AVERROR_EAGAIN || r === AVERROR_EOF) break;
      if (r < 0) throw new Error(`VP8 decode failed (${r})`);
      try {
        out.push(this.toRgba());
      } finally {
        this.frame.unref();
      }
    }
    return out;
  }

  private toRgba(): DecodedFrame {
    const { width: w, height: h } = this.frame;
    const format = this.frame.format as AVPixelFormat;
    const key = `${w}x${h}:${format}`;
    if (this.sws?.key !== key) {
      this.sws?.ctx.freeContext();
      const ctx = new SoftwareScaleContext();
      ctx.getContext(w, h, format, this.width, this.height, AV_PIX_FMT_RGBA, SWS_BILINEAR);
      this.sws = { ctx, key };
    }
    const planes = this.frame.data;
    if (!planes) throw new Error('a decoded frame without pixels');
    const rgba = Buffer.alloc(this.width * this.height * 4);
    this.sws.ctx.scaleSync(planes, this.frame.linesize, 0, h, [rgba], [this.width * 4]);
    return { data: new Uint8Array(rgba.buffer, rgba.byteOffset, rgba.byteLength), width: this.width, height: this.height };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sws?.ctx.freeContext();
    this.frame.free();
    this.packet.free();
    this.ctx.freeContext();
  }
}
