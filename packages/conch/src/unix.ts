/**
 * `twisted.conch.unix`: a realm whose users get real Unix sessions, plus an in-process realm for
 * applications that serve their own shell and commands.
 *
 * {@link UnixSSHRealm} / {@link UnixConchUser}: every process a session starts runs exactly as
 * under sshd: the account's uid, primary gid and supplementary groups, its home directory as the
 * working directory, its login shell (`-sh` as argv[0] for a shell, `sh -c command` for exec and
 * subsystems) and an environment built only from what sshd sets (see
 * {@link UnixSession.environment}), never the server's own. A login name maps to an account
 * through the realm's `lookupUser` (default: /etc/passwd) or is refused; a server that is not root
 * serves only its own account. Output: stdout → data, stderr → extended data, the real exit code
 * or signal; a command that does not exist exits 127, as the shell says. A pty (`pty-req`) needs
 * the optional `node-pty` package: when it cannot be imported the request is refused with a clear
 * log line and the client carries on without a terminal (OpenSSH's `ssh` does).
 *
 * {@link InProcessConchUser} / {@link InProcessRealm}: sessions served by Protocols in this
 * process — no processes, no pty needed.
 */
import { ProcessExitedAlready, ProcessTerminated } from "@twisted-ts/internet/error";
import { Failure } from "@twisted-ts/internet/failure";
import type { IListeningPort, IProcessTransport, IProtocol, IReactorProcess, IReactorTCP, IReactorUNIX } from "@twisted-ts/internet/interfaces";
import { Logger } from "@twisted-ts/internet/log";
import type { ProcessLauncher } from "@twisted-ts/internet/reactor";
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
import type { GlobalRequestResult, SSHConnection } from "./ssh/connection.js";
import { SSHAgentForwardingFactory } from "./ssh/_agent/forwarding.js";
import { listenAgentSocket, type AgentSocket } from "./ssh/_agent/socket.js";
import {
  SSHListenForwardingFactory,
  SSHListenServerForwardingChannel,
  forwardingReactor,
  openConnectForwardingClient,
  unpackGlobal_tcpip_forward,
} from "./ssh/forwarding.js";
import { forwardingBindAddress, forwardingPolicy, type ForwardingPolicy } from "./ssh/_forwarding/policy.js";
import { cancelStreamLocalForward, openStreamLocalForUser, streamLocalForward } from "./_unix/streamlocal_server.js";
import { UserSockets, type StreamLocalReactor, type UserSocketListener } from "./_unix/streamlocal.js";
import { SSHSession, wrapProtocol, type SSHSessionProcessProtocol } from "./ssh/session.js";
import { SFTP_SERVER_SCRIPT } from "./ssh/filetransfer.js";
import { PtyTransport, loadedNodePty, type PtyProcess } from "./_unix/pty.js";
import {
  DEFAULT_USER_PATH,
  MAIL_SPOOL,
  RunAsUnavailable,
  SUPERUSER_PATH,
  commandAsUser,
  execArgv,
  loginShellArgv,
  type RunAsSettings,
} from "./_unix/runas.js";
import { getpwnam, resolveUnixUser, type PasswdEntry, type UserLookup } from "./_unix/users.js";

export { loadNodePty, ptyAvailable } from "./_unix/pty.js";
export {
  DEFAULT_USER_PATH,
  EXEC_HELPER,
  MAIL_SPOOL,
  PERL_PATH,
  RunAsUnavailable,
  SETPRIV_PATH,
  SUPERUSER_PATH,
  commandAsUser,
  execArgv,
  loginShellArgv,
  type RunAsSettings,
  type SessionPlace,
  type UserCommand,
} from "./_unix/runas.js";
export { UnixUserRefused, getpwnam, resolveUnixUser, type PasswdEntry, type UnixUserRefusal, type UserLookup } from "./_unix/users.js";

const log = new Logger("twisted-ts.conch.unix");

/** A word quoted for a POSIX shell: the subsystem command lines run as `shell -c line`. */
function shellQuote(word: string): string {
  return `'${word.replaceAll("'", "'\\''")}'`;
}

