/**
 * `twisted.conch.unix`: a realm whose users get real Unix sessions, plus an in-process realm for
 * applications that serve their own shell and commands.
 *
 * {@link UnixSSHRealm} / {@link UnixConchUser}: `exec` runs `<shell> -c <command>` through
 * `reactor.spawnProcess` (stdout → data, stderr → extended data, the real exit code or signal);
 * `shell` runs the user's login shell. A command that does not exist gives exit status 127, as
 * the shell says. A pty (`pty-req`) needs the optional `node-pty` package: when it cannot be
 * imported the request is refused with a clear log line and the client carries on without a
 * terminal (OpenSSH's `ssh` does). The server runs commands as the user only when it runs as root
 * (uid/gid of the user's passwd entry); otherwise every session runs as the server's own user.
 *
 * {@link InProcessConchUser} / {@link InProcessRealm}: sessions served by Protocols in this
 * process — no processes, no pty needed.
 */
import { accessSync, constants as fsConstants, readFileSync } from "node:fs";
import { userInfo } from "node:os";
import { basename } from "node:path";
import { ProcessDone, ProcessTerminated, ProcessExitedAlready } from "@twisted-ts/internet/error";
import { Failure } from "@twisted-ts/internet/failure";
import type {
  IAddress,
  IProcessProtocol,
  IProcessTransport,
  IProducer,
  IPushProducer,
  IPullProducer,
  IProtocol,
  IListeningPort,
  IReactorProcess,
  IReactorTCP,
} from "@twisted-ts/internet/interfaces";
import { Logger } from "@twisted-ts/internet/log";
import type { AvatarId } from "@twisted-ts/cred/checkers";
import type { IRealm, LoginResult } from "@twisted-ts/cred/portal";
import type { InterfaceToken } from "@twisted-ts/cred/interfaces";
import {
  ConchUser,
  EnvironmentVariableNotPermitted,
  type ISession,
  type ISessionProvider,
  type TerminalModes,
  type WindowSize,
} from "./avatar.js";
import type { SSHChannel } from "./ssh/channel.js";
import type { GlobalRequestResult } from "./ssh/connection.js";
import {
  SSHListenForwardingFactory,
  SSHListenServerForwardingChannel,
  forwardingReactor,
  openConnectForwardingClient,
  unpackGlobal_tcpip_forward,
} from "./ssh/forwarding.js";
import { SSHSession, signalName, wrapProtocol, type SSHSessionProcessProtocol } from "./ssh/session.js";

const log = new Logger("twisted-ts.conch.unix");

/** Exit status of a command that could not be found or run (POSIX shells use 127). */
export const EXIT_COMMAND_NOT_FOUND = 127;

/** Environment variables a client may never set (they change how programs load or run). */
export const FORBIDDEN_ENV = /^(LD_|DYLD_)|^(PATH|HOME|USER|LOGNAME|SHELL|MAIL|IFS|ENV|BASH_ENV|NODE_OPTIONS|PYTHONSTARTUP|PYTHONPATH|PERL5LIB|PERL5OPT|RUBYOPT|SSH_[A-Z_]*)$/;

// ---- node-pty, optional ----------------------------------------------------------------------------

/** The part of node-pty's API used here. */
interface PtyProcess {
  readonly pid: number;
  onData(cb: (data: string | Uint8Array) => void): unknown;
  onExit(cb: (e: { exitCode: number; signal?: number }) => void): unknown;
  write(data: string | Buffer): void;
  resize(cols: number, rows: number): void;
  kill(signal?: string): void;
}
interface PtyModule {
  spawn(file: string, args: string[], options: { name: string; cols: number; rows: number; cwd: string; env: Record<string, string>; encoding?: null }): PtyProcess;
}

let ptyModule: PtyModule | undefined;
let ptyProbe: Promise<PtyModule | undefined> | undefined;

