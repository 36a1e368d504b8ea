/**
 * Watches the byte stream of one client for packet boundaries so that an
 * oversize packet is refused as soon as its fixed header arrives, before its
 * body is buffered, and so that a broken Remaining Length is caught early.
 * The connection then cuts the bytes into whole packets itself.
 */
export type FrameProblem = 'packet-too-large' | 'malformed-remaining-length';

export class FrameScanner {
  readonly #maxPacketSize: number;
  /** Body bytes of the current packet still to come; -1 while reading a fixed header. */
  #bodyLeft = -1;
  /** Bytes of the fixed header read so far (type byte + length bytes). */
  #headerBytes = 0;
  #length = 0;
  #multiplier = 1;

  constructor(maxPacketSize: number) {
    this.#maxPacketSize = maxPacketSize;
  }

  /** Scans one chunk; returns a problem as soon as one is known. */
  scan(chunk: Buffer): FrameProblem | undefined {
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
      if (this.#headerBytes === 1) continue; // packet type and flags
      this.#length += (byte & 0x7f) * this.#multiplier;
      this.#multiplier *= 128;
      if (byte & 0x80) {
        // [MQTT-1.5.5-1] a Variable Byte Integer uses at most four bytes
        if (this.#headerBytes === 5) return 'malformed-remaining-length';
        continue;
      }
      if (this.#headerBytes + this.#length > this.#maxPacketSize) return 'packet-too-large';
      this.#bodyLeft = this.#length;
    }
    return undefined;
  }

  #startHeader(): void {
    this.#bodyLeft = -1;
    this.#headerBytes = 0;
    this.#length = 0;
    this.#multiplier = 1;
  }
}
