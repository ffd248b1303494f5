/**
 * `twisted.conch.ssh.session`: session channels (RFC 4254 §6) — a shell, a command or a
 * subsystem with its pty, environment, window size, signals and exit status.
 *
 * Server side, {@link SSHSession} handles the requests and hands the work to the avatar's
 * {@link ISession}; the process (or in-process protocol) talks back through an
 * {@link SSHSessionProcessProtocol}, which is both its ProcessProtocol and its ITransport. Order on
 * the way out (item 25 of the semantics we keep): output, then EOF once stdout *and* stderr have
 * closed, then exit-status / exit-signal, then CLOSE once the queued output is sent.
 *
 * Client side: the `packRequest_*` / `parseRequest_*` helpers (in `_session/requests.ts`, exported
 * here) build and read request payloads.
 */
import type { Failure } from "@twisted-ts/internet/failure";
import type {
  IAddress,
  IProcessProtocol,
  IProcessTransport,
  IProducer,
  IPullProducer,
  IProtocol,
  IPushProducer,
  ITransport,
} from "@twisted-ts/internet/interfaces";
import { ConnectionDone } from "@twisted-ts/internet/error";
import { Failure as FailureClass } from "@twisted-ts/internet/failure";
import { Logger } from "@twisted-ts/internet/log";
import { ProcessProtocol, Protocol } from "@twisted-ts/internet/protocol";
import { EnvironmentVariableNotPermitted, type ISession, type ISessionProvider } from "../avatar.js";
import { type AuthOptions, describePeer, sessionRequestRefusal } from "./authopt.js";
import { SSHChannel, type RequestResult, type SSHChannelOptions } from "./channel.js";
import { NS, SSHReader, toBytes } from "./common.js";
import { EXTENDED_DATA_STDERR } from "./connection.js";
import { ByteQueue } from "./_connection/bytequeue.js";
import {
  latin1,
  packRequest_exit_signal,
  parseRequest_pty_req,
  parseRequest_window_change,
  signalName,
  utf8,
} from "./_session/requests.js";
import { agentForwardingPath } from "./_agent/forwarding.js";
import { FORCED_COMMAND_REPLACES, applyServerEnvironment, originalCommand, serverEnvironment } from "./_session/restrict.js";

export {
  packRequest_env,
  packRequest_exit_signal,
  packRequest_pty_req,
  packRequest_window_change,
  parseRequest_exit_signal,
  parseRequest_exit_status,
  parseRequest_pty_req,
  parseRequest_window_change,
  signalName,
  type ExitSignal,
} from "./_session/requests.js";
export { SSHSessionClient, SSHSessionClientChannel } from "./_session/client.js";

const log = new Logger("twisted-ts.conch.ssh.session");

/**
 * Seconds a shell or command may go on writing after the client closed the channel: the client
 * that sends its input, EOF and CLOSE at once (the Conch howto's `cat`) still gets the output, and
 * a command that ignores its closed stdin is hung up on after this long.
 */
export const SESSION_CLOSE_GRACE = 30;

/**
 * Characters of an exec command line logged at info level; the whole line goes to debug only. A
 * command line can be long (a 200 KB script) and can hold secrets, so info logs a prefix and the
 * length.
 */
export const MAX_LOGGED_COMMAND = 200;

/** `command` cut to {@link MAX_LOGGED_COMMAND} characters, saying how long it was. */
export function commandForLog(command: string): string {
  if (command.length <= MAX_LOGGED_COMMAND) return command;
  return `${command.slice(0, MAX_LOGGED_COMMAND)}… (${command.length} characters)`;
}

/** The signals every session should understand (RFC 4254 §6.10), without the SIG prefix. */
export const SUPPORTED_SIGNALS = ["ABRT", "ALRM", "FPE", "HUP", "ILL", "INT", "KILL", "PIPE", "QUIT", "SEGV", "TERM", "USR1", "USR2"] as const;

function u32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n >>> 0);
  return out;
}


/** The ISession for `avatar`: its `sessionFor(channel)`, or the avatar itself when it is one. */
export function sessionForAvatar(avatar: unknown, channel: SSHChannel): ISession {
  if (typeof avatar === "object" && avatar !== null) {
    if (typeof (avatar as ISessionProvider).sessionFor === "function") return (avatar as ISessionProvider).sessionFor(channel);
    if (typeof (avatar as ISession).openShell === "function" && typeof (avatar as ISession).execCommand === "function") {
      return avatar as ISession;
    }
  }
  throw new Error("the avatar does not provide sessions (no sessionFor, openShell or execCommand)");
}