/**
 * The subsystems of a realm that names none: `sftp` is this package's `sftp-server` bin run by this
 * Node, as the user, as sshd runs OpenSSH's sftp-server (files are opened with the user's own
 * rights, which an in-process server running as root could not do).
 */
export const DEFAULT_SUBSYSTEMS: Readonly<Record<string, string>> = Object.freeze({
  sftp: `${shellQuote(process.execPath)} ${shellQuote(SFTP_SERVER_SCRIPT)}`,
});

/** Exit status of a command that could not be found or run (POSIX shells use 127). */
export const EXIT_COMMAND_NOT_FOUND = 127;

/**
 * Environment variables a client may never set: they change how programs (the shell, the dynamic
 * loader, the Perl exec helper, interpreters) load or run, or they are sshd's own.
 */
export const FORBIDDEN_ENV =
  /^(LD_|DYLD_)|^(PATH|HOME|USER|LOGNAME|SHELL|MAIL|IFS|ENV|BASH_ENV|NODE_OPTIONS|PYTHONSTARTUP|PYTHONPATH|PERL5LIB|PERLLIB|PERL5OPT|PERL5DB|PERLIO|RUBYOPT|SSH_[A-Z_]*)$/;

/** Most variables the client may set in one session; sshd ignores `env` requests past 128 too. */
export const MAX_SESSION_ENV = 128;

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
   * The account a login name runs as (default {@link getpwnam}: /etc/passwd). Return undefined to
   * refuse the login. There is no fallback: a name it does not know never becomes the server's own
   * user. Map a name to another account explicitly here (tests map theirs to the current user).
   * Under root the entry's uid must be one the system's user database knows: setpriv's
   * `--init-groups` takes the supplementary groups of that uid's account, and fails otherwise.
   */
  lookupUser?: UserLookup;
  /**
   * What this realm's logins may forward (sshd_config's AllowTcpForwarding, PermitOpen,
   * PermitListen, GatewayPorts, …), over OpenSSH's defaults; when unset, the factory's
   * `forwardingPolicy` applies. Given here, a login keeps the policy of the realm that made it.
   */
  forwardingPolicy?: Partial<ForwardingPolicy>;
  /**
   * Shorthand for `GatewayPorts clientspecified` (remote forwards bind the address the client
   * names) when the policy says `no`; by default they bind loopback only.
   */
  gatewayPorts?: boolean;
  /**
   * Spawn sessions' commands and subsystems through the reactor's process launcher (`spawnProcess`
   * with `launcher: true`), a small helper process, so that forking from this large one does not
   * stop every connection while it runs (issue 14). Their stdio are then sockets, as sshd's are;
   * terminals are made by node-pty in the launcher, their data carried over a socket. Default
   * true; false spawns from this process.
   */
  processLauncher?: boolean;
  /** Give sessions terminals on pty-req (needs node-pty); false refuses every pty-req. Default true. */
  pty?: boolean;
  /** false is shorthand for `AllowTcpForwarding no` (no `direct-tcpip` channels or `tcpip-forward`); default true. */
  allowForwarding?: boolean;
  /**
   * Variables every session starts with, over sshd's own (OpenSSH's `SetEnv`). `{ SHLVL: "1" }`
   * keeps bash from sourcing `~/.bashrc` for commands, as it otherwise does when `SSH_CLIENT` is set.
   */
  env?: Readonly<Record<string, string>>;
  /** Decides which environment variables clients may set (default: all but {@link FORBIDDEN_ENV}). */
  acceptEnv?: (name: string) => boolean;
  /** Most variables a client may set in one session (default {@link MAX_SESSION_ENV}). */
  maxEnv?: number;
  /**
   * sshd's `Subsystem` directive: subsystem name → command line, run as the user exactly like an
   * exec request (`shell -c commandLine`), e.g. `{ sftp: "/usr/lib/openssh/sftp-server" }`. The
   * default is {@link DEFAULT_SUBSYSTEMS}: `sftp` runs our own `sftp-server` bin as the user; `{}`
   * turns it off. These come before the avatar's in-process `subsystemLookup`.
   */
  subsystems?: Readonly<Record<string, string>>;
  /** `PATH` of users' sessions (default {@link DEFAULT_USER_PATH}). */
  userPath?: string;
  /** `PATH` of root's sessions (default {@link SUPERUSER_PATH}). */
  superuserPath?: string;
  /** Absolute path of util-linux's setpriv, used when the server runs as root (default `/usr/bin/setpriv`). */
  setpriv?: string;
  /** Absolute path of perl, which runs the exec helper (default `/usr/bin/perl`). */
  perl?: string;
}

