#!/usr/bin/env node
/**
 * `sftp-server`: SFTP over standard input and output, as OpenSSH's `sftp-server`, for an SSH
 * server to run as the logged-in user (the Unix realm runs subsystem commands with the user's
 * uid, gid and groups, so files are opened as that user).
 *
 *     sftp-server [-d start_directory] [--root folder] [-e] [-l level]
 *
 * `-d` sets the start directory ("." of the session); `--root` confines the session to a folder
 * (the client sees it as "/"); `-e` logs to standard error at `-l` level (default info).
 * {@link serve} is the whole program over any streams, so tests run it in process.
 */
import { createReadStream, fstatSync } from "node:fs";
import { Socket, type OnReadOpts, type SocketConstructorOpts } from "node:net";
import type { Readable, Writable } from "node:stream";
import type { IAddress, IPushProducer, ITransport } from "@twisted-ts/internet/interfaces";
import { ConnectionDone } from "@twisted-ts/internet/error";
import { Failure } from "@twisted-ts/internet/failure";
import { addObserver, textFileLogObserver, type LogLevel } from "@twisted-ts/internet/log";
import { isMainModule, walkArgs } from "./_bin.js";
import { FileTransferServer, type FileTransferServerOptions } from "../ssh/_filetransfer/server.js";
import { FilesystemSFTPServer, type FilesystemSFTPServerOptions } from "../ssh/_filetransfer/fsserver.js";

const ADDRESS: IAddress = { type: "UNIX", family: "UNIX", name: null, host: "", port: 0 } as unknown as IAddress;

/**
 * A transport over a pair of streams: writes go to `output` (the producer is paused while it is
 * full), and the protocol pauses `input` through `pauseProducing`.
 */
export class StreamTransport implements ITransport {
  disconnecting = false;
  private producer: IPushProducer | undefined = undefined;
  private waitingDrain = false;
  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.output.uncork();
  };

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
    /** Called once, when the protocol closes the transport. */
    private readonly onLost: () => void = () => undefined,
  ) {}

  write(data: Uint8Array | string, written?: () => void): void {
    if (this.disconnecting) return;
    // Replies made in one turn of the event loop (a STATUS per WRITE, DATA per READ) go out in one
    // writev rather than a system call (and a wake-up of the client) each.
    if (!this.corked) {
      this.corked = true;
      this.output.cork();
      setImmediate(this.uncork);
    }
    if (!this.output.write(data, written) && !this.waitingDrain && this.producer !== undefined) {
      this.waitingDrain = true;
      this.producer.pauseProducing();
      this.output.once("drain", () => {
        this.waitingDrain = false;
        this.producer?.resumeProducing();
      });
    }
  }
  writeSequence(seq: Iterable<Uint8Array | string>): void {
    for (const d of seq) this.write(d);
  }
  /** `release` runs once `data` is out (in the pipe), or at once if nothing will be written. */
  writeAndRelease(data: Uint8Array, release: () => void): void {
    if (this.disconnecting) release();
    else this.write(data, release);
  }
  loseConnection(): void {
    if (this.disconnecting) return;
    this.disconnecting = true;
    this.input.pause();
    this.output.end();
    this.onLost();
  }
  abortConnection(): void {
    this.loseConnection();
  }
  getPeer(): IAddress {
    return ADDRESS;
  }
  getHost(): IAddress {
    return ADDRESS;
  }
  registerProducer(producer: IPushProducer, _streaming: boolean): void {
    this.producer = producer;
  }
  unregisterProducer(): void {
    this.producer = undefined;
  }
  pauseProducing(): void {
    this.input.pause();
  }
  resumeProducing(): void {
    this.input.resume();
  }
  stopProducing(): void {
    this.loseConnection();
  }
}

export interface ServeOptions extends FileTransferServerOptions, FilesystemSFTPServerOptions {}

/**
 * The bin's `maxConcurrentReads`. Its file reads are blocking, so overlapping READs saves no
 * waiting; it only decides how many replies are made before they go out together: 4 (1 MiB of
 * OpenSSH's READs) keeps the client busier than the server's default 16 (4 MiB), and fewer buffers
 * in use (`sftp -D` get of 1 GiB, medians of 5 interleaved runs: wall 1.49 -> 1.28 s, server
 * system CPU 0.39 -> 0.33 s).
 */
export const BIN_CONCURRENT_READS = 4;

/** Most bytes one read of an input file descriptor takes (into one buffer, reused for every read). */
export const INPUT_BUFFER_SIZE = 256 * 1024;