/**
 * Twisted's `SSHSession`: the server side of a session channel. Put it in the avatar's
 * `channelLookup` under "session".
 */
export class SSHSession extends SSHChannel {
  override name = "session";
  /** The protocol that carries data between this channel and the shell, command or subsystem. */
  client: SSHSessionProcessProtocol | undefined = undefined;
  /** The avatar's session object (made on the first request that needs it). */
  session: ISession | undefined = undefined;
  /** Data the client sent before the shell, command or subsystem started; replayed to it. */
  readonly earlyData = new ByteQueue();
  /** Depth of requests being handled; endings that happen meanwhile wait for the reply. */
  private inRequest = 0;
  private readonly afterRequest: Array<() => void> = [];
  private graceTimer: { cancel(): void } | undefined = undefined;
  private gotEOF = false;
  /** An in-process subsystem protocol serves this channel: EOF closes it, as Twisted does. */
  private inProcessSubsystem = false;
  private graceWanted = false;
  /** Seconds a running command may go on after the client closed (see {@link SESSION_CLOSE_GRACE}). */
  closeGrace = SESSION_CLOSE_GRACE;

  constructor(options: SSHChannelOptions = {}) {
    super(options);
  }

  /**
   * What the client asked to run when the login's forced command ran instead (the process gets it
   * as `SSH_ORIGINAL_COMMAND`).
   */
  originalCommand: string | undefined = undefined;

  /** What the login may do (`transport.authOptions`); undefined when nothing is restricted. */
  get authOptions(): AuthOptions | undefined {
    return this.hasConnection ? this.conn.transport?.authOptions : undefined;
  }

  /**
   * The login's options act before any handler: a request they forbid (pty-req under `no-pty`,
   * x11-req, agent forwarding) is refused, and a forced command replaces exec, shell and
   * subsystem — so a subclass's own handlers cannot bypass them.
   */
  override requestReceived(requestType: string, data: Uint8Array): RequestResult {
    this.inRequest++;
    try {
      const options = this.authOptions;
      if (options === undefined) return super.requestReceived(requestType, data);
      const refusal = sessionRequestRefusal(options, requestType);
      if (refusal !== undefined) {
        log.info("refused {requestType} from {peer}: {reason}", { requestType, peer: describePeer(() => this.getPeer()), reason: refusal });
        return false;
      }
      if (options.forceCommand === undefined || !FORCED_COMMAND_REPLACES.has(requestType)) return super.requestReceived(requestType, data);
      if (this.client === undefined) this.originalCommand = originalCommand(requestType, data);
      log.info("running the login's forced command instead of the {requestType} requested by {peer}", { requestType, peer: describePeer(() => this.getPeer()) });
      return super.requestReceived("exec", NS(options.forceCommand));
    } finally {
      this.inRequest--;
    }
  }

  /** Runs what waited for the request's reply (a command that ended at once). */
  override requestDone(_requestType: string): void {
    if (this.inRequest > 0) return;
    for (const fn of this.afterRequest.splice(0)) fn();
  }

  /**
   * @internal Runs `fn` now, or — while a request is being handled — once its reply has gone out.
   * Returns true when it was deferred.
   */
  _afterReply(fn: () => void): boolean {
    if (this.inRequest === 0) return false;
    this.afterRequest.push(fn);
    return true;
  }

  /** The avatar's ISession, made on first use. */
  protected getSession(): ISession {
    if (this.session === undefined) this.session = sessionForAvatar(this.avatar, this);
    return this.session;
  }

  private refuseSecondStart(what: string): boolean {
    if (this.client === undefined) return false;
    log.warn("refusing {what}: this session already runs a shell, command or subsystem", { what });
    return true;
  }

