/**
 * Shared by the `server_*` interop tests: starts OUR SSH server (SSHFactory + SSHUserAuthServer +
 * SSHConnection + a cred portal) on 127.0.0.1 on a free port, with fresh host keys, an in-memory
 * user `alice` (password and an ed25519 key made by ssh-keygen), and either the Unix realm (real
 * commands through reactor.spawnProcess) or the in-process realm. Everything our server logs while
 * the test runs is kept, so tests can check that bad input was logged and nothing crashed.
 *
 * The Unix realm maps the login `alice` explicitly (its `lookupUser`) to the account the tests run
 * as, with `/bin/sh` as shell and a temp dir as home: root's bash would read ~/.bashrc (pyenv
 * start-up, 0.6 s a command) because SSH_CLIENT is set, which measures the shell, not SSH. Other
 * names are refused, as a realm without a fallback must.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import type { AvatarId } from "@twisted-ts/cred/checkers";
import { InMemoryUsernamePasswordDatabaseDontUse, PAMPasswordChecker } from "@twisted-ts/cred/checkers";
import type { InterfaceToken } from "@twisted-ts/cred/interfaces";
import { Portal, type IRealm, type LoginResult } from "@twisted-ts/cred/portal";
import type { IAddress, ITransport } from "@twisted-ts/internet/interfaces";
import { ClientFactory, Protocol } from "@twisted-ts/internet/protocol";
import { addObserver, formatEvent, removeObserver, type LogEvent } from "@twisted-ts/internet/log";
import { reactor } from "@twisted-ts/internet/reactor";
import { HAProxyWrappingFactory, serverFromString } from "@twisted-ts/internet/endpoints";
import { fail, succeed, type Deferred } from "@twisted-ts/internet/defer";
import type { Failure } from "@twisted-ts/internet/failure";
import { checkers, error, unix } from "@twisted-ts/conch";
import { authopt, common, connection, factory, forwarding, keys, service, transport, userauth } from "@twisted-ts/conch/ssh";
import { SYSTEM_PYTHON, requirePythonModule, runCommand, tempDir } from "../_support/peers.js";
import { sshKeygen } from "../_support/sshd.js";

export const USER = "alice";
export const PASSWORD = "correct horse battery";

export type HostKeyType = "ed25519" | "ecdsa" | "rsa";

export interface ServerOptions {
  /** "unix" (default): real commands; "inprocess": the given in-process shell and commands. */
  realm?: "unix" | "inprocess";
  /** Options of the in-process realm. */
  inProcess?: unix.InProcessOptions;
  /** Host key types (default ed25519 only). */
  hostKeyTypes?: HostKeyType[];
  /** The ssh-connection service class (e.g. one with a lower `maxOpenChannels`). */
  connectionClass?: new () => connection.SSHConnection;
  /** Session channels one connection may have open (default: OpenSSH's MaxSessions, 10). */
  maxSessions?: number;
  /** Key exchange algorithms the server offers, in order (default: the library's list). */
  keyExchanges?: string[];
  /** Seconds each connection has to log in (default: `transport.DEFAULT_LOGIN_GRACE_TIME`). */
  loginGraceTime?: number;
  /** The moduli file for group exchange (default: none, the built-in RFC 3526 groups). */
  moduliPath?: string;
  /**
   * alice's authorized_keys text, given her public key line: written to `<dir>/authorized_keys`
   * and read with `readAuthorizedKeyFile`, options and all (default: the key alone, no options).
   */
  authorizedKeys?: (keyPub: string) => string;
  /** Connections begin with a PROXY protocol header (the server sits behind a load balancer). */
  proxyProtocol?: boolean;
  /**
   * Listen through this server endpoint description instead (`serverFromString`), e.g.
   * `haproxy:tcp:0:interface=127.0.0.1`; port 0 takes a free port.
   */
  endpoint?: string;
  /** Host certificates to present, made from the host keys (by SSH key type). */
  hostCertificates?: (hostKeys: Record<string, keys.Key>) => keys.Certificate[];
  /** Called with the publickey checker before the server starts (trusted user CA keys, …). */
  configureKeyChecker?: (checker: checkers.SSHPublicKeyChecker) => void;
  /** The factory's `authSettings` (sshd_config's PermitUserEnvironment, PermitTTY, …). */
  authSettings?: Partial<authopt.ServerAuthSettings>;
  /** The factory's `forwardingPolicy` (sshd_config's AllowTcpForwarding, PermitOpen, GatewayPorts, …). */
  forwardingPolicy?: Partial<forwarding.ForwardingPolicy>;
  /** The login name the password and key are for (default {@link USER}). */
  user?: string;
  /**
   * Options of the Unix realm over the defaults (which map only {@link USER} to the current account,
   * with `/bin/sh` and the temp home): e.g. `{ lookupUser: unix.getpwnam }` for real accounts.
   */
  unixOptions?: unix.UnixRealmOptions;
  /** Called with each avatar the realm makes and the user's home (to add subsystems, …). */
  configureAvatar?: (avatar: unix.UnixConchUser | unix.InProcessConchUser, home: string) => void;
  /** sshd's ClientAliveInterval and ClientAliveCountMax (the factory's; off by default). */
  clientAlive?: { interval: number; countMax: number };
  /**
   * The factory's `perSourcePenaltyExemptList` (default `["127.0.0.1"]`: the tests' own clients,
   * which fail on purpose, are never shut out; penalty tests connect from 127.0.0.2 and up).
   */
  perSourcePenaltyExemptList?: string[];
  /**
   * The factory's `maxStartups` (default `{ start: 1000, rate: 30, full: 1000 }`: some tests open
   * more than sshd's 10 unauthenticated connections at once on purpose).
   */
  maxStartups?: factory.MaxStartups;
  /** The factory's `perSourcePenalties` (default: OpenSSH 9.8's). */
  perSourcePenalties?: Partial<factory.PerSourcePenalties>;
}