/** The uid this server runs as, or undefined where there are no uids. */
function serverUid(): number | undefined {
  return process.getuid?.();
}

/** Twisted's `UnixSSHRealm`: every login gets a {@link UnixConchUser}. */
export class UnixSSHRealm implements IRealm {
  constructor(readonly options: UnixRealmOptions = {}) {}

  /**
   * A {@link UnixConchUser} for `avatarId`; throws {@link UnixUserRefused} (the login fails) for a
   * name that maps to no account, or to another account than the server's when it is not root.
   */
  requestAvatar(avatarId: AvatarId, _mind: unknown, ...interfaces: InterfaceToken<unknown>[]): LoginResult<unknown> {
    const name = typeof avatarId === "string" ? avatarId : avatarId instanceof Uint8Array ? Buffer.from(avatarId).toString("utf8") : "anonymous";
    const user = new UnixConchUser(name, this.options);
    return [interfaces[0]!, user, () => user.logout()];
  }
}

/** Twisted's `UnixConchUser`: session channels that run real processes as a Unix account. */
export class UnixConchUser extends ConchUser implements ISessionProvider {
  readonly username: string;
  /** The account this login runs as (from the realm's `lookupUser`). */
  readonly pwd: PasswdEntry;
  readonly options: UnixRealmOptions;
  private readonly sessions = new Set<UnixSession>();
  /** Remote-forwarding listeners by "host:port" as the client asked. */
  readonly listeners = new Map<string, IListeningPort>();
  /** Remote UNIX-socket forwards by socket path. */
  readonly streamListeners = new Map<string, UserSocketListener>();
  private sockets: UserSockets | undefined = undefined;
  /** The agent forwarding socket, once asked for. */
  private agentSocket: AgentSocket | undefined = undefined;

  /** Throws {@link UnixUserRefused} when `username` may not log in here (see {@link resolveUnixUser}). */
  constructor(username: string, options: UnixRealmOptions = {}) {
    super();
    this.username = username;
    this.options = options;
    this.pwd = resolveUnixUser(username, options.lookupUser ?? ((n) => getpwnam(n)), serverUid());
    // A terminal starts synchronously, through the reactor's launcher once the reactor is loaded.
    if (options.reactor === undefined && options.processLauncher !== false) void reactorFor(undefined).catch(() => undefined);
    this.channelLookup["session"] = SSHSession;
    this.channelLookup["direct-tcpip"] = openConnectForwardingClient;
    this.channelLookup["direct-streamlocal@openssh.com"] = (o) => openStreamLocalForUser(this, o);
  }