  /**
   * RFC 4254 §6.5: `string subsystem name`. Runs the session's own subsystem process
   * (`ISession.execSubsystem`, sshd's `Subsystem`) if it has one of that name, else the avatar's
   * in-process subsystem protocol, over this channel.
   */
  request_subsystem(data: Uint8Array): boolean {
    const r = new SSHReader(data);
    const subsystem = latin1(r.string());
    log.info("asking for subsystem {subsystem}", { subsystem });
    if (this.refuseSecondStart("subsystem")) return false;
    const pp = new SSHSessionProcessProtocol(this);
    const session = this.sessionIfAny();
    if (session?.execSubsystem !== undefined) {
      try {
        if (session.execSubsystem(pp, subsystem)) {
          this.client = pp;
          return true;
        }
      } catch (e) {
        log.failure("error starting subsystem {subsystem}", e, "error", { subsystem });
        return false;
      }
    }
    const client = this.avatar?.lookupSubsystem(subsystem, data);
    if (!client) {
      log.error("failed to get subsystem {subsystem}", { subsystem });
      return false;
    }
    this.inProcessSubsystem = true;
    client.makeConnection(pp);
    this.client = pp;
    pp.makeConnection(wrapProtocol(client));
    return true;
  }

  /** The avatar's ISession, or undefined when the avatar provides none. */
  private sessionIfAny(): ISession | undefined {
    try {
      return this.getSession();
    } catch {
      return undefined;
    }
  }

  /** RFC 4254 §6.5: no data. Starts the user's shell. */
  request_shell(_data: Uint8Array): boolean {
    log.info("getting shell");
    if (this.refuseSecondStart("shell")) return false;
    const pp = new SSHSessionProcessProtocol(this);
    try {
      const session = this.getSession();
      applyServerEnvironment(session, serverEnvironment(this.authOptions, undefined), log);
      session.openShell(pp);
    } catch (e) {
      log.failure("error getting shell", e, "error");
      return false;
    }
    this.client = pp;
    return true;
  }

  /** RFC 4254 §6.5: `string command`. Runs the command. */
  request_exec(data: Uint8Array): boolean {
    const r = new SSHReader(data);
    const command = utf8(r.string());
    log.info("executing command {command}", { command: commandForLog(command) });
    if (command.length > MAX_LOGGED_COMMAND) log.debug("the whole command: {command}", { command });
    if (this.refuseSecondStart("exec")) return false;
    const pp = new SSHSessionProcessProtocol(this);
    try {
      const session = this.getSession();
      applyServerEnvironment(session, serverEnvironment(this.authOptions, this.originalCommand), log);
      session.execCommand(pp, command);
    } catch (e) {
      log.failure("error executing command {command}", e, "error", { command: commandForLog(command) });
      return false;
    }
    this.client = pp;
    return true;
  }

  /** RFC 4254 §6.2: terminal type, width/height in characters and pixels, encoded modes. */
  request_pty_req(data: Uint8Array): boolean {
    const [term, windowSize, modes] = parseRequest_pty_req(data);
    log.info("handling pty request: {term} {windowSize}", { term, windowSize: windowSize.join("x") });
    try {
      this.getSession().getPty(term, windowSize, modes);
    } catch (e) {
      log.failure("error handling pty request", e, "warn");
      return false;
    }
    return true;
  }

  /** RFC 4254 §6.4: `string name, string value`. Accepted only when the session has `setEnv`. */
  request_env(data: Uint8Array): boolean {
    const r = new SSHReader(data);
    const name = utf8(r.string());
    const value = utf8(r.string());
    let session: ISession;
    try {
      session = this.getSession();
    } catch (e) {
      log.failure("no session for env request", e, "warn");
      return false;
    }
    if (typeof session.setEnv !== "function") {
      log.warn("can't set environment variable {name}: the session has no setEnv", { name });
      return false;
    }
    try {
      session.setEnv(name, value);
    } catch (e) {
      if (!(e instanceof EnvironmentVariableNotPermitted)) log.failure("error setting environment variable {name}", e, "error", { name });
      return false;
    }
    return true;
  }

  /** RFC 4254 §6.7: width/height in characters and pixels. */
  request_window_change(data: Uint8Array): boolean {
    const winSize = parseRequest_window_change(data);
    try {
      this.getSession().windowChanged(winSize);
    } catch (e) {
      log.failure("error changing window size", e, "warn");
      return false;
    }
    return true;
  }