export interface OurServer {
  port: number;
  /** Temp dir of this server: keys, the user's home, known_hosts. */
  dir: string;
  /** The Unix user's home (cwd of its commands). */
  home: string;
  user: string;
  password: string;
  /** alice's ed25519 private key (OpenSSH format, no passphrase) and its public line. */
  keyPath: string;
  keyPub: string;
  /** Host keys by SSH key type. */
  hostKeys: Record<string, keys.Key>;
  /** A known_hosts file naming `[127.0.0.1]:port` with every host key. */
  knownHosts: string;
  /** Logins so far (avatars the realm made). */
  logins: () => number;
  /** The userauth method of each login so far. */
  loginMethods: () => string[];
  /** Every event our code logged since the server started. */
  logs: LogEvent[];
  /** The log as text lines "level namespace: message". */
  logText: () => string;
  /** Events at level critical (unhandled errors); a healthy server logs none. */
  criticals: () => LogEvent[];
  /** Server transports made and not yet lost: what the server still holds. */
  liveConnections: () => number;
  /** The host `getPeer()` reported to each server transport at `connectionMade`, in order. */
  peers: () => string[];
  /** The server's factory (its per-source limits, …). */
  factory: factory.SSHFactory;
}

/**
 * An in-process shell for pty tests: greets with `term=<TERM> size=<cols>x<rows> TT=<$TT_VAR>`,
 * answers `size` with `now <cols>x<rows>` (after window-change), other lines with `echo: <line>`, and
 * ends with exit status 5 on `exit`.
 */
export class TerminalShell extends Protocol<ITransport> {
  private buf = "";
  constructor(private readonly session: unix.InProcessSession) {
    super();
  }
  override connectionMade(): void {
    const [rows, cols] = this.session.winSize;
    this.transport.write(`term=${this.session.term ?? "none"} size=${cols}x${rows} TT=${this.session.env["TT_VAR"] ?? ""}\r\n`);
  }
  override dataReceived(data: Uint8Array): void {
    this.buf += Buffer.from(data).toString("latin1");
    let i: number;
    while ((i = this.buf.search(/[\r\n]/)) >= 0) {
      const line = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 1);
      if (line === "") continue;
      if (line === "exit") {
        (this.transport as unknown as { exit(status: number): void }).exit(5);
        return;
      }
      if (line === "size") {
        const [rows, cols] = this.session.winSize;
        this.transport.write(`now ${cols}x${rows}\r\n`);
        continue;
      }
      this.transport.write(`echo: ${line}\r\n`);
    }
  }
}

/** Server options for the in-process realm serving {@link TerminalShell}. */
export const TERMINAL_SHELL: ServerOptions = { realm: "inprocess", inProcess: { shell: (s) => new TerminalShell(s) } };

/** Maps {@link USER}, and nothing else, to the account running the tests with `home` and /bin/sh. */
export function testUserLookup(home: string): unix.UserLookup {
  const me = userInfo();
  return (name) => (name === USER ? { name: me.username, uid: me.uid, gid: me.gid, home, shell: "/bin/sh" } : undefined);
}

