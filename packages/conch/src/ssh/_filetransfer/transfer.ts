/**
 * Whole-file transfers over a {@link FileTransferClient}, with many requests in flight (what makes
 * SFTP fast over a link with latency) and memory bounded by `requests × chunkSize`:
 * {@link getFile} (download) and {@link putFile} (upload), both able to resume (`reget`/`reput`).
 */
import { constants, promises as fsp } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import type { ClientFile, FileTransferClient, PathLike } from "./client.js";
import { FXF_CREAT, FXF_READ, FXF_TRUNC, FXF_WRITE, FX_EOF } from "./constants.js";
import { SFTPError } from "./wire.js";

/**
 * Bytes asked for by each READ or sent by each WRITE of a transfer when the server states no
 * limits (`limits@openssh.com`): the 32 KiB every server must take (draft-02 §3).
 */
export const TRANSFER_CHUNK_SIZE = 32 * 1024;
/**
 * The largest chunk a transfer picks from the server's limits (OpenSSH's sftp: its 256 KiB packet
 * less 1 KiB). Against sshd a 32 KiB WRITE was two SSH packets (the 32 KiB of data and a 29-byte
 * rest); 255 KiB is eight full ones, and a reply per 255 KiB instead of per 32 KiB.
 */
export const TRANSFER_MAX_CHUNK_SIZE = 255 * 1024;
/** Bytes a transfer keeps in flight: {@link TRANSFER_REQUESTS} of 32 KiB, 8 of 255 KiB. */
export const TRANSFER_WINDOW = 2 * 1024 * 1024;
/** Requests a transfer keeps in flight at most (OpenSSH's sftp: 64); fewer for chunks over 32 KiB. */
export const TRANSFER_REQUESTS = 64;

/** Settings of one transfer. */
export interface TransferOptions {
  /**
   * Bytes per request: by default what the server's `limits@openssh.com` allow, up to
   * {@link TRANSFER_MAX_CHUNK_SIZE} (see `FileTransferClient.transferChunkSizes`), else
   * {@link TRANSFER_CHUNK_SIZE}.
   */
  chunkSize?: number;
  /**
   * Requests in flight: by default {@link TRANSFER_WINDOW} / `chunkSize`, at most
   * {@link TRANSFER_REQUESTS}.
   */
  requests?: number;
  /** Continue from the size the destination already has (`reget` / `reput`), instead of replacing it. */
  resume?: boolean;
  /** Called after each chunk with the bytes at the destination so far and the source's size (if known). */
  progress?: (transferred: number, total: number | undefined) => void;
}

async function closeQuietly(f: { close(): PromiseLike<unknown> }): Promise<void> {
  try {
    await f.close();
  } catch {
    // The transfer's own error (or success) is what the caller needs.
  }
}

/**
 * Runs `task(offset, length)` over chunks from `start` with at most `requests` in flight; a task
 * returns how many bytes it handled (fewer: the rest of its range is asked for again) or
 * undefined at the end of the source.
 */
function pipeline(
  start: number,
  size: number | undefined,
  opts: Required<Pick<TransferOptions, "chunkSize" | "requests">>,
  task: (offset: number, length: number) => Promise<number | undefined>,
): Promise<number> {
  return new Promise((resolve, reject) => {
    let next = start;
    let endAt = Number.POSITIVE_INFINITY;
    let inflight = 0;
    let failed: unknown = undefined;
    const retries: Array<[number, number]> = [];
    const pump = (): void => {
      while (failed === undefined && inflight < opts.requests) {
        let range: [number, number] | undefined;
        while (retries.length > 0 && range === undefined) {
          const r = retries.shift()!;
          if (r[0] < endAt) range = r;
        }
        if (range === undefined) {
          // Past the known size, one request at a time checks for the end (the file may have grown).
          if (next >= endAt || (size !== undefined && next >= size && inflight > 0)) break;
          range = [next, opts.chunkSize];
          next += opts.chunkSize;
        }
        const [off, len] = range;
        inflight++;
        task(off, len).then(
          (n) => {
            if (n === undefined || n === 0) endAt = Math.min(endAt, off);
            else if (n < len) retries.push([off + n, len - n]);
          },
          (e: unknown) => {
            failed ??= e;
          },
        ).finally(() => {
          inflight--;
          if (inflight > 0) return pump();
          if (failed !== undefined) return reject(failed);
          if (retries.every(([o]) => o >= endAt) && next >= endAt) return resolve(endAt);
          pump();
          if (inflight === 0) resolve(Math.min(endAt, next));
        });
      }
    };
    pump();
  });
}

/** The chunk size and depth of a transfer: the caller's, else the server's sizes (`way`) and {@link TRANSFER_WINDOW}. */
async function settings(client: FileTransferClient, opts: TransferOptions, way: "read" | "write"): Promise<Required<Pick<TransferOptions, "chunkSize" | "requests">>> {
  const chunkSize = opts.chunkSize ?? (await client.transferChunkSizes())[way];
  const requests = opts.requests ?? Math.min(TRANSFER_REQUESTS, Math.max(1, Math.floor(TRANSFER_WINDOW / chunkSize)));
  if (!(chunkSize >= 1 && requests >= 1)) throw new RangeError("chunkSize and requests must be at least 1");
  return { chunkSize, requests };
}