/** Imports `node-pty` once (it is optional: not a dependency). Resolves undefined without it. */
export function loadNodePty(): Promise<PtyModule | undefined> {
  if (ptyProbe === undefined) {
    const name = "node-pty";
    ptyProbe = (import(name) as Promise<{ default?: PtyModule } & Partial<PtyModule>>).then(
      (m) => (ptyModule = typeof m.spawn === "function" ? (m as PtyModule) : m.default),
      () => undefined,
    );
  }
  return ptyProbe;
}
void loadNodePty();

/** True when `node-pty` has been loaded, so pty requests can be granted. */
export function ptyAvailable(): boolean {
  return ptyModule !== undefined;
}

// ---- users ---------------------------------------------------------------------------------------

/** One /etc/passwd entry. */
export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

/** The passwd entry of `username`, from /etc/passwd, or undefined. */
export function getpwnam(username: string): PasswdEntry | undefined {
  let text: string;
  try {
    text = readFileSync("/etc/passwd", "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length >= 7 && f[0] === username) {
      return { name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? "/", shell: f[6] || "/bin/sh" };
    }
  }
  return undefined;
}

function executable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

let defaultReactor: IReactorProcess | undefined;
async function reactorFor(r: IReactorProcess | undefined): Promise<IReactorProcess> {
  if (r !== undefined) return r;
  if (defaultReactor === undefined) defaultReactor = (await import("@twisted-ts/internet/reactor")).reactor;
  return defaultReactor;
}

/** Options of the Unix realm and its users. */
export interface UnixRealmOptions {
  /** Where processes are spawned and forwarded ports listen (default: the global reactor). */
  reactor?: IReactorProcess & IReactorTCP;
  /**
   * Remote forwarding (`tcpip-forward`) binds the address the client names, as OpenSSH's
   * `GatewayPorts yes`; by default it binds loopback only.
   */
  gatewayPorts?: boolean;
  /** Give sessions terminals on pty-req (needs node-pty); false refuses every pty-req. Default true. */
  pty?: boolean;
  /** Allow port forwarding (`direct-tcpip` channels and `tcpip-forward`); default true. */
  allowForwarding?: boolean;
  /**
   * Variables every session starts with, after the defaults (OpenSSH's `SetEnv`). `{ SHLVL: "1" }`
   * keeps bash from sourcing `~/.bashrc` for commands, as it otherwise does when `SSH_CLIENT` is set.
   */
  env?: Readonly<Record<string, string>>;
  /** Decides which environment variables clients may set (default: all but {@link FORBIDDEN_ENV}). */
  acceptEnv?: (name: string) => boolean;
}

/** Twisted's `UnixSSHRealm`: every login gets a {@link UnixConchUser}. */
export class UnixSSHRealm implements IRealm {
  constructor(readonly options: UnixRealmOptions = {}) {}

  requestAvatar(avatarId: AvatarId, _mind: unknown, ...interfaces: InterfaceToken<unknown>[]): LoginResult<unknown> {
    const name = typeof avatarId === "string" ? avatarId : avatarId instanceof Uint8Array ? Buffer.from(avatarId).toString("utf8") : "anonymous";
    const user = new UnixConchUser(name, this.options);
    return [interfaces[0]!, user, () => user.logout()];
  }
}

/** Twisted's `UnixConchUser`: session channels that run real processes. */
export class UnixConchUser extends ConchUser implements ISessionProvider {
  readonly username: string;
  /** The user's passwd entry, or the server's own user when the name is not in /etc/passwd. */
  readonly pwd: PasswdEntry;
  readonly options: UnixRealmOptions;
  private readonly sessions = new Set<UnixSession>();
  /** Remote-forwarding listeners by "host:port" as the client asked. */
  readonly listeners = new Map<string, IListeningPort>();

  constructor(username: string, options: UnixRealmOptions = {}) {
    super();
    this.username = username;
    this.options = options;
    const me = userInfo();
    this.pwd = getpwnam(username) ?? { name: username, uid: me.uid, gid: me.gid, home: me.homedir, shell: me.shell ?? "/bin/sh" };
    this.channelLookup["session"] = SSHSession;
    if (options.allowForwarding !== false) this.channelLookup["direct-tcpip"] = openConnectForwardingClient;
  }