class CountingRealm implements IRealm {
  count = 0;
  readonly methods: string[] = [];
  constructor(private readonly make: (name: string) => unknown) {}
  requestAvatar(avatarId: AvatarId, mind: unknown, ...interfaces: InterfaceToken<unknown>[]): LoginResult<unknown> {
    this.count++;
    this.methods.push((mind as { method?: string } | undefined)?.method ?? "?");
    const name = typeof avatarId === "string" ? avatarId : Buffer.from(avatarId as Uint8Array).toString("utf8");
    const avatar = this.make(name);
    const logout = (avatar as { logout?: () => void }).logout;
    return [interfaces[0]!, avatar, () => logout?.call(avatar)];
  }
}

/** Failed attempts are answered after 0.1 s instead of 1 s, so clients that probe are quick. */
class QuickUserAuthServer extends userauth.SSHUserAuthServer {
  override passwordDelay = 0.1;
}

/** Starts our server for one test; it stops listening when the test ends. */
export async function startOurServer(t: TestContext, opts: ServerOptions = {}): Promise<OurServer> {
  const dir = tempDir(t, "twisted-ts-ourserver-");
  const home = join(dir, "home");
  mkdirSync(home, { recursive: true });
  const [keyPath, keyPub] = await sshKeygen(dir, "id_ed25519", "ed25519");

  const hostKeys: Record<string, keys.Key> = {};
  for (const type of opts.hostKeyTypes ?? ["ed25519"]) {
    const k = keys.Key.generate(type, type === "rsa" ? { bits: 2048 } : {});
    hostKeys[k.sshType()] = k;
  }

  const inProcessOptions = opts.inProcess ?? {};
  const unixOptions: unix.UnixRealmOptions = { lookupUser: testUserLookup(home), ...opts.unixOptions };
  const realm = new CountingRealm((name) => {
    const avatar = opts.realm === "inprocess" ? new unix.InProcessConchUser(name, inProcessOptions) : new unix.UnixConchUser(name, unixOptions);
    opts.configureAvatar?.(avatar, home);
    return avatar;
  });
  const user = opts.user ?? USER;
  const passwords = new InMemoryUsernamePasswordDatabaseDontUse({ [user]: PASSWORD });
  let userKeys: Array<keys.Key | checkers.AuthorizedKey> = [keys.Key.fromString(keyPub)];
  if (opts.authorizedKeys !== undefined) {
    const path = join(dir, "authorized_keys");
    writeFileSync(path, opts.authorizedKeys(keyPub));
    userKeys = checkers.readAuthorizedKeyFile(readFileSync(path, "utf8"));
  }
  const keyChecker = new checkers.SSHPublicKeyChecker(new checkers.InMemorySSHKeyDB({ [user]: userKeys }));
  opts.configureKeyChecker?.(keyChecker);
  const portal = new Portal(realm, [
    keyChecker,
    passwords,
    new PAMPasswordChecker(passwords),
  ]);

  const f = new factory.SSHFactory();
  f.moduliPath = opts.moduliPath;
  f.privateKeys = hostKeys;
  if (opts.hostCertificates !== undefined) f.hostCertificates = opts.hostCertificates(hostKeys);
  f.portal = portal;
  if (opts.authSettings !== undefined) f.authSettings = opts.authSettings;
  if (opts.clientAlive !== undefined) {
    f.clientAliveInterval = opts.clientAlive.interval;
    f.clientAliveCountMax = opts.clientAlive.countMax;
  }
  if (opts.forwardingPolicy !== undefined) f.forwardingPolicy = opts.forwardingPolicy;
  f.perSourcePenaltyExemptList = opts.perSourcePenaltyExemptList ?? ["127.0.0.1"];
  f.maxStartups = opts.maxStartups ?? { start: 1000, rate: 30, full: 1000 };
  if (opts.perSourcePenalties !== undefined) f.perSourcePenalties = opts.perSourcePenalties;
  const { keyExchanges, loginGraceTime } = opts;
  let live = 0;
  const peers: string[] = [];
  f.protocol = class extends transport.SSHServerTransport {
    override connectionMade(): void {
      live++;
      const peer = this.getPeer();
      peers.push("host" in peer ? peer.host : "?");
      if (keyExchanges !== undefined) this.supportedKeyExchanges = keyExchanges;
      if (loginGraceTime !== undefined) this.loginGraceTime = loginGraceTime;
      super.connectionMade();
    }
    override connectionLost(reason: Failure): void {
      live--;
      super.connectionLost(reason);
    }
  };
  let Conn = opts.connectionClass ?? connection.SSHConnection;
  if (opts.maxSessions !== undefined) {
    const limit = opts.maxSessions;
    const Base = Conn;
    Conn = class extends Base {
      override maxSessions = limit;
    };
  }
  f.services = { "ssh-userauth": QuickUserAuthServer, "ssh-connection": Conn };

  const logs: LogEvent[] = [];
  const observer = (e: LogEvent): void => {
    logs.push(e);
  };
  addObserver(observer);
  let listening: { stopListening(): unknown; getHost(): IAddress };
  if (opts.endpoint !== undefined) {
    listening = await serverFromString(reactor, opts.endpoint).listen(f);
  } else {
    const tcp = reactor.listenTCP(0, opts.proxyProtocol === true ? new HAProxyWrappingFactory(f) : f, 50, "127.0.0.1");
    await tcp.whenListening();
    listening = tcp;
  }
  t.after(async () => {
    await listening.stopListening();
    removeObserver(observer);
  });
  const host = listening.getHost();
  const port = "port" in host ? host.port : 0;

  const knownHosts = join(dir, "known_hosts");
  writeFileSync(
    knownHosts,
    Object.values(hostKeys)
      .map((k) => `[127.0.0.1]:${port} ${k.public().toString("openssh")}\n`)
      .join(""),
  );

  return {
    port,
    dir,
    home,
    user,
    password: PASSWORD,
    keyPath,
    keyPub,
    hostKeys,
    knownHosts,
    logins: () => realm.count,
    loginMethods: () => [...realm.methods],
    logs,
    logText: () => logs.map((e) => `${e.log_level} ${e.log_namespace}: ${formatEvent(e)}`).join("\n"),
    criticals: () => logs.filter((e) => e.log_level === "critical"),
    liveConnections: () => live,
    peers: () => [...peers],
    factory: f,
  };
}