  /** RFC 4254 §6.9: `string signal name` (without "SIG"). */
  request_signal(data: Uint8Array): boolean {
    const name = latin1(new SSHReader(data).string());
    const session = this.session;
    if (session === undefined || typeof session.signal !== "function") {
      log.info("signal {name} ignored: the session cannot deliver signals", { name });
      return false;
    }
    try {
      session.signal(name);
    } catch (e) {
      log.failure("error delivering signal {name}", e, "warn", { name });
      return false;
    }
    return true;
  }

  /**
   * OpenSSH's `auth-agent-req@openssh.com` (no payload; PROTOCOL §4.1): the avatar's
   * `agentForwardingSocket` listens, and the session's processes get `SSH_AUTH_SOCK` naming it.
   * The login's options (`no-agent-forwarding`, `restrict`, AllowAgentForwarding) refuse it first.
   */
  "request_auth_agent_req@openssh.com"(_data: Uint8Array): boolean {
    const path = agentForwardingPath(this.avatar, this.conn, log);
    if (path === undefined) return false;
    applyServerEnvironment(this.getSession(), [["SSH_AUTH_SOCK", path]], log);
    return true;
  }

  /** RFC 4335: `uint32 break length in milliseconds`. */
  request_break(data: Uint8Array): boolean {
    const ms = new SSHReader(data).uint32();
    const session = this.session;
    if (session === undefined || typeof session.break !== "function") return false;
    try {
      return session.break(ms) !== false;
    } catch (e) {
      log.failure("error sending break", e, "warn");
      return false;
    }
  }

  override dataReceived(data: Uint8Array): void {
    if (this.client === undefined) {
      // Held until a shell or command starts; no window is given back meanwhile, so at most one
      // window of early data is ever held.
      this.earlyData.push(data.slice());
      this.pauseProducing();
      return;
    }
    const t = this.client.transport as IProcessTransport | undefined;
    if (t === undefined) {
      this.earlyData.push(data.slice());
      this.pauseProducing();
      return;
    }
    t.write(data);
  }

  override extReceived(dataType: number, data: Uint8Array): void {
    if (dataType === EXTENDED_DATA_STDERR) {
      const t = this.client?.transport as (IProcessTransport & { writeErr?: (d: Uint8Array) => void }) | undefined;
      t?.writeErr?.(data);
    } else log.warn("weird extended data: {dataType}", { dataType });
  }

  /**
   * With a session, it hears the EOF (a process gets its stdin closed) and closes the channel when
   * done. An in-process subsystem that is half-closeable (Twisted's `IHalfCloseableProtocol`,
   * `readConnectionLost`) is told and ends itself when done; any other in-process subsystem ends
   * now, as a process that exited 0: EOF, exit-status 0 (which `scp` checks), CLOSE.
   */
  override eofReceived(): void {
    this.gotEOF = true;
    if (this.session !== undefined && !this.inProcessSubsystem) this.session.eofReceived();
    else if (this.client !== undefined) {
      const t = this.client.transport as unknown;
      const proto = t instanceof DummyTransport ? (t.proto as Partial<{ readConnectionLost(): void }>) : undefined;
      if (typeof proto?.readConnectionLost === "function") proto.readConnectionLost();
      else this.client.exit(0);
    }
  }

  /**
   * The client closed. A running shell or command first gets EOF on its input and
   * {@link SESSION_CLOSE_GRACE} seconds to finish (its output still goes out); then, or at once
   * when nothing runs, our CLOSE.
   */
  override closeReceived(): void {
    const pp = this.client;
    const clock = this.hasConnection ? this.conn.transport?.clock : undefined;
    if (pp !== undefined && pp.running && this.session !== undefined && !this.closing && clock !== undefined) {
      log.info("client closed the channel while the command runs: closing its input, waiting for it to end");
      if (!this.gotEOF) {
        this.gotEOF = true;
        try {
          this.session.eofReceived();
        } catch (e) {
          log.failure("session.eofReceived failed", e, "error");
        }
      }
      this.graceWanted = true;
      // The grace counts from the process's start: spawning may itself take a while.
      if (pp.connected) this._startGrace();
      return;
    }
    super.closeReceived();
  }

  /** @internal Starts the close grace once the process runs (called again from connectionMade). */
  _startGrace(): void {
    if (!this.graceWanted || this.graceTimer !== undefined || this.localClosed) return;
    const clock = this.hasConnection ? this.conn.transport?.clock : undefined;
    if (clock === undefined) {
      this.loseConnection();
      return;
    }
    this.graceTimer = clock.callLater(this.closeGrace, () => {
      this.graceTimer = undefined;
      this.loseConnection();
    });
  }

