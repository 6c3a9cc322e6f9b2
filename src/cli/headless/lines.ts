/**
 * stdin of `framehost headless` as numbered lines, never holding more than one line's cap in
 * memory (lines over 64 KiB are refused with `payload_too_large`).
 */

export const MAX_LINE_BYTES = 64 * 1024;

export type InputLine = { readonly line: number; readonly text: string } | { readonly line: number; readonly tooLong: true };

/**
 * Split a byte stream into lines without ever holding more than `maxBytes` of one line:
 * an over-long line is dropped as it streams in and reported once, at its end.
 */
export async function* readLines(input: AsyncIterable<Buffer | string> | Iterable<Buffer | string>, maxBytes = MAX_LINE_BYTES): AsyncGenerator<InputLine> {
  const line = new LineBuffer(maxBytes);
  for await (const chunk of input) {
    let rest = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    for (let nl = rest.indexOf(0x0a); nl !== -1; nl = rest.indexOf(0x0a)) {
      line.take(rest.subarray(0, nl));
      yield line.finish();
      rest = rest.subarray(nl + 1);
    }
    line.take(rest);
  }
  if (line.pending) yield line.finish();
}

/** The bytes of the line being read, up to a cap, and the number of the next line. */
class LineBuffer {
  private parts: Buffer[] = [];
  private size = 0;
  private tooLong = false;
  private line = 0;

  constructor(private readonly maxBytes: number) {}

  /** Whether a last line without a newline is left. */
  get pending(): boolean {
    return this.size > 0 || this.tooLong;
  }

  /** Add a piece of the current line; past the cap, drop what is held and what comes. */
  take(piece: Buffer): void {
    if (this.tooLong || piece.length === 0) return;
    if (this.size + piece.length > this.maxBytes) {
      this.tooLong = true;
      this.parts = [];
      return;
    }
    this.parts.push(piece);
    this.size += piece.length;
  }

  /** The current line, numbered; the buffer then holds the next one. */
  finish(): InputLine {
    this.line += 1;
    const line = this.line;
    const result: InputLine = this.tooLong ? { line, tooLong: true } : { line, text: Buffer.concat(this.parts).toString('utf8').replace(/\r$/, '') };
    this.parts = [];
    this.size = 0;
    this.tooLong = false;
    return result;
  }
}