/** Where OpenSSH's `ssh` logs in by key: an {@link OurServer}, or a real sshd set up alike. */
export interface SshTarget {
  port: number;
  keyPath: string;
  /** A known_hosts file pinning the server's host key for `[127.0.0.1]:port`. */
  knownHosts: string;
}

/**
 * `ssh` options (before the destination) for a batch publickey login to `target` on 127.0.0.1,
 * with no config file and the host key pinned (no accept-new), then `extra`. `portFlag` is `-P`
 * for `scp` and `sftp` (the rest is the same for them and `sshfs`).
 */
export function sshClientArgs(target: SshTarget, extra: string[] = [], portFlag: "-p" | "-P" = "-p"): string[] {
  return [
    "-F", "/dev/null",
    portFlag, String(target.port),
    "-o", `UserKnownHostsFile=${target.knownHosts}`,
    "-o", "StrictHostKeyChecking=yes",
    "-o", "BatchMode=yes",
    "-o", "IdentitiesOnly=yes",
    "-o", "PreferredAuthentications=publickey",
    "-o", "ConnectTimeout=10",
    "-i", target.keyPath,
    ...extra,
  ];
}

/** A small environment for client programs: PATH, HOME (the server's temp dir) and extras. */
export function clientEnv(server: OurServer, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: server.dir, LANG: "C.UTF-8", ...extra };
}

// ---- a raw client: our transport and userauth, then connection-layer messages sent by hand ----

/** One message received by the {@link RawConnection}: number and payload (after the number). */
export interface RawMessage {
  num: number;
  payload: Uint8Array;
  reader: () => common.SSHReader;
}

/**
 * The `ssh-connection` service of a client that we drive by hand: it sends whatever bytes a test
 * builds (however wrong) and keeps every message the server sends, for `next()` to pick out.
 */
export class RawConnection extends service.SSHService {
  override name = "ssh-connection";
  private readonly inbox: RawMessage[] = [];
  private readonly waiters: Array<{ pred: (m: RawMessage) => boolean; resolve: (m: RawMessage) => void; reject: (e: Error) => void }> = [];
  /** Set when the connection ended: the disconnect (ours or the server's) or the TCP reason. */
  endedWith: Error | undefined = undefined;
  /** Fires once the connection has ended. */
  readonly ended: Promise<Error>;
  private markEnded!: (e: Error) => void;
  /** @internal */
  onStarted: () => void = () => undefined;
  transportRef: transport.SSHClientTransport | undefined = undefined;