/**
 * Downloads `remote` to the local file `local`; resolves with the final size. With `resume`, the
 * bytes already in `local` are kept and only the rest is fetched.
 */
export async function getFile(client: FileTransferClient, remote: PathLike, local: string, opts: TransferOptions = {}): Promise<number> {
  const s = await settings(client, opts, "read");
  const rf = await client.openFile(remote, FXF_READ);
  let out: FileHandle | undefined;
  try {
    const size = (await rf.getAttrs()).size;
    out = await fsp.open(local, constants.O_WRONLY | constants.O_CREAT | (opts.resume === true ? 0 : constants.O_TRUNC), 0o666);
    const start = opts.resume === true ? (await out.stat()).size : 0;
    let transferred = start;
    const writer = new ChunkWriter(out);
    const end = await pipeline(start, size, s, async (offset, length) => {
      const data = await readOrEOF(rf, offset, length);
      if (data.length === 0) return undefined;
      await writer.write(data, offset);
      // Written: nothing holds the chunk any more, so its memory may take a later reply.
      client._recycle(data);
      transferred += data.length;
      opts.progress?.(transferred, size);
      return data.length;
    });
    await out.truncate(end);
    return end;
  } finally {
    if (out !== undefined) await out.close();
    await closeQuietly(rf);
  }
}

async function readOrEOF(rf: ClientFile, offset: number, length: number): Promise<Uint8Array> {
  try {
    return await rf.readChunk(offset, length);
  } catch (e) {
    if (e instanceof SFTPError && e.code === FX_EOF) return new Uint8Array(0);
    throw e;
  }
}

/** Most buffers one writev takes (IOV_MAX on Linux). */
const MAX_IOV = 1024;

/**
 * Writes a download's chunks to the local file one call at a time: the chunks that came in while
 * a write was under way and follow each other go out together in one writev. A thread-pool round
 * trip per 32 KiB chunk cost the client more CPU than the data's copy (measured with bench/sftp).
 * Each chunk's promise settles once it is written, so memory stays bounded by the pipeline.
 */
class ChunkWriter {
  private readonly pending: Array<{ data: Uint8Array; position: number; done: () => void; failed: (e: unknown) => void }> = [];
  private busy = false;

  constructor(private readonly fh: FileHandle) {}