  override closed(): void {
    this.graceTimer?.cancel();
    this.graceTimer = undefined;
    if (this.client !== undefined) this.client.transport?.loseConnection();
    if (this.session !== undefined) {
      try {
        this.session.closed();
      } catch (e) {
        log.failure("session.closed failed", e, "error");
      }
    }
  }

  override loseConnection(): void {
    if (this.client !== undefined && !this.localClosed) this.client.transport?.loseConnection();
    super.loseConnection();
  }
}

/** The pipes of a Node child process, when the process transport exposes it. */
interface ChildStreams {
  stdout?: { pause(): unknown; resume(): unknown } | null;
  stderr?: { pause(): unknown; resume(): unknown } | null;
}

/** Twisted's `_ProtocolWrapper`: a stream Protocol seen as a ProcessProtocol. */
export class ProtocolWrapper extends ProcessProtocol {
  constructor(readonly proto: IProtocol) {
    super();
  }
  override connectionMade(): void {
    this.proto.connectionMade();
  }
  override outReceived(data: Uint8Array): void {
    this.proto.dataReceived(data);
  }
  override processEnded(reason: Failure): void {
    this.proto.connectionLost(reason);
  }
}

/**
 * Twisted's `_DummyTransport`: makes a stream Protocol look like a process to an
 * SSHSessionProcessProtocol — what the channel receives is the protocol's input.
 */
export class DummyTransport implements IProcessTransport {
  readonly pid = undefined;
  private lost = false;

  constructor(readonly proto: IProtocol) {}

  write(data: Uint8Array | string): void {
    if (!this.lost) this.proto.dataReceived(toBytes(data));
  }
  writeSequence(seq: Iterable<Uint8Array | string>): void {
    for (const d of seq) this.write(d);
  }
  writeToChild(_childFD: number, data: Uint8Array | string): void {
    this.write(data);
  }
  closeStdin(): void {
    const p = this.proto as IProtocol & { readConnectionLost?: () => void };
    p.readConnectionLost?.();
  }
  closeStdout(): void {}
  closeStderr(): void {}
  closeChildFD(childFD: number): void {
    if (childFD === 0) this.closeStdin();
  }
  signalProcess(_signal: string | number): void {}
  loseConnection(): void {
    if (this.lost) return;
    this.lost = true;
    this.proto.connectionLost(new FailureClass(new ConnectionDone()));
  }
  registerProducer(_producer: IPushProducer | IPullProducer, _streaming: boolean): void {}
  unregisterProducer(): void {}
  getPeer(): IAddress {
    return { type: "UNIX", family: "UNIX", name: null, host: "", port: 0 };
  }
  getHost(): IAddress {
    return this.getPeer();
  }
}

/** The most process output gathered into one channel data packet. */
const MAX_GATHER = 64 * 1024;

/** Twisted's `wrapProcessProtocol`: a Protocol becomes a ProcessProtocol; others pass through. */
export function wrapProcessProtocol(inst: IProtocol | IProcessProtocol): IProcessProtocol {
  return inst instanceof Protocol ? new ProtocolWrapper(inst) : (inst as IProcessProtocol);
}

/** Twisted's `wrapProtocol`: a transport that feeds what is written to it into `proto`. */
export function wrapProtocol(proto: IProtocol): DummyTransport {
  return new DummyTransport(proto);
}

/**
 * Twisted's `SSHSessionProcessProtocol`: the ProcessProtocol of the shell or command (its output
 * goes to the channel: stdout as data, stderr as extended data) and the ITransport of an
 * in-process protocol (what it writes goes to the channel).
 */
export class SSHSessionProcessProtocol extends ProcessProtocol implements ITransport {
  private lostOutOrErr = false;
  private ended = false;

  /**
   * True from the shell or command request until it ended — also while a process is still being
   * spawned (the client may close before the process exists; its input must still reach it).
   */
  get running(): boolean {
    return !this.ended;
  }

  constructor(readonly session: SSHSession) {
    super();
  }

