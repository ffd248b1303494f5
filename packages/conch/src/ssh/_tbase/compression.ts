/**
 * Packet compression (RFC 4253 §6.2): `zlib`, and `zlib@openssh.com`, which starts only after
 * authentication. One deflate and one inflate context per direction, kept for the life of the
 * keys, each packet flushed with Z_SYNC_FLUSH (as OpenSSH does).
 */
import * as zlib from "node:zlib";

/** node:zlib streams process a chunk synchronously through this (what the *Sync helpers use). */
interface SyncZlib {
  _processChunk(chunk: Uint8Array, flushFlag: number): Buffer;
}

/** Most a single packet may inflate to; beyond it the peer is hostile (RFC 4253 §6.1 limits). */
export const MAX_DECOMPRESSED_PAYLOAD = 256 * 1024;

export class Compressor {
  private readonly z = zlib.createDeflate({ level: 6 }) as unknown as SyncZlib;
  compress(payload: Uint8Array): Uint8Array {
    return this.z._processChunk(payload, zlib.constants.Z_SYNC_FLUSH);
  }
}

export class Decompressor {
  private readonly z = zlib.createInflate({ maxOutputLength: MAX_DECOMPRESSED_PAYLOAD }) as unknown as SyncZlib;
  decompress(payload: Uint8Array): Uint8Array {
    return this.z._processChunk(payload, zlib.constants.Z_SYNC_FLUSH);
  }
}

export const COMPRESSIONS: readonly string[] = ["none", "zlib@openssh.com", "zlib"];