  write(data: Uint8Array, position: number): Promise<void> {
    return new Promise((done, failed) => {
      this.pending.push({ data, position, done, failed });
      if (!this.busy) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.busy = true;
    while (this.pending.length > 0) {
      let n = 1;
      let end = this.pending[0]!.position + this.pending[0]!.data.length;
      while (n < this.pending.length && n < MAX_IOV && this.pending[n]!.position === end) end += this.pending[n++]!.data.length;
      const run = this.pending.splice(0, n);
      try {
        await writevAll(this.fh, run.map((c) => c.data), run[0]!.position);
        for (const c of run) c.done();
      } catch (e) {
        for (const c of run) c.failed(e);
      }
    }
    this.busy = false;
  }
}

async function writevAll(fh: FileHandle, buffers: Uint8Array[], position: number): Promise<void> {
  let left = buffers;
  while (left.length > 0) {
    let n = (await fh.writev(left, position)).bytesWritten;
    position += n;
    // A short write: drop what went out and write the rest.
    let i = 0;
    while (i < left.length && n >= left[i]!.length) n -= left[i++]!.length;
    left = left.slice(i);
    if (n > 0) left[0] = left[0]!.subarray(n);
  }
}

/** Bytes an upload reads from the local file at a time (whole chunks, at least one). */
const READ_AHEAD_BYTES = 256 * 1024;

/**
 * Reads an upload's local file in blocks of whole chunks (about {@link READ_AHEAD_BYTES}; one
 * chunk when chunks are that big) and hands the chunks out as views of them: one thread-pool
 * round trip per block rather than per chunk (the mirror of
 * {@link ChunkWriter}). Blocks are counted from the transfer's start, so no chunk straddles two.
 * Once every chunk of a block was {@link release}d (its WRITE answered, so nothing holds the
 * bytes any more), the block's memory reads the next one: a fresh 256 KiB buffer per block made
 * V8 collect garbage for the external memory every few MiB (measured with bench/sftp).
 */
class BlockReader {
  private readonly blocks = new Map<number, { data: Promise<Uint8Array>; buffer: Buffer; released: number }>();
  private readonly spare: Buffer[] = [];

  constructor(
    private readonly fh: FileHandle,
    private readonly base: number,
    private readonly blockSize: number,
  ) {}

  async read(offset: number, length: number): Promise<Uint8Array> {
    const start = this.blockStart(offset);
    if (offset + length > start + this.blockSize) return this.readAt(Buffer.allocUnsafe(length), offset);
    let block = this.blocks.get(start);
    if (block === undefined) {
      const buffer = this.spare.pop() ?? Buffer.allocUnsafe(this.blockSize);
      block = { data: this.readAt(buffer, start), buffer, released: 0 };
      this.blocks.set(start, block);
    }
    const data = await block.data;
    return data.subarray(offset - start, offset - start + length);
  }

  /** The `length` bytes read at `offset` are no longer needed. */
  release(offset: number, length: number): void {
    const start = this.blockStart(offset);
    const block = this.blocks.get(start);
    if (block === undefined || offset + length > start + this.blockSize) return;
    block.released += length;
    void block.data.then((data) => {
      if (block.released < data.length || this.blocks.get(start) !== block) return;
      this.blocks.delete(start);
      if (data.length === this.blockSize) this.spare.push(block.buffer);
    });
  }

  private blockStart(offset: number): number {
    return offset - ((offset - this.base) % this.blockSize);
  }

  private async readAt(buf: Buffer, position: number): Promise<Uint8Array> {
    const length = buf.length;
    let got = 0;
    // Fill the block: a short read before the end of the file would look like the end.
    while (got < length) {
      const { bytesRead } = await this.fh.read(buf, got, length - got, position + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  }
}

/**
 * Uploads the local file `local` to `remote`; resolves with the bytes at the destination. With
 * `resume`, the remote file's bytes are kept and only the rest is sent.
 */
export async function putFile(client: FileTransferClient, local: string, remote: PathLike, opts: TransferOptions = {}): Promise<number> {
  const s = await settings(client, opts, "write");
  const input = await fsp.open(local, "r");
  try {
    const size = (await input.stat()).size;
    const rf = await client.openFile(remote, FXF_WRITE | FXF_CREAT | (opts.resume === true ? 0 : FXF_TRUNC));
    try {
      const start = opts.resume === true ? ((await rf.getAttrs()).size ?? 0) : 0;
      let transferred = start;
      const reader = new BlockReader(input, start, s.chunkSize * Math.max(1, Math.floor(READ_AHEAD_BYTES / s.chunkSize)));
      return await pipeline(start, size, s, async (offset, length) => {
        if (offset >= size) return undefined;
        const chunk = await reader.read(offset, Math.min(length, size - offset));
        const bytesRead = chunk.length;
        if (bytesRead === 0) return undefined;
        await rf.writeChunk(offset, chunk);
        reader.release(offset, bytesRead);
        transferred += bytesRead;
        opts.progress?.(transferred, size);
        return bytesRead === length ? length : bytesRead;
      });
    } finally {
      await closeQuietly(rf);
    }
  } finally {
    await input.close();
  }
}

/** What a recursive transfer did. */
export interface TreeResult {
  files: number;
  directories: number;
  bytes: number;
  /** Entries left alone: symbolic links and special files (as OpenSSH's `get -R` / `put -R`). */
  skipped: string[];
}

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

/**
 * `get -R`: copies the remote directory `remote` into the local directory `local` (made if
 * missing): regular files and directories, one file at a time, each pipelined as {@link getFile}.
 */
export async function getTree(client: FileTransferClient, remote: string, local: string, opts: TransferOptions = {}): Promise<TreeResult> {
  const result: TreeResult = { files: 0, directories: 0, bytes: 0, skipped: [] };
  const walk = async (r: string, l: string): Promise<void> => {
    await fsp.mkdir(l, { recursive: true });
    result.directories++;
    const entries = await (await client.openDirectory(r)).readAll();
    for (const [name, , attrs] of entries) {
      if (name === "." || name === ".." || name.includes("/")) continue;
      const type = (attrs.permissions ?? 0) & S_IFMT;
      const rp = `${r.replace(/\/+$/, "")}/${name}`;
      const lp = `${l}/${name}`;
      if (type === S_IFDIR) await walk(rp, lp);
      else if (type === S_IFREG) {
        result.bytes += await getFile(client, rp, lp, opts);
        result.files++;
      } else result.skipped.push(rp);
    }
  };
  await walk(remote, local);
  return result;
}

/**
 * `put -R`: copies the local directory `local` into the remote directory `remote` (made if
 * missing): regular files and directories, each file pipelined as {@link putFile}.
 */
export async function putTree(client: FileTransferClient, local: string, remote: string, opts: TransferOptions = {}): Promise<TreeResult> {
  const result: TreeResult = { files: 0, directories: 0, bytes: 0, skipped: [] };
  const walk = async (l: string, r: string): Promise<void> => {
    try {
      await client.makeDirectory(r, {});
    } catch (e) {
      // An existing directory is fine; anything else shows up at the first file.
      if (!(e instanceof SFTPError)) throw e;
    }
    result.directories++;
    for (const ent of await fsp.readdir(l, { withFileTypes: true })) {
      const lp = `${l}/${ent.name}`;
      const rp = `${r.replace(/\/+$/, "")}/${ent.name}`;
      if (ent.isDirectory()) await walk(lp, rp);
      else if (ent.isFile()) {
        result.bytes += await putFile(client, lp, rp, opts);
        result.files++;
      } else result.skipped.push(lp);
    }
  };
  await walk(local, remote);
  return result;
}