  /**
   * Joins the two flows, so memory stays bounded both ways: the channel pauses (gives the client
   * no more window) while the child's stdin is full, and the child's output is paused while the
   * client's window is. Then replays the data that arrived before the process started.
   */
  override connectionMade(): void {
    if (!(this.transport instanceof DummyTransport)) this.joinFlowControl();
    const early = this.session.earlyData;
    if (early.length > 0) this.transport.write(early.takeAll());
    this.session.resumeProducing();
    this.session._startGrace();
  }

  /**
   * A real process: its stdin pauses the channel, the channel pauses its stdout/stderr. (An
   * in-process protocol writes to this transport itself and may register its own producer.)
   */
  private joinFlowControl(): void {
    const t = this.transport as IProcessTransport & Partial<IPushProducer> & { child?: ChildStreams };
    t.registerProducer(this.session, true);
    const streams = (): Array<{ pause(): unknown; resume(): unknown }> =>
      [t.child?.stdout, t.child?.stderr].filter((x): x is NonNullable<typeof x> => x !== null && x !== undefined);
    const outputProducer: IPushProducer = {
        pauseProducing: () => (typeof t.pauseProducing === "function" ? t.pauseProducing() : streams().forEach((x) => x.pause())),
        resumeProducing: () => (typeof t.resumeProducing === "function" ? t.resumeProducing() : streams().forEach((x) => x.resume())),
        stopProducing: () => undefined,
    };
    this.session.registerProducer(outputProducer, true);
  }

  /**
   * Output read during this turn of the event loop, gathered into one packet's worth (`outFill`
   * bytes of `outBuf`). Programs often write 4–8 KiB at a time; sent as read, that is a packet per
   * read, and most of the cost of a packet is per packet (sshd gathers the same way). What is
   * gathered goes out when a packet is full, at the end of the turn, and before anything else this
   * protocol sends (stderr, EOF, exit status). The buffer is reused while the channel sends what
   * it is given at once.
   */
  private outBuf: Buffer | null = null;
  private outFill = 0;
  private flushScheduled = false;

  /**
   * What the process writes is copied (gathered, or stderr copied) before `outReceived` and
   * `errReceived` return, so the process transport may read its pipes into a reused buffer.
   */
  readonly borrowsReceivedData = true as const;