  /**
   * RFC 4254 §7.1 `tcpip-forward`: listen and open a `forwarded-tcpip` channel back for each
   * connection; port 0 picks a free port, sent back in the reply.
   */
  global_tcpip_forward(data: Uint8Array): GlobalRequestResult {
    if (this.options.allowForwarding === false || this.conn === undefined) return false;
    const conn = this.conn;
    const [host, port] = unpackGlobal_tcpip_forward(data);
    const bindHost = this.options.gatewayPorts === true && host !== "localhost" ? (host === "" ? "0.0.0.0" : host) : "127.0.0.1";
    return forwardingReactor(this.options.reactor).then(async (reactor) => {
      const factory = new SSHListenForwardingFactory(conn, [host, port], SSHListenServerForwardingChannel);
      let listener: IListeningPort;
      try {
        listener = reactor.listenTCP(port, factory, 50, bindHost);
        const ready = (listener as IListeningPort & { whenListening?: () => PromiseLike<unknown> }).whenListening?.();
        if (ready !== undefined) await ready;
      } catch (e) {
        log.failure("tcpip-forward {host}:{port} failed", e, "warn", { host, port });
        return false;
      }
      const bound = listener.getHost().port;
      // Clients match forwarded-tcpip opens by the port actually bound (RFC 4254 §7.1).
      if (port === 0) factory.hostport = [host, bound];
      this.listeners.set(`${host}:${port === 0 ? bound : port}`, listener);
      if (port !== 0) return true;
      const reply = new Uint8Array(4);
      new DataView(reply.buffer).setUint32(0, bound);
      return [true, reply] as const;
    });
  }

  /** RFC 4254 §7.1 `cancel-tcpip-forward`. */
  global_cancel_tcpip_forward(data: Uint8Array): GlobalRequestResult {
    const [host, port] = unpackGlobal_tcpip_forward(data);
    const listener = this.listeners.get(`${host}:${port}`);
    if (listener === undefined) return false;
    this.listeners.delete(`${host}:${port}`);
    void listener.stopListening();
    return true;
  }

  /** A new {@link UnixSession} for each session channel. */
  sessionFor(channel: SSHChannel): ISession {
    const s = new UnixSession(this, channel);
    this.sessions.add(s);
    return s;
  }

  /** The user's shell, or /bin/sh when it is missing or not executable. */
  getShell(): string {
    return this.pwd.shell && executable(this.pwd.shell) ? this.pwd.shell : "/bin/sh";
  }

  getHomeDir(): string {
    return this.pwd.home;
  }

  /** uid/gid to run as: the user's when the server runs as root, none (ourselves) otherwise. */
  getUserGroupId(): { uid?: number; gid?: number } {
    return process.getuid?.() === 0 ? { uid: this.pwd.uid, gid: this.pwd.gid } : {};
  }

  /** Called by the portal when the connection ends: ends what is still running. */
  logout(): void {
    for (const s of this.sessions) s.closed();
    this.sessions.clear();
    for (const l of this.listeners.values()) void l.stopListening();
    this.listeners.clear();
  }

  /** @internal */
  _sessionDone(s: UnixSession): void {
    this.sessions.delete(s);
  }
}

/**
 * Twisted's `SSHSessionForUnixConchUser`: the ISession of one channel, running the user's shell or
 * commands.
 */
export class UnixSession implements ISession {
  readonly env: Record<string, string>;
  /** The process (or pty) transport once something runs. */
  process: IProcessTransport | undefined = undefined;
  /** EOF arrived before the process was spawned (the reactor loads lazily): close stdin once it is. */
  private eofPending = false;
  term: string | undefined = undefined;
  winSize: WindowSize = [24, 80, 0, 0];
  modes: TerminalModes = [];
  private pty: PtyProcess | undefined = undefined;