/**
 * A stream over file descriptor `fd` that hands each read to `onData` (a view valid only during
 * the call). A pipe or socket (what sshd gives a subsystem) is read into one reused buffer of
 * {@link INPUT_BUFFER_SIZE}, not a fresh 64 KiB buffer per read as `process.stdin` allocates; a
 * file or terminal through a plain read stream.
 */
function inputFromFd(fd: number, onData: (chunk: Uint8Array) => void): Readable {
  const st = fstatSync(fd);
  if (!st.isFIFO() && !st.isSocket()) {
    const stream = createReadStream("", { fd, autoClose: false, highWaterMark: INPUT_BUFFER_SIZE });
    stream.on("data", (chunk) => onData(chunk as Buffer));
    return stream;
  }
  const onread: OnReadOpts = {
    buffer: Buffer.allocUnsafeSlow(INPUT_BUFFER_SIZE),
    callback: (n, buf) => {
      onData(buf.subarray(0, n));
      return true;
    },
  };
  // Node's Socket constructor takes `onread` as `connect` does; its typings list it for `connect` only.
  return new Socket({ fd, readable: true, writable: false, onread } as SocketConstructorOpts);
}

/**
 * Serves one SFTP session over `input`/`output`; `input` may be a file descriptor to read (the
 * bin's standard input, 0). At the end of the input the requests already received are answered,
 * then it resolves (as OpenSSH's sftp-server exits at EOF). If `output` fails (the client went
 * away: EPIPE), the session ends (its files are closed) and it rejects with that error.
 */
export function serve(input: Readable | number, output: Writable, options: ServeOptions = {}): Promise<void> {
  const server = new FileTransferServer(new FilesystemSFTPServer(options), options);
  return new Promise((resolve, reject) => {
    let ended = false;
    let outputError: Error | undefined;
    const end = (): void => {
      if (ended) return;
      ended = true;
      server.connectionLost(new Failure(outputError ?? new ConnectionDone("the input ended")));
      if (outputError === undefined) resolve();
      else reject(outputError);
    };
    if (typeof input === "number") input = inputFromFd(input, (chunk) => server.dataReceived(chunk));
    else input.on("data", (chunk: Buffer) => server.dataReceived(chunk));
    const transport = new StreamTransport(input, output, end);
    input.once("end", () => server.readConnectionLost());
    input.once("error", end);
    output.once("error", (e: Error) => {
      outputError = e;
      transport.loseConnection();
      end();
    });
    server.makeConnection(transport);
  });
}

const USAGE = "usage: sftp-server [-d start_directory] [--root folder] [-e] [-l level]\n";

/** Parses `argv` and serves `io.stdin` (default: file descriptor 0) and `io.stdout`; returns the exit status. */
export async function main(
  argv: readonly string[],
  io: { stdin: Readable | number; stdout: Writable; stderr: Writable } = { stdin: 0, stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  // One process per session, as OpenSSH's sftp-server: blocking file I/O stalls no one else.
  const options: ServeOptions = { blockingIO: true, maxConcurrentReads: BIN_CONCURRENT_READS };
  let logToStderr = false;
  let level: LogLevel = "info";
  let help = false;
  try {
    walkArgs(argv, (a, value) => {
      if (a === "-d") options.home = value();
      else if (a === "--root") options.root = value();
      else if (a === "-e") logToStderr = true;
      else if (a === "-l") level = value().toLowerCase() as LogLevel;
      else if (a === "-h" || a === "--help") help = true;
      else throw new Error(`unknown option ${a}`);
    });
  } catch (e) {
    io.stderr.write(`sftp-server: ${(e as Error).message}\n${USAGE}`);
    return 1;
  }
  if (help) {
    io.stdout.write(USAGE);
    return 0;
  }
  if (logToStderr) addObserver(textFileLogObserver({ write: (t: string) => void io.stderr.write(t) }, level));
  try {
    await serve(io.stdin, io.stdout, options);
  } catch (e) {
    io.stderr.write(`sftp-server: ${(e as Error).message}\n`);
    return 1;
  }
  return 0;
}

if (isMainModule(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
      // Files are closed at the end of the session; nothing else is left to wait for.
      process.stdout.end(() => process.exit(code));
    },
    (e: unknown) => {
      process.stderr.write(`sftp-server: ${(e as Error).stack ?? String(e)}\n`);
      process.exit(2);
    },
  );
}