  override outReceived(data: Uint8Array): void {
    const max = Math.min(MAX_GATHER, Math.max(1, this.session.remoteMaxPacket));
    let off = 0;
    // Whole packets with nothing gathered before them go out as they are, without the copy,
    // while the client's window takes them at once (the channel then keeps nothing of them).
    const ch = this.session;
    while (this.outFill === 0 && data.length - off >= max && ch.bufferedAmount === 0 && ch.remoteWindowLeft >= max && !ch.localClosed && !ch.closing) {
      ch.write(data.subarray(off, off + max));
      off += max;
    }
    while (off < data.length) {
      const buf = (this.outBuf ??= Buffer.allocUnsafe(max));
      const n = Math.min(data.length - off, buf.length - this.outFill);
      buf.set(n === data.length ? data : data.subarray(off, off + n), this.outFill);
      this.outFill += n;
      off += n;
      if (this.outFill === buf.length) this.flushOut();
    }
    if (this.outFill > 0 && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flushOut();
      });
    }
  }

  /** Sends the gathered output now. */
  private flushOut(): void {
    const buf = this.outBuf;
    const n = this.outFill;
    if (buf === null || n === 0) return;
    this.outFill = 0;
    this.session.write(n === buf.length ? buf : buf.subarray(0, n));
    // The buffer can be filled again unless the channel kept it (the client's window was full).
    if (this.session.bufferedAmount > 0) this.outBuf = null;
  }

  override errReceived(data: Uint8Array): void {
    this.flushOut();
    // A copy: the channel keeps what the client's window has no room for.
    this.session.writeExtended(EXTENDED_DATA_STDERR, Buffer.from(data));
  }

  /** EOF goes out only when both stdout and stderr have closed. */
  override outConnectionLost(): void {
    this.flushOut();
    if (this.lostOutOrErr) this.session.conn.sendEOF(this.session);
    else this.lostOutOrErr = true;
  }

  override errConnectionLost(): void {
    this.outConnectionLost();
  }

  /** Used as a stream transport's protocol end: the channel closes. */
  connectionLost(_reason?: Failure): void {
    this.session.loseConnection();
  }

  /**
   * The process exited: nobody reads its stdin any more, so close our end (otherwise the pipe can
   * stay open and `processEnded` never come).
   */
  override processExited(_reason: Failure): void {
    try {
      this.transport?.closeStdin();
    } catch (e) {
      log.failure("closing stdin after exit failed", e, "warn");
    }
  }

  /**
   * The process ended: exit-signal (killed by a signal) or exit-status goes to the client, then
   * the channel closes once its queued output is sent.
   */
  override processEnded(reason: Failure): void {
    this.flushOut();
    if (this.ended || this.session._afterReply(() => this.processEnded(reason))) return;
    this.ended = true;
    const err = reason.value as Error & { exitCode?: number | null; signal?: string | number | null; coreDumped?: boolean };
    const conn = this.session.conn;
    if (err.signal !== undefined && err.signal !== null) {
      const signame = typeof err.signal === "number" ? signalName(err.signal) : err.signal.replace(/^SIG/, "");
      log.info("exitSignal: {signame}", { signame });
      void conn
        .sendRequest(this.session, "exit-signal", packRequest_exit_signal(signame, err.coreDumped === true, "", ""))
        .addErrback(() => undefined);
    } else if (typeof err.exitCode === "number") {
      log.info("exitCode: {exitCode}", { exitCode: err.exitCode });
      void conn.sendRequest(this.session, "exit-status", u32(err.exitCode)).addErrback(() => undefined);
    }
    this.session.loseConnection();
  }

  /**
   * For in-process sessions: end like a process that exited with `status` — EOF, exit-status,
   * then CLOSE.
   */
  exit(status: number): void {
    if (this.ended || this.session._afterReply(() => this.exit(status))) return;
    this.session.conn.sendEOF(this.session);
    this.processEnded(new FailureClass(Object.assign(new Error(`exit ${status}`), { exitCode: status, signal: null })));
  }

  // ---- ITransport toward an in-process protocol -----------------------------------------------

  getHost(): IAddress {
    return this.session.getHost();
  }
  getPeer(): IAddress {
    return this.session.getPeer();
  }
  /**
   * Output written while the exec/shell request is handled goes out after its reply (a copy, so
   * the writer may reuse its bytes; otherwise they go to the channel as they are, as its `write`).
   */
  write(data: Uint8Array | string): void {
    let held = data;
    if (this.session._afterReply(() => this.session.write(held))) {
      if (typeof data !== "string") held = data.slice();
      return;
    }
    this.session.write(data);
  }
  /** Writes to the client's stderr (extended data type 1), after the request's reply. */
  writeErr(data: Uint8Array | string): void {
    const copy = typeof data === "string" ? data : data.slice();
    if (this.session._afterReply(() => this.session.writeExtended(EXTENDED_DATA_STDERR, copy))) return;
    this.session.writeExtended(EXTENDED_DATA_STDERR, data);
  }
  writeSequence(seq: Iterable<Uint8Array | string>): void {
    for (const d of seq) this.write(d);
  }
  /**
   * Writes `data` and calls `release` when the channel did not keep it: sealed at once, or copied
   * to go out after a reply (SFTP's server reuses its DATA replies' memory).
   */
  writeAndRelease(data: Uint8Array, release: () => void): void {
    const held = this.session.bufferedAmount;
    this.write(data);
    if (this.session.bufferedAmount === held) release();
  }
  loseConnection(): void {
    this.session.loseConnection();
  }
  abortConnection(): void {
    this.session.abortConnection();
  }
  get disconnecting(): boolean {
    return this.session.closing;
  }
  registerProducer(producer: IPushProducer | IPullProducer, streaming: boolean): void {
    this.session.registerProducer(producer, streaming);
  }
  unregisterProducer(): void {
    this.session.unregisterProducer();
  }

  // ---- IPushProducer toward an in-process protocol: it can stop the client's data, as a TCP
  // transport lets a protocol stop reading (the SFTP server does when requests pile up) ----------

  /** The channel gives the client no more window until {@link resumeProducing}. */
  pauseProducing(): void {
    this.session.pauseProducing();
  }
  resumeProducing(): void {
    this.session.resumeProducing();
  }
  stopProducing(): void {
    this.session.loseConnection();
  }
}
