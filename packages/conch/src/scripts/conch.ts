#!/usr/bin/env node
/**
 * `conch`, Twisted Conch's ssh client (`twisted.conch.scripts.conch`):
 *
 *     conch [-v] [-p port] [-i key] [-l user] [-L spec] [-R spec] [-D port] [-J jump] [-A] [-N] [-t|-T]
 *           [-o option=value] [user@]host [command]
 *
 * Host keys are checked against `~/.ssh/known_hosts` (`-o UserKnownHostsFile=…`,
 * `-o StrictHostKeyChecking=yes|accept-new|no|ask`); the user's keys are the agent's
 * (`SSH_AUTH_SOCK`), then `-i` or `~/.ssh/id_*`, then password and keyboard-interactive on a terminal (client/default). `-J` goes through a
 * comma-separated chain of jump hosts (client/endpoints' SSHDirectTCPIPClientEndpoint). A
 * keepalive is on by default (`ServerAliveInterval` 30 s, see {@link DEFAULT_SERVER_ALIVE_INTERVAL}).
 *
 * The remote command's exit status becomes conch's own; a connection or authentication error,
 * or a session that ends without a status, gives 255, as ssh. Standard input, output and error are
 * relayed with back-pressure. With `-t`, or with a terminal and no command, a pty is requested with
 * `TERM` and the window size, the local terminal goes to raw mode (restored on exit) and window
 * changes follow SIGWINCH.
 */
import type { Readable, Writable } from "node:stream";
import type { ReadStream, WriteStream } from "node:tty";
import { userInfo } from "node:os";
import { Deferred } from "@twisted-ts/internet/defer";
import { TCP4ClientEndpoint, UNIXClientEndpoint } from "@twisted-ts/internet/endpoints";
import type { IStreamClientEndpoint } from "@twisted-ts/internet/interfaces";
import { addObserver, removeObserver, textFileLogObserver } from "@twisted-ts/internet/log";
import { reactor } from "@twisted-ts/internet/reactor";
import { defaultIdentities, terminalUI } from "../client/default.js";
import { connect, type SSHClientTransport } from "../client/direct.js";
import { type NewConnectionOptions, SSHDirectTCPIPClientEndpoint } from "../client/endpoints.js";
import { HostKeyChanged, HostKeyNotVerifiableError } from "../error.js";
import { SSHChannel } from "../ssh/channel.js";
import { NS } from "../ssh/common.js";
import { SSHConnection } from "../ssh/connection.js";
import { packRequest_pty_req, packRequest_window_change, parseRequest_exit_status } from "../ssh/_session/requests.js";
import { isMainModule } from "./_bin.js";
import { type ConchOptions, parseArgs, UsageError } from "./_conch_args.js";
import { setUpForwards, wantsForwards } from "./_conch_forwards.js";
import { requestAgentForwarding } from "../client/agent.js";

export {
  applyOption,
  DEFAULT_SERVER_ALIVE_COUNT_MAX,
  DEFAULT_SERVER_ALIVE_INTERVAL,
  parseArgs,
  parseDynamicSpec,
  parseForwardSpec,
  parseJumpChain,
  parseJumpHost,
  UsageError,
  type ConchOptions,
  type ConnectSpec,
  type DynamicForwardSpec,
  type JumpHost,
  type ListenSpec,
  type LocalForwardSpec,
  type RemoteForwardSpec,
  type RequestTTY,
} from "./_conch_args.js";
export { ForwardingNotSupported, setUpForwards } from "./_conch_forwards.js";

/** The exit status of ssh for a connection or authentication error. */
export const EXIT_CONNECTION_ERROR = 255;

const USAGE =
  "usage: conch [-ANTtv] [-D [bind_address:]port] [-i identity_file] [-J destination] [-L spec] [-l login_name]\n" +
  "             [-o option] [-p port] [-R spec] [user@]host [command]\n";

/** Where conch reads and writes (the process's streams by default). */
export interface IO {
  stdin: Readable & Partial<Pick<ReadStream, "isTTY" | "setRawMode">>;
  stdout: Writable & Partial<Pick<WriteStream, "isTTY" | "columns" | "rows">>;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
}

/** True when a pty is wanted: `-t`/`-tt`, or no command and standard input a terminal (as ssh). */
export function wantsPty(o: ConchOptions, stdinIsTTY: boolean): boolean {
  if (o.noCommand || o.requestTTY === "no") return false;
  if (o.requestTTY === "force") return true;
  if (o.requestTTY === "yes") return stdinIsTTY;
  return o.command === undefined && stdinIsTTY;
}

/**
 * The session channel: runs the command (or a shell) and relays the process's streams. `done`
 * fires with the exit status (255 when the server sent none).
 */
