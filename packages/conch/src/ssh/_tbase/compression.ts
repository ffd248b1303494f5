/**
 * Packet compression (RFC 4253 §6.2): `zlib`, and `zlib@openssh.com`, which starts only after
 * authentication. One deflate and one inflate context per direction, kept for the life of the
 * keys, each packet flushed with Z_SYNC_FLUSH (as OpenSSH does).
 *
 * node:zlib's synchronous helpers close their context after one call, so this drives the zlib
 * handle of a stream object directly, as Node's own `processChunkSync` does, keeping it open.
 */
import * as zlib from "node:zlib";
import { DISCONNECT_COMPRESSION_ERROR, SSHDisconnectError } from "../../error.js";

/** Most a single packet may inflate to (the packet size limit, with room for headers). */
export const MAX_DECOMPRESSED_PAYLOAD = 256 * 1024 + 1024;

interface ZlibHandle {
  writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void;
  close(): void;
}

interface ZlibInternals {
  _handle: ZlibHandle | null;
  _writeState: Uint32Array;
  /** Set synchronously by `destroy(error)`, unlike the "error" event. */
  readonly errored: Error | null;
  on(event: "error", fn: (e: Error) => void): void;
}

const CHUNK = 64 * 1024;

class ZlibContext {
  private readonly z: ZlibInternals;
  private error: Error | undefined = undefined;
  private out = Buffer.allocUnsafe(CHUNK);

  constructor(
    stream: zlib.Deflate | zlib.Inflate,
    private readonly limit: number,
  ) {
    this.z = stream as unknown as ZlibInternals;
    this.z.on("error", (e) => (this.error = e));
  }

  run(input: Uint8Array): Uint8Array {
    const handle = this.z._handle;
    if (handle === null || this.error !== undefined) {
      throw new SSHDisconnectError(DISCONNECT_COMPRESSION_ERROR, `compression error: ${this.error?.message ?? "context closed"}`, false);
    }
    const state = this.z._writeState;
    const parts: Buffer[] = [];
    let total = 0;
    let inOff = 0;
    let inLen = input.length;
    for (;;) {
      handle.writeSync(zlib.constants.Z_SYNC_FLUSH, input, inOff, inLen, this.out, 0, CHUNK);
      // A zlib error destroys the stream (closing its handle) at once but emits "error" only on
      // the next tick; writing to the closed handle again aborts the process, so look now.
      if (this.z._handle === null || this.z.errored !== null) this.error ??= this.z.errored ?? new Error("zlib context closed");
      const failed = this.error as Error | undefined;
      if (failed !== undefined) {
        throw new SSHDisconnectError(DISCONNECT_COMPRESSION_ERROR, `compression error: ${failed.message}`, false);
      }
      const availOut = state[0]!;
      const availIn = state[1]!;
      const have = CHUNK - availOut;
      if (have > 0) {
        parts.push(Buffer.from(this.out.subarray(0, have)));
        total += have;
        if (total > this.limit) {
          throw new SSHDisconnectError(DISCONNECT_COMPRESSION_ERROR, `packet inflates past ${this.limit} bytes`, false);
        }
      }
      inOff += inLen - availIn;
      inLen = availIn;
      if (availOut !== 0) break;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, total);
  }
}

export class Compressor {
  private readonly ctx = new ZlibContext(zlib.createDeflate({ level: 6 }), Number.MAX_SAFE_INTEGER);
  compress(payload: Uint8Array): Uint8Array {
    return this.ctx.run(payload);
  }
}

export class Decompressor {
  private readonly ctx = new ZlibContext(zlib.createInflate(), MAX_DECOMPRESSED_PAYLOAD);
  decompress(payload: Uint8Array): Uint8Array {
    return this.ctx.run(payload);
  }
}