  constructor() {
    super();
    this.ended = new Promise((resolve) => (this.markEnded = resolve));
  }

  override serviceStarted(): void {
    this.onStarted();
  }

  override packetReceived(num: number, payload: Uint8Array): void {
    const m: RawMessage = { num, payload, reader: () => new common.SSHReader(payload) };
    const i = this.waiters.findIndex((w) => w.pred(m));
    if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(m);
    else this.inbox.push(m);
  }

  /** Sends one message as given. */
  send(num: number, payload: Uint8Array | common.SSHWriter = new Uint8Array(0)): void {
    this.requireTransport().sendPacket(num, payload instanceof common.SSHWriter ? payload.finish() : payload);
  }

  /** The first message (already received or to come) that `pred` accepts; fails if the connection ends first. */
  next(pred: (m: RawMessage) => boolean = () => true, ms = 15_000): Promise<RawMessage> {
    const i = this.inbox.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]!);
    if (this.endedWith !== undefined) return Promise.reject(this.endedWith);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const k = this.waiters.indexOf(w);
        if (k >= 0) this.waiters.splice(k, 1);
        reject(new Error(`no matching message within ${ms} ms; inbox: ${this.inbox.map((m) => m.num).join(",")}`));
      }, ms);
      const w = {
        pred,
        resolve: (m: RawMessage) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.waiters.push(w);
    });
  }

  /** Messages received and not taken yet. */
  pending(): RawMessage[] {
    return [...this.inbox];
  }

  /** @internal */
  _ended(e: Error): void {
    this.endedWith = e;
    for (const w of this.waiters.splice(0)) w.reject(e);
    this.markEnded(e);
  }

  /** Closes the TCP connection. */
  close(): void {
    this.transportRef?.loseConnection();
  }

  // -- message builders (RFC 4254) --

  /** CHANNEL_OPEN "session" as `sender` with the given window and maximum packet. */
  openSession(sender: number, window = 1 << 21, maxPacket = 32768, type = "session"): void {
    this.send(connection.MSG_CHANNEL_OPEN, new common.SSHWriter().string(type).uint32(sender).uint32(window).uint32(maxPacket));
  }

  /** Waits for the answer to our open of `sender`: [server channel, window, max packet] or a failure code. */
  async opened(sender: number): Promise<{ ok: true; remote: number; window: number; maxPacket: number } | { ok: false; reason: number; description: string }> {
    const m = await this.next(
      (x) => (x.num === connection.MSG_CHANNEL_OPEN_CONFIRMATION || x.num === connection.MSG_CHANNEL_OPEN_FAILURE) && x.reader().uint32() === sender,
    );
    const r = m.reader();
    r.uint32();
    if (m.num === connection.MSG_CHANNEL_OPEN_FAILURE) {
      const reason = r.uint32();
      return { ok: false, reason, description: Buffer.from(r.string()).toString("utf8") };
    }
    return { ok: true, remote: r.uint32(), window: r.uint32(), maxPacket: r.uint32() };
  }

  /** CHANNEL_REQUEST to the server's channel `remote`. */
  request(remote: number, type: string, wantReply: boolean, data: Uint8Array = new Uint8Array(0)): void {
    this.send(connection.MSG_CHANNEL_REQUEST, new common.SSHWriter().uint32(remote).string(type).boolean(wantReply).raw(data));
  }

  /** The next message for our channel `local` whose number is in `nums`. */
  forChannel(local: number, nums: number[], ms?: number): Promise<RawMessage> {
    return this.next((x) => nums.includes(x.num) && x.payload.length >= 4 && x.reader().uint32() === local, ms);
  }

  /**
   * Runs `command` on a new session channel numbered `local` and collects its output until the
   * server closes the channel (then closes our side).
   */
  async exec(local: number, command: string): Promise<{ stdout: string; stderr: string; status: number | undefined; signal: string | undefined; order: string[] }> {
    this.openSession(local);
    const o = await this.opened(local);
    if (!o.ok) throw new Error(`session open refused: ${o.reason} ${o.description}`);
    this.request(o.remote, "exec", true, common.NS(command));
    let stdout = "";
    let stderr = "";
    let status: number | undefined;
    let signal: string | undefined;
    const order: string[] = [];
    const nums = [
      connection.MSG_CHANNEL_SUCCESS,
      connection.MSG_CHANNEL_FAILURE,
      connection.MSG_CHANNEL_DATA,
      connection.MSG_CHANNEL_EXTENDED_DATA,
      connection.MSG_CHANNEL_EOF,
      connection.MSG_CHANNEL_REQUEST,
      connection.MSG_CHANNEL_CLOSE,
      connection.MSG_CHANNEL_WINDOW_ADJUST,
    ];
    for (;;) {
      const m = await this.forChannel(local, nums);
      const r = m.reader();
      r.uint32();
      switch (m.num) {
        case connection.MSG_CHANNEL_SUCCESS:
          order.push("success");
          break;
        case connection.MSG_CHANNEL_FAILURE:
          order.push("failure");
          break;
        case connection.MSG_CHANNEL_DATA:
          if (order.at(-1) !== "data") order.push("data");
          stdout += Buffer.from(r.string()).toString("utf8");
          break;
        case connection.MSG_CHANNEL_EXTENDED_DATA:
          r.uint32();
          if (order.at(-1) !== "stderr") order.push("stderr");
          stderr += Buffer.from(r.string()).toString("utf8");
          break;
        case connection.MSG_CHANNEL_EOF:
          order.push("eof");
          break;
        case connection.MSG_CHANNEL_REQUEST: {
          const type = Buffer.from(r.string()).toString("latin1");
          r.boolean();
          order.push(type);
          if (type === "exit-status") status = r.uint32();
          if (type === "exit-signal") signal = Buffer.from(r.string()).toString("latin1");
          break;
        }
        case connection.MSG_CHANNEL_CLOSE:
          order.push("close");
          this.send(connection.MSG_CHANNEL_CLOSE, new common.SSHWriter().uint32(o.remote));
          return { stdout, stderr, status, signal, order };
        default:
          break;
      }
    }
  }
}