  /**
   * RFC 4254 §7.1 `tcpip-forward`: listen and open a `forwarded-tcpip` channel back for each
   * connection; port 0 picks a free port, sent back in the reply.
   */
  global_tcpip_forward(data: Uint8Array): GlobalRequestResult {
    if (this.conn === undefined) return false;
    const conn = this.conn;
    const [host, port] = unpackGlobal_tcpip_forward(data);
    const bindHost = forwardingBindAddress(this.getForwardingPolicy(), host);
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

  /**
   * The forwarding policy of this login, the one place the realm's options meet: the realm's
   * `forwardingPolicy`, else the factory's (OpenSSH's defaults for what is unset), with the
   * shorthands applied (`allowForwarding: false` as `AllowTcpForwarding no`, `gatewayPorts: true`
   * as `GatewayPorts clientspecified` where the policy says `no`). Override to decide per user.
   */
  override getForwardingPolicy(): ForwardingPolicy {
    let policy = this.options.forwardingPolicy !== undefined ? forwardingPolicy(this.options.forwardingPolicy) : super.getForwardingPolicy();
    if (this.options.allowForwarding === false) policy = { ...policy, allowTcpForwarding: "no" };
    if (this.options.gatewayPorts === true && policy.gatewayPorts === "no") policy = { ...policy, gatewayPorts: "clientspecified" };
    return policy;
  }

  /** The UNIX sockets of this login, opened with the user's rights. */
  userSockets(): Promise<UserSockets> {
    return forwardingReactor(this.options.reactor).then((reactor) => {
      this.sockets ??= new UserSockets(this.pwd, reactor as unknown as StreamLocalReactor, this.runAsSettings());
      return this.sockets;
    });
  }

  /** @internal Where setpriv and perl are, and who the server runs as. */
  runAsSettings(): RunAsSettings {
    return {
      serverUid: serverUid(),
      ...(this.options.setpriv !== undefined ? { setpriv: this.options.setpriv } : {}),
      ...(this.options.perl !== undefined ? { perl: this.options.perl } : {}),
    };
  }

  /**
   * OpenSSH PROTOCOL §2.4 `streamlocal-forward@openssh.com`: listen on the socket path as the user
   * (a file already there is refused unless `StreamLocalBindUnlink`) and open a
   * `forwarded-streamlocal@openssh.com` channel back for each connection.
   */
  ["global_streamlocal_forward@openssh.com"](data: Uint8Array): GlobalRequestResult {
    return streamLocalForward(this, data);
  }

  /** `cancel-streamlocal-forward@openssh.com`: stop listening and remove the socket file. */
  ["global_cancel_streamlocal_forward@openssh.com"](data: Uint8Array): GlobalRequestResult {
    return cancelStreamLocalForward(this, data);
  }

  /**
   * Agent forwarding (`auth-agent-req@openssh.com`): listens on `agent.<pid>` in a fresh 0700
   * directory under the temporary directory — given to the account when the server runs as root,
   * so only it (and root) can reach the socket — opening an `auth-agent@openssh.com` channel to
   * the client per connection. One socket per connection, as sshd's; removed at logout.
   */
  agentForwardingSocket(conn: SSHConnection): string | undefined {
    if (this.agentSocket === undefined) {
      const r = this.options.reactor as Partial<IReactorUNIX> | undefined;
      // /tmp as sshd: the server's own TMPDIR may be a directory the user cannot enter.
      this.agentSocket = listenAgentSocket(new SSHAgentForwardingFactory(conn), {
        parent: "/tmp",
        ...(typeof r?.listenUNIX === "function" ? { reactor: r as IReactorUNIX } : {}),
        ...(serverUid() === 0 ? { owner: { uid: this.pwd.uid, gid: this.pwd.gid } } : {}),
      });
      log.info("agent forwarding for {user} on {path}", { user: this.username, path: this.agentSocket.path });
    }
    return this.agentSocket.path;
  }

  /** A new {@link UnixSession} for each session channel. */
  sessionFor(channel: SSHChannel): ISession {
    const s = new UnixSession(this, channel);
    this.sessions.add(s);
    return s;
  }

  /** The user's login shell (a login whose shell cannot run is refused, as sshd does). */
  getShell(): string {
    return this.pwd.shell;
  }

  getHomeDir(): string {
    return this.pwd.home;
  }

  /** The account's uid and primary gid (Twisted's `getUserGroupId`). */
  getUserGroupId(): { uid: number; gid: number } {
    return { uid: this.pwd.uid, gid: this.pwd.gid };
  }

  /** Called by the portal when the connection ends: ends what is still running. */
  logout(): void {
    for (const s of this.sessions) s.closed();
    this.sessions.clear();
    for (const l of this.listeners.values()) void l.stopListening();
    this.listeners.clear();
    this.sockets?.close();
    this.streamListeners.clear();
    this.agentSocket?.close();
    this.agentSocket = undefined;
  }

  /** @internal */
  _sessionDone(s: UnixSession): void {
    this.sessions.delete(s);
  }
}

/**
 * Twisted's `SSHSessionForUnixConchUser`: the ISession of one channel, running the user's shell,
 * commands and subsystems as the user.
 */
export class UnixSession implements ISession {
  /** Variables the client set with `env` requests that the realm accepted. */
  readonly clientEnv: Record<string, string> = Object.create(null) as Record<string, string>;
  /** Variables the server set for this login (`setServerEnv`). */
  readonly serverEnv: Record<string, string> = Object.create(null) as Record<string, string>;
  /** The process (or pty) transport once something runs. */
  process: IProcessTransport | undefined = undefined;
  /** EOF arrived before the process was spawned (the reactor loads lazily): close stdin once it is. */
  private eofPending = false;
  private envLimitLogged = false;
  term: string | undefined = undefined;
  winSize: WindowSize = [24, 80, 0, 0];
  modes: TerminalModes = [];
  private pty: PtyProcess | undefined = undefined;
  /** Lines about this session carry it as their source, so a log observer can name the connection. */
  protected readonly log = new Logger("twisted-ts.conch.unix", this);

