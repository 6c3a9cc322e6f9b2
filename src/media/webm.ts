/**
 * A minimal WebM (Matroska) writer for one VP8 track: the frames the room already encoded go in as
 * SimpleBlocks, nothing is decoded or encoded again. Written as it goes, so a file is readable at
 * any moment: the segment and the last cluster carry Matroska's "unknown size" (what live WebM
 * uses) until `close()` writes their sizes and the duration in place. A process killed mid-way
 * leaves a file players and FFmpeg still read; a clean close leaves a fully sized one.
 *
 * Synchronous positional writes: frames are small (a few KB at 256²), the order is the file's,
 * and the patches at close need the positions; a write costs microseconds next to the encode.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

const ID = {
  ebml: 0x1a45dfa3,
  ebmlVersion: 0x4286,
  ebmlReadVersion: 0x42f7,
  ebmlMaxIdLength: 0x42f2,
  ebmlMaxSizeLength: 0x42f3,
  docType: 0x4282,
  docTypeVersion: 0x4287,
  docTypeReadVersion: 0x4285,
  segment: 0x18538067,
  info: 0x1549a966,
  timecodeScale: 0x2ad7b1,
  muxingApp: 0x4d80,
  writingApp: 0x5741,
  duration: 0x4489,
  tracks: 0x1654ae6b,
  trackEntry: 0xae,
  trackNumber: 0xd7,
  trackUid: 0x73c5,
  trackType: 0x83,
  flagLacing: 0x9c,
  codecId: 0x86,
  video: 0xe0,
  pixelWidth: 0xb0,
  pixelHeight: 0xba,
  cluster: 0x1f43b675,
  timecode: 0xe7,
  simpleBlock: 0xa3,
} as const;

/** Every size is written in 8 bytes, so any of them can be patched in place later. */
const SIZE_BYTES = 8;
const UNKNOWN_SIZE = Buffer.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
/** A SimpleBlock's time is an int16 offset from its cluster's: a new cluster well before it overflows. */
const MAX_CLUSTER_SPAN_MS = 30_000;

