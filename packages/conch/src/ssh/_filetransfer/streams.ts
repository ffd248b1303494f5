/**
 * Node stream adapters over a remote file: a Readable that keeps up to `requests` READs in flight
 * while its consumer wants data (back-pressure stops new READs), and a Writable that keeps up to
 * `requests` WRITEs in flight (further writes wait, so the producer is paused).
 */
import { Readable, Writable } from "node:stream";
import type { ClientFile, FileTransferClient, PathLike } from "./client.js";
import { FXF_CREAT, FXF_READ, FXF_TRUNC, FXF_WRITE, FX_EOF } from "./constants.js";
import { TRANSFER_CHUNK_SIZE, TRANSFER_REQUESTS } from "./transfer.js";
import { SFTPError, type FileAttributes } from "./wire.js";

export interface RemoteReadStreamOptions {
  /** First byte to read (default 0). */
  start?: number;
  /** Last byte to read, inclusive (default: to the end), as `fs.createReadStream`. */
  end?: number;
  chunkSize?: number;
  requests?: number;
  /** Close the remote file when the stream ends or is destroyed (default true). */
  autoClose?: boolean;
}

export interface RemoteWriteStreamOptions {
  /** Offset of the first byte written (default 0). */
  start?: number;
  /** OPEN flags (default FXF_WRITE | FXF_CREAT | FXF_TRUNC). */
  flags?: number;
  attrs?: FileAttributes;
  requests?: number;
  /** Close the remote file when the stream finishes or is destroyed (default true). */
  autoClose?: boolean;
}

/** Opens `path` (or takes an open file) for a stream's `construct`. */
function opened(
  client: FileTransferClient,
  path: PathLike | ClientFile,
  flags: number,
  attrs: FileAttributes,
  set: (f: ClientFile) => void,
  cb: (e?: Error | null) => void,
): void {
  if (typeof path !== "string" && !(path instanceof Uint8Array)) {
    set(path);
    return cb();
  }
  client.openFile(path, flags, attrs).then(
    (f) => {
      set(f);
      cb();
    },
    (e: unknown) => cb(e as Error),
  );
}

/** Closes `f` (if any, ignoring a failure: the stream's own error is what counts), then `then`. */
function closeThen(f: ClientFile | undefined, then: () => void): void {
  if (f === undefined) return then();
  f.close().then(then, then);
}

/** A Readable over `path` on `client` (the file is opened when the stream starts). */
export function createReadStream(client: FileTransferClient, path: PathLike | ClientFile, options: RemoteReadStreamOptions = {}): Readable {
  const chunkSize = options.chunkSize ?? TRANSFER_CHUNK_SIZE;
  const requests = options.requests ?? TRANSFER_REQUESTS;
  const limit = options.end === undefined ? Number.POSITIVE_INFINITY : options.end + 1;
  let file: ClientFile | undefined;
  let next = options.start ?? 0;
  let delivered = next;
  let inflight = 0;
  let wanting = false;
  const ready = new Map<number, Uint8Array>();

  const stream: Readable = new Readable({
    highWaterMark: chunkSize * 4,
    construct(cb) {
      opened(client, path, FXF_READ, {}, (f) => (file = f), cb);
    },
    read() {
      wanting = true;
      issue();
    },
    destroy(err, cb) {
      const f = file;
      file = undefined;
      closeThen(options.autoClose === false ? undefined : f, () => cb(err));
    },
  });

  let endAt = limit;
  let ended = false;

  /** Pushes what has arrived, in offset order, and ends the stream at the end. */
  const deliver = (): void => {
    for (;;) {
      const data = ready.get(delivered);
      if (data === undefined) break;
      ready.delete(delivered);
      delivered += data.length;
      if (!stream.push(data)) wanting = false;
    }
    if (!ended && delivered >= endAt) {
      ended = true;
      stream.push(null);
    }
  };

  const request = (off: number, len: number): void => {
    inflight++;
    file!.readChunk(off, len).then(
      (data) => {
        inflight--;
        if (stream.destroyed || ended) return;
        if (data.length === 0) endAt = Math.min(endAt, off);
        else {
          ready.set(off, data);
          // A short read (a server that caps READ): ask for the rest; later data waits for it.
          if (data.length < len) request(off + data.length, len - data.length);
        }
        deliver();
        issue();
      },
      (e: unknown) => {
        inflight--;
        // Replies to READs still in flight after the end (ones past EOF) or after the consumer
        // destroyed the stream do not matter.
        if (stream.destroyed || ended) return;
        if (e instanceof SFTPError && e.code === FX_EOF) {
          endAt = Math.min(endAt, off);
          deliver();
        } else stream.destroy(e as Error);
      },
    );
  };

  const issue = (): void => {
    while (wanting && inflight < requests && next < endAt && file !== undefined && !stream.destroyed) {
      const off = next;
      const len = Math.min(chunkSize, endAt - off);
      next += len;
      request(off, len);
    }
    deliver();
  };
  return stream;
}

/** A Writable onto `path` on `client` (opened when the stream starts). */
export function createWriteStream(client: FileTransferClient, path: PathLike | ClientFile, options: RemoteWriteStreamOptions = {}): Writable {
  const requests = options.requests ?? TRANSFER_REQUESTS;
  let file: ClientFile | undefined;
  let offset = options.start ?? 0;
  let inflight = 0;
  let failed: Error | undefined;
  let waiting: (() => void) | undefined;
  let drained: (() => void) | undefined;

  const done = (): void => {
    inflight--;
    const w = waiting;
    waiting = undefined;
    w?.();
    if (inflight === 0) drained?.();
  };

  return new Writable({
    highWaterMark: TRANSFER_CHUNK_SIZE * 4,
    construct(cb) {
      opened(client, path, options.flags ?? FXF_WRITE | FXF_CREAT | FXF_TRUNC, options.attrs ?? {}, (f) => (file = f), cb);
    },
    write(chunk: Buffer, _encoding, cb) {
      if (failed !== undefined) return cb(failed);
      const off = offset;
      offset += chunk.length;
      inflight++;
      file!.writeChunk(off, chunk).then(done, (e: unknown) => {
        failed ??= e as Error;
        done();
      });
      // Up to `requests` WRITEs in flight; the next write waits for one to finish.
      if (inflight < requests) cb();
      else waiting = () => cb(failed);
    },
    final(cb) {
      const finish = (): void => {
        if (failed !== undefined) return cb(failed);
        if (options.autoClose === false) return cb();
        const f = file!;
        file = undefined;
        f.close().then(
          () => cb(),
          (e: unknown) => cb(e as Error),
        );
      };
      if (inflight === 0) finish();
      else drained = finish;
    },
    destroy(err, cb) {
      const f = file;
      file = undefined;
      closeThen(options.autoClose === false ? undefined : f, () => cb(err));
    },
  });
}