  constructor(
    readonly avatar: UnixConchUser,
    readonly channel: SSHChannel,
  ) {}

  /**
   * The environment of this session's processes, built as sshd's `do_setup_env` builds it: the
   * client's accepted variables; over them USER, LOGNAME, HOME, PATH (sshd's default, not the
   * server's), MAIL, SHELL, and TERM with a terminal; then the login's server-set variables
   * (authorized_keys `environment=`); over those the realm's `env` (`SetEnv`); then SSH_CLIENT,
   * SSH_CONNECTION and SSH_ORIGINAL_COMMAND. SSH_TTY is set by the process itself once its
   * terminal exists. Nothing comes from the server's own environment.
   */
  environment(): Record<string, string> {
    const pwd = this.avatar.pwd;
    const options = this.avatar.options;
    const env = Object.assign(Object.create(null) as Record<string, string>, this.clientEnv);
    env["USER"] = pwd.name;
    env["LOGNAME"] = pwd.name;
    env["HOME"] = this.avatar.getHomeDir();
    env["PATH"] = pwd.uid === 0 ? (options.superuserPath ?? SUPERUSER_PATH) : (options.userPath ?? DEFAULT_USER_PATH);
    env["MAIL"] = `${MAIL_SPOOL}/${pwd.name}`;
    env["SHELL"] = this.avatar.getShell();
    if (this.term !== undefined) env["TERM"] = this.term;
    Object.assign(env, this.serverEnv);
    Object.assign(env, options.env);
    let peer, host;
    try {
      peer = this.channel.getPeer();
      host = this.channel.getHost();
    } catch {
      // No transport addresses (in-memory tests): no SSH_CLIENT or SSH_CONNECTION.
    }
    if (peer !== undefined && host !== undefined && "port" in peer && "port" in host) {
      env["SSH_CLIENT"] = `${peer.host} ${peer.port} ${host.port}`;
      env["SSH_CONNECTION"] = `${peer.host} ${peer.port} ${host.host} ${host.port}`;
    }
    const original = this.serverEnv["SSH_ORIGINAL_COMMAND"];
    if (original !== undefined) env["SSH_ORIGINAL_COMMAND"] = original;
    return env;
  }

  getPty(term: string, windowSize: WindowSize, modes: TerminalModes): void {
    if (this.avatar.options.pty === false) {
      this.log.warn("pty-req refused: terminals are turned off for this realm");
      throw new Error("pty-req refused: terminals are turned off");
    }
    if (loadedNodePty() === undefined) {
      this.log.warn("pty-req refused: the optional node-pty package is not installed (npm install node-pty to enable terminals)");
      throw new Error("pty-req refused: node-pty is not installed");
    }
    this.term = term;
    this.winSize = windowSize;
    this.modes = modes;
  }

  /** Accepts `name` when the realm does, up to `maxEnv` variables (sshd's 128). */
  setEnv(name: string, value: string): void {
    const options = this.avatar.options;
    const accept = options.acceptEnv ?? ((n: string) => !FORBIDDEN_ENV.test(n));
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || !accept(name)) throw new EnvironmentVariableNotPermitted(`${name} may not be set`);
    const max = options.maxEnv ?? MAX_SESSION_ENV;
    if (!Object.hasOwn(this.clientEnv, name) && Object.keys(this.clientEnv).length >= max) {
      if (!this.envLimitLogged) this.log.warn("env request refused: the client set {max} variables already (maxEnv)", { max });
      this.envLimitLogged = true;
      throw new EnvironmentVariableNotPermitted(`more than ${max} variables`);
    }
    this.clientEnv[name] = value;
  }

