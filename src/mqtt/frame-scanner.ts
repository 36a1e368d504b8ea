/**
 * Watches the byte stream of one client for packet boundaries so that an
 * oversize packet is refused as soon as its fixed header arrives, before its
 * body is buffered, and so that a broken first byte or Remaining Length is
 * caught early. The connection then cuts the bytes into whole packets itself.
 */
export type FrameProblem =
  | 'packet-too-large'
  | 'malformed-remaining-length'
  | 'malformed-packet-type'
  | 'malformed-header-flags';

/**
 * The flags (low four bits of the first byte) each packet type requires [MQTT-2.2.2-1]; a
 * PUBLISH's are its own (DUP, QoS, RETAIN), any but QoS 3 [MQTT-3.3.1-4]. Type 0 is reserved.
 */
const REQUIRED_FLAGS: readonly number[] = [-1, 0, 0, -1, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0];

/** What is wrong with a packet's first byte, if anything (the receiver closes [MQTT-2.2.2-2]). */
export function firstByteProblem(byte: number): FrameProblem | undefined {
  const type = byte >> 4;
  const flags = byte & 0x0f;
  if (type === 0) return 'malformed-packet-type';
  if (type === 3) return (flags & 0x06) === 0x06 ? 'malformed-header-flags' : undefined;
  return flags === REQUIRED_FLAGS[type] ? undefined : 'malformed-header-flags';
}

export class FrameScanner {
  /**
   * The state of every stream at a packet boundary, shared: a stream keeps a scanner of its own
   * only while a chunk has ended inside a packet (see `of` and `kept`), so an idle connection
   * keeps none. `scan` runs to its end without calling out: nothing else uses it meanwhile.
   */
  static readonly #atBoundary = new FrameScanner();
  /** Body bytes of the current packet still to come; -1 while reading a fixed header. */
  #bodyLeft = -1;
  /** Bytes of the fixed header read so far (type byte + length bytes). */
  #headerBytes = 0;
  #length = 0;
  #multiplier = 1;
  /**
   * Where the packet refused by the last `scan` starts in its chunk (the packets before it are
   * whole); 0 or less when it started in an earlier chunk.
   */
  problemStart = 0;

  /** The scanner of a stream that kept `kept` (undefined: at a packet boundary). */
  static of(kept: FrameScanner | undefined): FrameScanner {
    if (kept !== undefined) return kept;
    const shared = FrameScanner.#atBoundary;
    shared.#startHeader();
    return shared;
  }

  /** What the stream keeps after a scan: nothing at a packet boundary, else a scanner of its own. */
  kept(): FrameScanner | undefined {
    if (this.#bodyLeft === 0 || this.#headerBytes === 0) return undefined;
    if (this !== FrameScanner.#atBoundary) return this;
    const own = new FrameScanner();
    own.#bodyLeft = this.#bodyLeft;
    own.#headerBytes = this.#headerBytes;
    own.#length = this.#length;
    own.#multiplier = this.#multiplier;
    return own;
  }

  /** Scans one chunk; returns a problem as soon as one is known. */
  scan(chunk: Buffer, maxPacketSize: number): FrameProblem | undefined {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#bodyLeft > 0) {
        const take = Math.min(this.#bodyLeft, chunk.length - offset);
        this.#bodyLeft -= take;
        offset += take;
        continue;
      }
      if (this.#bodyLeft === 0) this.#startHeader();
      const byte = chunk[offset++] as number;
      this.#headerBytes++;
      if (this.#headerBytes === 1) {
        // packet type and flags: refused before the body its length announces has arrived
        const problem = firstByteProblem(byte);
        if (problem !== undefined) return this.#refuse(problem, offset);
        continue;
      }
      this.#length += (byte & 0x7f) * this.#multiplier;
      this.#multiplier *= 128;
      if (byte & 0x80) {
        // [MQTT-1.5.5-1] a Variable Byte Integer uses at most four bytes
        if (this.#headerBytes === 5) return this.#refuse('malformed-remaining-length', offset);
        continue;
      }
      if (this.#headerBytes + this.#length > maxPacketSize) {
        return this.#refuse('packet-too-large', offset);
      }
      this.#bodyLeft = this.#length;
    }
    return undefined;
  }

  /** The problem of the packet whose fixed header ends at `offset` (exclusive). */
  #refuse(problem: FrameProblem, offset: number): FrameProblem {
    this.problemStart = offset - this.#headerBytes;
    return problem;
  }

  #startHeader(): void {
    this.#bodyLeft = -1;
    this.#headerBytes = 0;
    this.#length = 0;
    this.#multiplier = 1;
  }
}