function idBytes(id: number): Buffer {
  const bytes: number[] = [];
  for (let v = id; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from(bytes);
}

function sizeBytes(n: number): Buffer {
  const b = Buffer.alloc(SIZE_BYTES);
  b.writeUInt8(0x01, 0); // the 8-byte length marker
  b.writeUIntBE(Math.floor(n / 2 ** 32), 1, 3);
  b.writeUInt32BE(n >>> 0, 4);
  return b;
}

function uintBytes(n: number): Buffer {
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from(bytes.length ? bytes : [0]);
}

const element = (id: number, payload: Buffer): Buffer => Buffer.concat([idBytes(id), sizeBytes(payload.length), payload]);
const uint = (id: number, n: number): Buffer => element(id, uintBytes(n));
const text = (id: number, s: string): Buffer => element(id, Buffer.from(s, 'utf8'));

function header(width: number, height: number): { bytes: Buffer; durationAt: number; segmentSizeAt: number } {
  const ebml = element(
    ID.ebml,
    Buffer.concat([uint(ID.ebmlVersion, 1), uint(ID.ebmlReadVersion, 1), uint(ID.ebmlMaxIdLength, 4), uint(ID.ebmlMaxSizeLength, 8), text(ID.docType, 'webm'), uint(ID.docTypeVersion, 4), uint(ID.docTypeReadVersion, 2)]),
  );
  const segmentHead = Buffer.concat([idBytes(ID.segment), UNKNOWN_SIZE]);
  const infoHead = Buffer.concat([uint(ID.timecodeScale, 1_000_000), text(ID.muxingApp, 'framehost'), text(ID.writingApp, 'framehost')]);
  const duration = element(ID.duration, Buffer.alloc(8)); // float64 ms, written at close
  const info = element(ID.info, Buffer.concat([infoHead, duration]));
  const video = element(ID.video, Buffer.concat([uint(ID.pixelWidth, width), uint(ID.pixelHeight, height)]));
  const track = element(ID.trackEntry, Buffer.concat([uint(ID.trackNumber, 1), uint(ID.trackUid, 1), uint(ID.trackType, 1), uint(ID.flagLacing, 0), text(ID.codecId, 'V_VP8'), video]));
  const tracks = element(ID.tracks, track);
  const bytes = Buffer.concat([ebml, segmentHead, info, tracks]);
  const infoAt = ebml.length + segmentHead.length;
  return {
    bytes,
    segmentSizeAt: ebml.length + idBytes(ID.segment).length,
    // The float's 8 bytes end the Info element.
    durationAt: infoAt + info.length - 8,
  };
}

export class WebmWriter {
  private pos: number;
  private clusterMs = 0;
  /** Where the open cluster's size goes, and where its content begins (null before the first). */
  private cluster: { sizeAt: number; dataAt: number } | null = null;
  private lastMs = 0;
  private firstMs = 0;
  frames = 0;
  private closed = false;

  private constructor(
    private readonly fd: number,
    private readonly layout: { durationAt: number; segmentSizeAt: number },
    start: number,
  ) {
    this.pos = start;
  }

  /** A new file at `path` (replacing one of that name) for VP8 frames of this size. */
  static create(path: string, width: number, height: number): WebmWriter {
    const fd = openSync(path, 'w');
    const h = header(width, height);
    writeSync(fd, h.bytes, 0, h.bytes.length, 0);
    return new WebmWriter(fd, h, h.bytes.length);
  }

  get bytes(): number {
    return this.pos;
  }

  /** One encoded frame at `ms` from the recording's start (not decreasing). */
  write(data: Uint8Array, ms: number, key: boolean): void {
    if (this.closed) return;
    const t = Math.max(Math.round(ms), this.lastMs);
    if (!this.cluster || (key && t > this.clusterMs) || t - this.clusterMs > MAX_CLUSTER_SPAN_MS) this.startCluster(t);
    const head = Buffer.alloc(4);
    head.writeUInt8(0x81, 0); // track 1, as a 1-byte vint
    head.writeInt16BE(t - this.clusterMs, 1);
    head.writeUInt8(key ? 0x80 : 0x00, 3);
    this.append(Buffer.concat([idBytes(ID.simpleBlock), sizeBytes(head.length + data.length), head]));
    this.append(data);
    if (this.frames === 0) this.firstMs = t;
    this.lastMs = t;
    this.frames++;
  }

  private startCluster(t: number): void {
    this.sizeOpenCluster();
    const id = idBytes(ID.cluster);
    this.append(Buffer.concat([id, UNKNOWN_SIZE]));
    this.cluster = { sizeAt: this.pos - SIZE_BYTES, dataAt: this.pos };
    this.clusterMs = t;
    this.append(uint(ID.timecode, t));
  }

  private sizeOpenCluster(): void {
    if (this.cluster) this.patch(this.cluster.sizeAt, sizeBytes(this.pos - this.cluster.dataAt));
  }

  private append(b: Uint8Array): void {
    writeSync(this.fd, b, 0, b.length, this.pos);
    this.pos += b.length;
  }

  private patch(at: number, b: Buffer): void {
    writeSync(this.fd, b, 0, b.length, at);
  }

  /** Sizes and duration written in place; the last frame lasts as long as the mean spacing. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.sizeOpenCluster();
      const duration = Buffer.alloc(8);
      const frameMs = this.frames > 1 ? (this.lastMs - this.firstMs) / (this.frames - 1) : 0;
      duration.writeDoubleBE(this.frames > 0 ? this.lastMs + frameMs : 0);
      this.patch(this.layout.durationAt, duration);
      this.patch(this.layout.segmentSizeAt, sizeBytes(this.pos - this.layout.segmentSizeAt - SIZE_BYTES));
    } finally {
      closeSync(this.fd);
    }
  }
}