  /**
   * Server-set variables (SSH_ORIGINAL_COMMAND, authorized_keys `environment=`): trusted, so not
   * filtered as setEnv is; {@link environment} places them where sshd does.
   */
  setServerEnv(name: string, value: string): void {
    this.serverEnv[name] = value;
  }

  openShell(proto: SSHSessionProcessProtocol): void {
    this.spawn(proto, loginShellArgv(this.avatar.getShell()));
  }

  execCommand(proto: SSHSessionProcessProtocol, command: string): void {
    this.spawn(proto, execArgv(this.avatar.getShell(), command));
  }

  /**
   * sshd's `Subsystem`: runs the realm's command line for `subsystem` exactly like an exec
   * request. False when the realm has none of that name (the avatar's in-process ones are next).
   */
  execSubsystem(proto: SSHSessionProcessProtocol, subsystem: string): boolean {
    const subsystems = this.avatar.options.subsystems ?? DEFAULT_SUBSYSTEMS;
    const command = Object.hasOwn(subsystems, subsystem) ? subsystems[subsystem] : undefined;
    if (command === undefined) return false;
    this.log.info("subsystem {subsystem} for {user}: {command}", { subsystem, user: this.avatar.pwd.name, command });
    this.execCommand(proto, command);
    return true;
  }

  /** Starts the user's shell with `argv` as the user; throws (refusing the request) when it cannot. */
  private spawn(proto: SSHSessionProcessProtocol, argv: string[]): void {
    const options = this.avatar.options;
    const ptyModule = loadedNodePty();
    const tty = this.term !== undefined && ptyModule !== undefined;
    const settings = this.avatar.runAsSettings();
    let cmd;
    try {
      cmd = commandAsUser(this.avatar.pwd, this.avatar.getShell(), argv, { tty, home: this.avatar.getHomeDir() }, settings);
    } catch (e) {
      if (e instanceof RunAsUnavailable) this.log.error("session refused: {reason}", { reason: e.message });
      throw e;
    }
    const { cwd } = cmd;
    const env = this.environment();
    if (tty) {
      // node-pty execs `file` with argv[0] = file; for a terminal commandAsUser always makes it so.
      const geometry = { name: this.term!, cols: this.winSize[1] || 80, rows: this.winSize[0] || 24, cwd, env };
      const reactor = options.reactor ?? defaultReactor;
      const launcher =
        options.processLauncher !== false && reactor !== undefined && "processLauncher" in reactor
          ? (reactor as { processLauncher: ProcessLauncher }).processLauncher
          : undefined;
      const p: PtyProcess =
        launcher !== undefined
          ? launcher.spawnPty({ file: cmd.file, args: cmd.argv.slice(1), ...geometry })
          : ptyModule.spawn(cmd.file, cmd.argv.slice(1), { ...geometry, encoding: null });
      this.pty = p;
      const t = new PtyTransport(p, proto);
      this.process = t;
      proto.makeConnection(t);
      return;
    }
    // The reactor is loaded lazily so that importing this module never starts one; spawning waits
    // for it only the first time.
    const start = (reactor: IReactorProcess): void => {
      this.process = reactor.spawnProcess(proto, cmd.file, cmd.argv, { env, path: cwd, launcher: options.processLauncher !== false });
      if (this.eofPending) this.process.closeStdin();
    };
    if (options.reactor !== undefined) start(options.reactor);
    else if (defaultReactor !== undefined) start(defaultReactor);
    else {
      void reactorFor(undefined).then(start, (e: unknown) => {
        this.log.failure("cannot load the reactor to spawn {file}", e, "error", { file: cmd.file });
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
      if (!(e instanceof ProcessExitedAlready)) this.log.failure("could not hang up", e, "warn");
    }
    p.loseConnection();
    this.log.info("shell closed");
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