  constructor(
    readonly avatar: UnixConchUser,
    readonly channel: SSHChannel,
  ) {
    this.env = {
      HOME: avatar.getHomeDir(),
      USER: avatar.username,
      LOGNAME: avatar.username,
      SHELL: avatar.getShell(),
      PATH: process.env["PATH"] ?? "/usr/local/bin:/usr/bin:/bin",
      ...avatar.options.env,
    };
    try {
      const peer = channel.getPeer();
      const host = channel.getHost();
      if ("port" in peer && "port" in host) this.env["SSH_CLIENT"] = `${peer.host} ${peer.port} ${host.port}`;
    } catch {
      // No transport addresses (tests): no SSH_CLIENT.
    }
  }

  getPty(term: string, windowSize: WindowSize, modes: TerminalModes): void {
    if (this.avatar.options.pty === false) {
      log.warn("pty-req refused: terminals are turned off for this realm");
      throw new Error("pty-req refused: terminals are turned off");
    }
    if (ptyModule === undefined) {
      log.warn("pty-req refused: the optional node-pty package is not installed (npm install node-pty to enable terminals)");
      throw new Error("pty-req refused: node-pty is not installed");
    }
    this.term = term;
    this.winSize = windowSize;
    this.modes = modes;
    this.env["TERM"] = term;
  }

  setEnv(name: string, value: string): void {
    const accept = this.avatar.options.acceptEnv ?? ((n: string) => !FORBIDDEN_ENV.test(n));
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || !accept(name)) throw new EnvironmentVariableNotPermitted(`${name} may not be set`);
    this.env[name] = value;
  }

  /** Server-set variables (SSH_ORIGINAL_COMMAND, `environment=`): trusted, so not filtered as setEnv is. */
  setServerEnv(name: string, value: string): void {
    this.env[name] = value;
  }

  openShell(proto: SSHSessionProcessProtocol): void {
    const shell = this.avatar.getShell();
    // A login shell, as sshd runs it: argv[0] starts with "-".
    this.spawn(proto, shell, [`-${basename(shell)}`], []);
  }

  execCommand(proto: SSHSessionProcessProtocol, command: string): void {
    const shell = this.avatar.getShell();
    this.spawn(proto, shell, [shell, "-c", command], ["-c", command]);
  }

  private spawn(proto: SSHSessionProcessProtocol, shell: string, args: string[], ptyArgs: string[]): void {
    const home = this.avatar.getHomeDir();
    const cwd = executable(home) ? home : "/";
    if (this.term !== undefined && ptyModule !== undefined) {
      const pty = ptyModule.spawn(shell, ptyArgs, {
        name: this.term,
        cols: this.winSize[1] || 80,
        rows: this.winSize[0] || 24,
        cwd,
        env: this.env,
        encoding: null,
      });
      this.pty = pty;
      const t = new PtyTransport(pty, proto);
      this.process = t;
      proto.makeConnection(t);
      return;
    }
    const { uid, gid } = this.avatar.getUserGroupId();
    // The reactor is loaded lazily so that importing this module never starts one; spawning waits
    // for it only the first time.
    const start = (reactor: IReactorProcess): void => {
      this.process = reactor.spawnProcess(proto, shell, args, {
        env: this.env,
        path: cwd,
        ...(uid !== undefined ? { uid } : {}),
        ...(gid !== undefined ? { gid } : {}),
      });
      if (this.eofPending) this.process.closeStdin();
    };
    if (this.avatar.options.reactor !== undefined) start(this.avatar.options.reactor);
    else if (defaultReactor !== undefined) start(defaultReactor);
    else {
      void reactorFor(undefined).then(start, (e: unknown) => {
        log.failure("cannot load the reactor to spawn {shell}", e, "error", { shell });
        proto.processEnded(new Failure(new ProcessTerminated(EXIT_COMMAND_NOT_FOUND)));
      });
    }
  }

  windowChanged(newWindowSize: WindowSize): void {
    this.winSize = newWindowSize;
    this.pty?.resize(newWindowSize[1] || 80, newWindowSize[0] || 24);
  }

  eofReceived(): void {
    // A pty has no separate stdin to close; the shell reads the user's ^D instead.
    if (this.pty !== undefined) return;
    if (this.process === undefined) this.eofPending = true;
    else this.process.closeStdin();
  }

  signal(name: string): void {
    if (this.process === undefined) throw new Error("nothing is running");
    this.process.signalProcess(name);
  }

  closed(): void {
    const p = this.process;
    this.process = undefined;
    this.avatar._sessionDone(this);
    if (p === undefined) return;
    try {
      p.signalProcess("HUP");
    } catch (e) {
      if (!(e instanceof ProcessExitedAlready)) log.failure("could not hang up", e, "warn");
    }
    p.loseConnection();
    log.info("shell closed");
  }
}

