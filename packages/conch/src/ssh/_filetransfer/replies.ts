/**
 * Memory for the server's DATA replies, reused once the transport is done with it, and for the
 * WRITE requests it queues, reused once the file has the data. A fresh buffer per READ (up to
 * 255 KiB for OpenSSH's sftp) or per WRITE is fresh memory for the kernel to fault in and
 * external memory for V8 to collect: in the sftp-server bin that cost more system time than the
 * file's reads (measured with `sftp -D` and `strace -c`).
 */
import type { ITransport } from "@twisted-ts/internet/interfaces";

/**
 * A transport that says when it no longer holds the bytes of a write: the sftp-server bin's
 * stream transport once they are in the pipe, a session's transport once the channel has sealed
 * them (not when the client's window made it keep them).
 */
export interface IReleasingTransport {
  writeAndRelease(data: Uint8Array, release: () => void): void;
}

/** Writes `data`; `release` is called when the transport is done with it, if it can say so. */
export function writeReleasing(transport: ITransport, data: Uint8Array, release: () => void): void {
  const t = transport as ITransport & Partial<IReleasingTransport>;
  if (typeof t.writeAndRelease === "function") t.writeAndRelease(data, release);
  else t.write(data);
}

/** Spare buffers kept at most by default: 4 MiB of the longest READs, about what a 2 MiB window keeps in flight. */
const MAX_SPARE = 16;

/** Buffers of one size (the size of the last one asked for), handed out and given back. */
export class SpareBuffers {
  private spare: Buffer[] = [];

  /** `maxSpare`: buffers kept for reuse at most. */
  constructor(private readonly maxSpare: number = MAX_SPARE) {}

  /** A buffer of `size` bytes, not zero-filled. */
  take(size: number): Buffer {
    const b = this.spare.pop();
    if (b !== undefined && b.length === size) return b;
    // Another size: what is kept fits no more.
    if (b !== undefined) this.spare = [];
    return Buffer.allocUnsafeSlow(size);
  }

  /** `b` (from {@link take}) is free to hand out again. */
  give(b: Buffer): void {
    if (this.spare.length < this.maxSpare && (this.spare.length === 0 || this.spare[0]!.length === b.length)) this.spare.push(b);
  }
}