/** Logs in to `server` as alice by password and returns the hand-driven connection service. */
export function connectRaw(server: OurServer): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const raw = new RawConnection();
    raw.onStarted = () => resolve(raw);
    const hostKey = Object.values(server.hostKeys)[0]!;
    class PasswordAuth extends userauth.SSHUserAuthClient {
      override preferredOrder = ["password"];
      override getPassword(): Deferred<string> {
        return succeed(server.password);
      }
    }
    class RawTransport extends transport.SSHClientTransport {
      override verifyHostKey(_blob: Uint8Array, fingerprint: string): Deferred<number> {
        return fingerprint === hostKey.fingerprint() ? succeed(1) : fail(new error.ConchError("host key mismatch"));
      }
      override connectionSecure(): void {
        raw.transportRef = this;
        const auth = new PasswordAuth(server.user, raw);
        auth.whenDone().addErrback((f: Failure) => reject(f.value as Error));
        this.requestService(auth);
      }
      override connectionLost(reason: Failure): void {
        super.connectionLost(reason);
        const e = this.disconnectReason ?? (reason.value instanceof Error ? reason.value : new Error(reason.getErrorMessage()));
        raw._ended(e);
        reject(e);
      }
    }
    const f = new ClientFactory();
    f.protocol = RawTransport;
    f.clientConnectionFailed = (_c, reason) => reject(reason.value as Error);
    reactor.connectTCP("127.0.0.1", server.port, f);
  });
}

// ---- python client scripts (test/interop/peers/client_*.py) ----

/** test/interop/peers, from the compiled test/dist/interop. */
export const PEERS_DIR = fileURLToPath(new URL("../../interop/peers/", import.meta.url));

/**
 * Runs `peers/<script>` with Debian's python3 against `server` and returns the JSON it prints, or
 * undefined when `module` cannot be imported (skipped; failed under CI=true).
 */
export async function runPythonClient(
  t: TestContext,
  server: OurServer,
  script: string,
  module: string,
  hint: string,
  scenario: string,
): Promise<Record<string, unknown> | undefined> {
  if (!requirePythonModule(t, module, hint)) return undefined;
  const spec = {
    port: server.port,
    user: server.user,
    key: server.keyPath,
    password: server.password,
    known_hosts: server.knownHosts,
    scenario,
  };
  const r = await runCommand(SYSTEM_PYTHON, ["-W", "ignore", join(PEERS_DIR, script), JSON.stringify(spec)], {
    env: clientEnv(server, { PYTHONWARNINGS: "ignore" }),
    timeoutMs: 60_000,
  });
  if (r.code !== 0) throw new Error(`${script} ${scenario} exited ${r.code}: ${r.stderr}\n--- server log ---\n${server.logText()}`);
  return JSON.parse(r.stdout.toString()) as Record<string, unknown>;
}