/** A node-pty process as an IProcessTransport: terminal output arrives as stdout. */
class PtyTransport implements IProcessTransport {
  private exited = false;

  constructor(
    private readonly pty: PtyProcess,
    private readonly proto: IProcessProtocol,
  ) {
    pty.onData((d) => proto.childDataReceived(1, typeof d === "string" ? Buffer.from(d, "utf8") : d));
    pty.onExit(({ exitCode, signal }) => {
      this.exited = true;
      proto.childConnectionLost(1);
      proto.childConnectionLost(2);
      const reason =
        signal !== undefined && signal !== 0
          ? new ProcessTerminated(null, `SIG${signalName(signal)}`)
          : exitCode === 0
            ? new ProcessDone(0)
            : new ProcessTerminated(exitCode);
      proto.processExited(new Failure(reason));
      proto.processEnded(new Failure(reason));
    });
  }
  get pid(): number | undefined {
    return this.exited ? undefined : this.pty.pid;
  }
  write(data: Uint8Array | string): void {
    if (!this.exited) this.pty.write(typeof data === "string" ? data : Buffer.from(data));
  }
  writeSequence(seq: Iterable<Uint8Array | string>): void {
    for (const d of seq) this.write(d);
  }
  writeToChild(_fd: number, data: Uint8Array | string): void {
    this.write(data);
  }
  closeStdin(): void {}
  closeStdout(): void {}
  closeStderr(): void {}
  closeChildFD(): void {}
  signalProcess(signal: string | number): void {
    if (this.exited) throw new ProcessExitedAlready();
    const s = typeof signal === "number" ? String(signal) : signal.toUpperCase();
    this.pty.kill(s.startsWith("SIG") || /^\d+$/.test(s) ? s : `SIG${s}`);
  }
  loseConnection(): void {
    if (!this.exited) this.pty.kill("SIGHUP");
  }
  registerProducer(_p: IPushProducer | IPullProducer, _streaming: boolean): void {}
  unregisterProducer(): void {}
  getPeer(): IAddress {
    return { type: "UNIX", family: "UNIX", name: null, host: "", port: 0 };
  }
  getHost(): IAddress {
    return this.getPeer();
  }
}

// ---- in-process sessions ---------------------------------------------------------------------------

/**
 * What an in-process shell or command runs as: a Protocol whose transport is the session's
 * {@link SSHSessionProcessProtocol} (`write`, `writeErr`, `exit(status)`, `loseConnection`).
 */
export type SessionProtocolFactory = (session: InProcessSession) => IProtocol;

/** A command: gets the words of the command line (argv[0] is the name). */
export type CommandFactory = (argv: string[], session: InProcessSession) => IProtocol;

/** Options of {@link InProcessConchUser}. */
export interface InProcessOptions {
  /** The interactive shell; without it, `shell` requests are refused. */
  shell?: SessionProtocolFactory;
  /** Commands by name (the first word of an exec line); others exit 127 "command not found". */
  commands?: Record<string, CommandFactory>;
  /** Accepts or refuses env requests (default: accept all but {@link FORBIDDEN_ENV}). */
  acceptEnv?: (name: string) => boolean;
  /** Whether pty-req is granted (default true: nothing real is allocated). */
  allowPty?: boolean;
}