class ConchSession extends SSHChannel {
  override name = "session";
  readonly done = new Deferred<number>();
  private status: number | undefined = undefined;
  private cleanups: Array<() => void> = [];

  constructor(
    private readonly o: ConchOptions,
    private readonly io: IO,
    private readonly pty: boolean,
  ) {
    super();
  }

  override channelOpen(_specificData: Uint8Array): void {
    const conn = this.conn;
    if (this.o.forwardAgent) requestAgentForwarding(this).addErrback(() => void this.io.stderr.write("Agent forwarding request failed on channel 0\n"));
    if (this.pty) {
      const geometry = [this.io.stdout.rows ?? 24, this.io.stdout.columns ?? 80, 0, 0] as const;
      conn
        .sendRequest(this, "pty-req", packRequest_pty_req(this.io.env["TERM"] ?? "vt100", geometry), true)
        .addErrback(() => void this.io.stderr.write("PTY allocation request failed on channel 0\r\n"));
    }
    const started = this.o.command !== undefined ? conn.sendRequest(this, "exec", NS(this.o.command), true) : conn.sendRequest(this, "shell", new Uint8Array(0), true);
    started.addCallbacks(
      () => this.relay(),
      () => {
        this.io.stderr.write(`${this.o.command !== undefined ? "exec" : "shell"} request failed on channel 0\n`);
        this.loseConnection();
      },
    );
  }

  /** Standard input to the channel (paused while the peer's window is full), window changes after SIGWINCH. */
  private relay(): void {
    const { stdin, stdout } = this.io;
    if (this.pty && stdin.isTTY === true && stdin.setRawMode !== undefined) {
      stdin.setRawMode(true);
      this.cleanups.push(() => stdin.setRawMode?.(false));
    }
    const onData = (chunk: Buffer): void => this.write(chunk);
    const onEnd = (): void => {
      if (!this.localClosed) this.loseWriteConnection();
    };
    stdin.on("data", onData);
    stdin.on("end", onEnd);
    this.cleanups.push(() => {
      stdin.removeListener("data", onData);
      stdin.removeListener("end", onEnd);
      stdin.pause();
    });
    this.registerProducer({ pauseProducing: () => stdin.pause(), resumeProducing: () => stdin.resume(), stopProducing: () => stdin.pause() }, true);
    stdin.resume();
    if (this.pty) {
      const onResize = (): void => {
        if (this.localClosed) return;
        this.conn.sendRequest(this, "window-change", packRequest_window_change([stdout.rows ?? 24, stdout.columns ?? 80, 0, 0]));
      };
      stdout.on("resize", onResize);
      this.cleanups.push(() => stdout.removeListener("resize", onResize));
    }
  }

  override dataReceived(data: Uint8Array): void {
    this.out(this.io.stdout, data);
  }

  override extReceived(_dataType: number, data: Uint8Array): void {
    this.out(this.io.stderr, data);
  }

  /** Writes to a local stream; when it is full, the channel stops giving window back until it drains. */
  private out(stream: Writable, data: Uint8Array): void {
    if (!stream.write(data)) {
      this.pauseProducing();
      stream.once("drain", () => this.resumeProducing());
    }
  }

  override eofReceived(): void {}

  /** RFC 4254 §6.10 `uint32 exit_status`: becomes conch's own. */
  request_exit_status(data: Uint8Array): boolean {
    this.status = parseRequest_exit_status(data);
    return true;
  }

  /** RFC 4254 §6.10: killed by a signal; ssh exits with 255 then. */
  request_exit_signal(_data: Uint8Array): boolean {
    return true;
  }

  /** Puts the terminal and streams back as they were. */
  restore(): void {
    for (const c of this.cleanups.splice(0).reverse()) c();
  }

  override closed(): void {
    this.restore();
    if (!this.done.called) this.done.callback(this.status ?? EXIT_CONNECTION_ERROR);
  }
}

/** The endpoint to the target: TCP, or through each `-J` hop in turn. */
function targetEndpoint(o: ConchOptions, common: Omit<NewConnectionOptions, "port" | "endpoint">): IStreamClientEndpoint {
  const first = o.jumps[0];
  if (first === undefined) return new TCP4ClientEndpoint(reactor, o.host, o.port);
  let ep: IStreamClientEndpoint = new TCP4ClientEndpoint(reactor, first.host, first.port);
  const localUser = userInfo().username;
  o.jumps.forEach((hop, k) => {
    const next = o.jumps[k + 1] ?? { host: o.host, port: o.port };
    ep = SSHDirectTCPIPClientEndpoint.newConnection(reactor, hop.user ?? localUser, hop.host, next.host, next.port, {
      ...common,
      port: hop.port,
      endpoint: ep,
    });
  });
  return ep;
}

function describe(e: unknown): string {
  if (e instanceof HostKeyChanged || e instanceof HostKeyNotVerifiableError) return e.message;
  return `conch: ${e instanceof Error ? e.message : String(e)}`;
}

/** Connects, runs the session and returns the exit status. */
async function run(o: ConchOptions, io: IO): Promise<number> {
  const ui = o.batchMode ? undefined : terminalUI();
  const common = {
    knownHosts: o.knownHosts,
    policy: o.policy,
    identities: o.identities.length > 0 ? o.identities : defaultIdentities(io.env["HOME"] ?? ""),
    keepaliveInterval: o.serverAliveInterval,
    keepaliveCountMax: o.serverAliveCountMax,
    ...(ui !== undefined ? { ui } : {}),
    ...(o.identityAgent !== undefined ? { agentEndpoint: new UNIXClientEndpoint(reactor, o.identityAgent) } : {}),
  };
  const lost = new Deferred<void>();
  class ConchConnection extends SSHConnection {
    override serviceStopped(): void {
      super.serviceStopped();
      if (!lost.called) lost.callback(undefined);
    }
  }
  let conn: SSHConnection;
  try {
    conn = await connect(targetEndpoint(o, common), { ...common, user: o.user, hostname: o.host, port: o.port, makeConnection: () => new ConchConnection() });
  } catch (e) {
    io.stderr.write(`${describe(e)}\n`);
    return EXIT_CONNECTION_ERROR;
  }
  const transport = conn.transport as SSHClientTransport;
  const lostMessage = (): string => {
    const reason = transport.disconnectReason;
    if (reason !== undefined && !reason.byPeer && /Timeout/.test(reason.description)) return `Timeout, server ${o.host} not responding.`;
    return `Connection to ${o.host} closed by remote host.`;
  };
  try {
    if (wantsForwards(o)) await setUpForwards(conn, o, io);
  } catch (e) {
    io.stderr.write(`${describe(e)}\n`);
    transport.loseConnection();
    return EXIT_CONNECTION_ERROR;
  }
  if (o.noCommand) {
    await lost;
    io.stderr.write(`${lostMessage()}\n`);
    return EXIT_CONNECTION_ERROR;
  }
  const stdinIsTTY = io.stdin.isTTY === true;
  if (o.requestTTY === "yes" && !stdinIsTTY) io.stderr.write("Pseudo-terminal will not be allocated because stdin is not a terminal.\n");
  const session = new ConchSession(o, io, wantsPty(o, stdinIsTTY));
  conn.openChannel(session);
  const ended = new Deferred<number>();
  session.done.addCallback((status: number) => void (ended.called || ended.callback(status)));
  lost.addCallback(() => {
    session.restore();
    if (ended.called) return;
    io.stderr.write(`${lostMessage()}\n`);
    ended.callback(EXIT_CONNECTION_ERROR);
  });
  const status = await ended;
  transport.loseConnection();
  // Everything the command wrote reaches our stdout and stderr before the status is given.
  await Promise.all([io.stdout, io.stderr].map((stream) => new Promise<void>((resolve) => stream.write("", () => resolve()))));
  return status;
}

/** The whole program; returns the exit status. */
export async function main(argv: readonly string[], io: IO): Promise<number> {
  if (argv.includes("-h") || argv.includes("--help")) {
    io.stdout.write(USAGE);
    return 0;
  }
  let o: ConchOptions;
  try {
    o = parseArgs(argv, io.env);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.stderr.write(`conch: ${e.message}\n${USAGE}`);
    return EXIT_CONNECTION_ERROR;
  }
  // -v: our log on standard error (secrets never reach the log).
  const observer = o.verbose > 0 ? textFileLogObserver(io.stderr, o.verbose > 1 ? "debug" : "info") : undefined;
  if (observer !== undefined) addObserver(observer);
  try {
    return await run(o, io);
  } finally {
    if (observer !== undefined) removeObserver(observer);
  }
}

if (isMainModule(import.meta.url)) {
  const io: IO = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env };
  // The terminal goes back to cooked mode however conch ends.
  process.on("exit", () => {
    if (process.stdin.isTTY) process.stdin.setRawMode(false);
  });
  main(process.argv.slice(2), io).then(
    (code) => process.stdout.write("", () => process.exit(code)),
    (e: unknown) => {
      process.stderr.write(`conch: ${(e as Error).stack ?? String(e)}\n`);
      process.exit(EXIT_CONNECTION_ERROR);
    },
  );
}