/** The ISession of an in-process avatar: remembers pty, window and env for the protocols. */
export class InProcessSession implements ISession {
  term: string | undefined = undefined;
  winSize: WindowSize = [24, 80, 0, 0];
  modes: TerminalModes = [];
  readonly env: Record<string, string> = {};
  /** The protocol serving this session once a shell or command started. */
  protocol: IProtocol | undefined = undefined;
  /** Called with the new size on window-change. */
  onWindowChanged: ((size: WindowSize) => void) | undefined = undefined;

  constructor(
    readonly avatar: InProcessConchUser,
    readonly channel: SSHChannel,
  ) {}

  getPty(term: string, windowSize: WindowSize, modes: TerminalModes): void {
    if (this.avatar.options.allowPty === false) throw new Error("pty-req refused: this server has no terminals");
    this.term = term;
    this.winSize = windowSize;
    this.modes = modes;
  }

  setEnv(name: string, value: string): void {
    const accept = this.avatar.options.acceptEnv ?? ((n: string) => !FORBIDDEN_ENV.test(n));
    if (!accept(name)) throw new EnvironmentVariableNotPermitted(`${name} may not be set`);
    this.env[name] = value;
  }

  /** Server-set variables (SSH_ORIGINAL_COMMAND, `environment=`): trusted, so not filtered as setEnv is. */
  setServerEnv(name: string, value: string): void {
    this.env[name] = value;
  }

  openShell(proto: SSHSessionProcessProtocol): void {
    const shell = this.avatar.options.shell;
    if (shell === undefined) throw new Error("this server has no shell");
    this.run(proto, shell(this));
  }

  execCommand(proto: SSHSessionProcessProtocol, command: string): void {
    const argv = command.trim().split(/\s+/).filter((w) => w.length > 0);
    const name = argv[0] ?? "";
    const commands = this.avatar.options.commands ?? {};
    const factory = Object.hasOwn(commands, name) ? commands[name] : undefined;
    if (factory === undefined) {
      // As a shell would: a message on stderr and status 127. Sent once the channel has
      // confirmed the request, so the client sees SUCCESS first.
      proto.makeConnection(wrapProtocol(new NullProtocol()));
      proto.writeErr(`${name || "sh"}: command not found\n`);
      proto.exit(EXIT_COMMAND_NOT_FOUND);
      return;
    }
    this.run(proto, factory(argv, this));
  }

  private run(proto: SSHSessionProcessProtocol, p: IProtocol): void {
    this.protocol = p;
    p.makeConnection(proto);
    proto.makeConnection(wrapProtocol(p));
  }

  windowChanged(newWindowSize: WindowSize): void {
    this.winSize = newWindowSize;
    this.onWindowChanged?.(newWindowSize);
  }

  eofReceived(): void {
    const p = this.protocol as (IProtocol & { readConnectionLost?: () => void }) | undefined;
    p?.readConnectionLost?.();
  }

  closed(): void {}
}

class NullProtocol implements IProtocol {
  makeConnection(): void {}
  connectionMade(): void {}
  dataReceived(): void {}
  connectionLost(): void {}
}

/**
 * An avatar whose sessions are served in this process by Protocols: an application's own shell
 * and commands, with no processes and no pty package.
 */
export class InProcessConchUser extends ConchUser implements ISessionProvider {
  constructor(
    readonly username: string,
    readonly options: InProcessOptions = {},
  ) {
    super();
    this.channelLookup["session"] = SSHSession;
  }

  sessionFor(channel: SSHChannel): ISession {
    return new InProcessSession(this, channel);
  }
}

/** A realm that gives every login an {@link InProcessConchUser} with the same options. */
export class InProcessRealm implements IRealm {
  constructor(readonly options: InProcessOptions = {}) {}

  requestAvatar(avatarId: AvatarId, _mind: unknown, ...interfaces: InterfaceToken<unknown>[]): LoginResult<unknown> {
    const name = typeof avatarId === "string" ? avatarId : avatarId instanceof Uint8Array ? Buffer.from(avatarId).toString("utf8") : "anonymous";
    const user = new InProcessConchUser(name, this.options);
    return [interfaces[0]!, user, () => undefined];
  }
}
