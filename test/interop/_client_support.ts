/**
 * Shared helper for "our client against a real server" interop tests (test/interop/client_*.test.ts):
 * connects our SSHClientTransport / SSHUserAuthClient / SSHConnection to a server with a user
 * key, checks the server's host key, and runs the scenarios every peer is put through — exec with
 * stdin/stdout/stderr and exit status, a shell with a pty, env, the sftp subsystem, bulk transfer
 * both ways with a SHA-256 check, and many channels at once on one connection.
 *
 * Bulk data is a deterministic pattern: the AES-128-CTR keystream of {@link PATTERN_KEY} (zero IV),
 * which the server produces with `openssl enc -aes-128-ctr` and we produce with node:crypto.
 */
import assert from "node:assert/strict";
import { createCipheriv, createHash, type Hash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { TestContext } from "node:test";
import { Deferred, succeed } from "@twisted-ts/internet/defer";
import type { Failure } from "@twisted-ts/internet/failure";
import type { IPushProducer } from "@twisted-ts/internet/interfaces";
import { ClientFactory } from "@twisted-ts/internet/protocol";
import { reactor } from "@twisted-ts/internet/reactor";
import { error } from "@twisted-ts/conch";
import { knownhosts } from "@twisted-ts/conch/client";
import { agent, common, connection, keys, session, transport, userauth } from "@twisted-ts/conch/ssh";
import { sshKeygen } from "../_support/sshd.js";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, spawnPeer, tempDir } from "../_support/peers.js";

/** 256 MiB: the size the issue asks for in each direction. */
export const BULK_FULL = 256 * 1024 * 1024;
/** 32 MiB: the bulk size used against the slower (Python, JavaScript) servers. */
export const BULK_SMALL = 32 * 1024 * 1024;

/** The key of the bulk pattern (AES-128-CTR keystream, zero IV). */
export const PATTERN_KEY = "000102030405060708090a0b0c0d0e0f";

/** A user key made with ssh-keygen for one test. */
export interface UserKey {
  privatePath: string;
  privateKey: string;
  publicLine: string;
}

/** Makes an ed25519 user key in a temp dir removed when the test ends. */
export async function makeUserKey(t: TestContext): Promise<UserKey> {
  const dir = tempDir(t, "twisted-ts-clientkey-");
  const [privatePath, publicLine] = await sshKeygen(dir, "id_ed25519", "ed25519");
  return { privatePath, privateKey: readFileSync(privatePath, "utf8"), publicLine };
}

/** Rejects with `what` (and the peer's log) when `p` does not settle within `ms`. */
export async function within<T>(p: PromiseLike<T>, ms: number, what: string, peerLog?: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      Promise.resolve(p),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const log = peerLog?.() ?? "";
          reject(new Error(`${what}: no result within ${ms} ms${log ? `\n--- peer output (last 4000 chars) ---\n${log.slice(-4000)}` : ""}`));
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The path of a peer script kept in test/interop/peers/ (from the compiled test/dist/interop/). */
export function peerScript(name: string): string {
  return join(dirname(fileURLToPath(import.meta.url)), "..", "..", "interop", "peers", name);
}

/**
 * Starts a server program given `port` and waits until it prints LISTENING (or exits, or 30 s
 * pass); it is killed when the test ends.
 */
export async function startListeningPeer(
  t: TestContext,
  cmd: string,
  args: (port: number) => string[],
  env?: NodeJS.ProcessEnv,
): Promise<{ port: number; output: () => string }> {
  const port = await freePort();
  const child = spawnPeer(t, cmd, args(port), env);
  const deadline = Date.now() + 30_000;
  while (!child.output().includes("LISTENING")) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${cmd} did not start:\n${child.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, output: child.output };
}

// ---- channels ---------------------------------------------------------------------------------

/**
 * A session channel with a Deferred for the open, optional streaming of stdout into a sink
 * (for bulk data, so nothing is kept), and helpers for requests.
 */
export class SessionChannel extends session.SSHSessionClientChannel {
  readonly opened = new Deferred<SessionChannel>();
  /** When set, stdout goes here instead of being kept. */
  stdoutSink: ((data: Uint8Array) => void) | undefined = undefined;
  /** Called after each chunk of stdout is kept (to wait for output). */
  onOutput: (() => void) | undefined = undefined;
  eofSeen = false;

  override channelOpen(_specificData: Uint8Array): void {
    this.opened.callback(this);
  }

  override openFailed(reason: Error): void {
    this.opened.errback(reason);
  }

  override dataReceived(data: Uint8Array): void {
    if (this.stdoutSink !== undefined) this.stdoutSink(data);
    else super.dataReceived(data);
    this.onOutput?.();
  }

  override extReceived(dataType: number, data: Uint8Array): void {
    super.extReceived(dataType, data);
    this.onOutput?.();
  }

  override eofReceived(): void {
    this.eofSeen = true;
  }

  /** A channel request with want-reply; resolves on SUCCESS, rejects on FAILURE. */
  request(type: string, data: Uint8Array | string = new Uint8Array(0)): Promise<string> {
    return this.conn.sendRequest(this, type, data, true).asPromise();
  }

  get stdoutText(): string {
    return Buffer.from(this.stdout).toString("utf8");
  }

  get stderrText(): string {
    return Buffer.from(this.stderr).toString("utf8");
  }

  /** Resolves once the text received on stdout matches `re`. */
  waitForOutput(re: RegExp): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (re.test(this.stdoutText)) {
          this.onOutput = undefined;
          resolve();
        } else if (this.isClosed) reject(new Error(`channel closed before output matched ${re}; got ${JSON.stringify(this.stdoutText)}`));
      };
      this.onOutput = check;
      void this.whenClosed.asPromise().then(check);
      check();
    });
  }
}

/** What an exec brought back. */
export interface ExecResult {
  stdout: string;
  stderr: string;
  exitStatus: number | undefined;
  exitSignal: session.ExitSignal | undefined;
}

// ---- the client -------------------------------------------------------------------------------

export interface ConnectOptions {
  port: number;
  host?: string;
  user: string;
  /** The key to log in with; may be left out when `keyAgent` holds one. */
  key?: UserKey;
  /** An agent whose keys are offered first and sign through it (SSHUserAuthClient's `keyAgent`). */
  keyAgent?: agent.SSHAgentClient;
  /** Called with the connection service before it starts (to accept agent forwarding, …). */
  configureConnection?: (conn: connection.SSHConnection) => void;
  /** A `-cert.pub` line for `key`, offered instead of the plain key. */
  certificate?: string;
  /** The server's host public key as an OpenSSH line; the connection fails if another is shown. */
  hostKey?: string | undefined;
  /**
   * Check the host key with this known_hosts file (strict), as `hostname`, instead of `hostKey`;
   * the host key algorithms put certificates first when it names a CA for the host.
   */
  knownHosts?: { path: string; hostname: string };
  /** Cipher preference (default: the transport's). */
  ciphers?: string[];
  /** MAC preference (default: the transport's). */
  macs?: string[];
  /** Key exchange preference (default: the transport's). */
  keyExchanges?: string[];
  /** For error messages. */
  peerLog?: () => string;
  /** Answer host key checks this many ms later (as a known_hosts lookup or a prompt would). */
  verifyDelayMs?: number;
}

/** A logged-in connection of our client. */
export class Client {
  constructor(
    readonly conn: connection.SSHConnection,
    readonly sshTransport: transport.SSHClientTransport,
    readonly peerLog: () => string,
  ) {}

  /** Opens a session channel and waits for the confirmation. */
  async openSession(ch: SessionChannel = new SessionChannel()): Promise<SessionChannel> {
    this.conn.openChannel(ch);
    return within(ch.opened.asPromise(), 30_000, "session channel open", this.peerLog);
  }

  /** Runs `command` with `stdin` (then EOF) and optional env requests; collects everything. */
  async exec(command: string, opts: { stdin?: Uint8Array | string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<ExecResult> {
    const ch = await this.openSession();
    for (const [name, value] of Object.entries(opts.env ?? {})) await ch.request("env", session.packRequest_env(name, value));
    await ch.request("exec", common.NS(command));
    if (opts.stdin !== undefined) ch.write(opts.stdin);
    ch.conn.sendEOF(ch);
    await within(ch.whenClosed.asPromise(), opts.timeoutMs ?? 30_000, `exec ${JSON.stringify(command)}`, this.peerLog);
    return { stdout: ch.stdoutText, stderr: ch.stderrText, exitStatus: ch.exitStatus, exitSignal: ch.exitSignal };
  }

  /** Closes the connection. */
  close(): void {
    this.sshTransport.loseConnection();
  }
}

/** Connects our client to `host:port`, logs in with `key` by publickey, and resolves once the connection service runs. */
export async function connectClient(opts: ConnectOptions): Promise<Client> {
  const peerLog = opts.peerLog ?? (() => "");
  const ready = new Deferred<Client>();
  const expected = opts.hostKey === undefined ? undefined : keys.Key.fromString(opts.hostKey);

  class Conn extends connection.SSHConnection {
    override serviceStarted(): void {
      super.serviceStarted();
      if (!ready.called) ready.callback(new Client(this, this.transport as transport.SSHClientTransport, peerLog));
    }
  }

  class Auth extends userauth.SSHUserAuthClient {
    override preferredOrder = ["publickey"];
    private offered = false;
    override getPublicKey() {
      if (this.offered || opts.key === undefined) return undefined;
      this.offered = true;
      return opts.certificate ?? keys.getPublicKeyString({ data: opts.key.publicLine });
    }
    override getPrivateKey() {
      if (opts.key === undefined) return undefined;
      return succeed(keys.getPrivateKeyObject({ data: opts.key.privateKey }));
    }
    override getPassword() {
      return undefined;
    }
  }

  class Transport extends transport.SSHClientTransport {
    override supportedCiphers: string[] = [...(opts.ciphers ?? transport.DEFAULT_CIPHERS)];
    override supportedMACs: string[] = [...(opts.macs ?? transport.DEFAULT_MACS)];
    override supportedKeyExchanges: string[] = [...(opts.keyExchanges ?? transport.DEFAULT_KEY_EXCHANGES)];
    override supportedPublicKeys: string[] =
      opts.knownHosts === undefined
        ? [...transport.DEFAULT_PUBLIC_KEYS]
        : knownhosts.hostKeyAlgorithmsFor(knownhosts.KnownHostsFile.fromPath(opts.knownHosts.path), opts.knownHosts.hostname, opts.port, transport.DEFAULT_PUBLIC_KEYS);
    override verifyHostKey(pubKey: Uint8Array, _fingerprint: string) {
      if (opts.knownHosts !== undefined) {
        return knownhosts.verifyHostKey(pubKey, { knownHosts: opts.knownHosts.path, hostname: opts.knownHosts.hostname, port: opts.port, policy: "strict" });
      }
      if (expected !== undefined && !common.bytesEqual(pubKey, expected.blob())) {
        return Promise.reject(new error.ConchError("the server showed another host key"));
      }
      if (opts.verifyDelayMs !== undefined) {
        const d = new Deferred<boolean>();
        setTimeout(() => d.callback(true), opts.verifyDelayMs);
        return d;
      }
      return succeed(true);
    }
    override connectionSecure(): void {
      const conn = new Conn();
      opts.configureConnection?.(conn);
      const auth = new Auth(opts.user, conn, opts.keyAgent !== undefined ? { keyAgent: opts.keyAgent } : {});
      auth.whenDone().addErrback((f: Failure) => {
        if (!ready.called) ready.errback(f);
      });
      this.requestService(auth);
    }
    override connectionLost(reason: Failure): void {
      super.connectionLost(reason);
      if (!ready.called) ready.errback(reason);
    }
  }

  const factory = new ClientFactory();
  factory.protocol = Transport;
  reactor.connectTCP(opts.host ?? "127.0.0.1", opts.port, factory);
  return within(ready.asPromise(), 60_000, `login to ${opts.host ?? "127.0.0.1"}:${opts.port}`, peerLog);
}

// ---- scenarios --------------------------------------------------------------------------------

/**
 * exec with stdin, stdout, stderr and an exit status: `cat` echoes stdin, a line goes to stderr,
 * the command exits 3.
 */
export async function checkExec(client: Client): Promise<void> {
  const stdin = "hello from twisted-ts\nsecond line\n";
  const r = await client.exec("cat; echo to-stderr >&2; exit 3", { stdin });
  assert.equal(r.stdout, stdin);
  assert.equal(r.stderr, "to-stderr\n");
  assert.equal(r.exitStatus, 3);
  assert.equal(r.exitSignal, undefined);
  const t = await client.exec("true");
  assert.equal(t.exitStatus, 0);
}

/** A command killed by a signal: exit-signal TERM instead of an exit status. */
export async function checkExitSignal(client: Client): Promise<void> {
  const r = await client.exec("kill -TERM $$");
  assert.equal(r.exitSignal?.signal, "TERM", `exit-signal expected, got status ${r.exitStatus}`);
}

/** env: an LC_* variable (accepted by every server's default policy) reaches the command. */
export async function checkEnv(client: Client): Promise<void> {
  const r = await client.exec('printf "%s" "$LC_TWISTED_TS"', { env: { LC_TWISTED_TS: "hello env=1 ü" } });
  assert.equal(r.stdout, "hello env=1 ü");
  assert.equal(r.exitStatus, 0);
}

/**
 * env on a server that does not take env requests (Dropbear 2022.83 has none): the request fails
 * with ChannelRequestFailedError, and the same channel still runs a command, without the variable.
 */
export async function checkEnvRefused(client: Client): Promise<void> {
  const ch = await client.openSession();
  await assert.rejects(ch.request("env", session.packRequest_env("LC_TWISTED_TS", "refused")), error.ChannelRequestFailedError);
  await ch.request("exec", common.NS('printf "[%s]" "$LC_TWISTED_TS"'));
  ch.conn.sendEOF(ch);
  await within(ch.whenClosed.asPromise(), 30_000, "exec after a refused env", client.peerLog);
  assert.equal(ch.stdoutText, "[]");
  assert.equal(ch.exitStatus, 0);
}

/**
 * A shell with a pty: pty-req 24x80 then shell; `stty size` and `tty` run in it; a window-change
 * to 40x100 is seen by the next `stty size`; `exit 7` ends it with exit status 7.
 */
export async function checkPtyShell(client: Client, opts: { windowChange?: boolean; timeoutMs?: number } = {}): Promise<void> {
  const ms = opts.timeoutMs ?? 120_000;
  const ch = await client.openSession();
  await ch.request("pty-req", session.packRequest_pty_req("xterm", [24, 80, 0, 0], [[53 /* ECHO */, 1]]));
  await ch.request("shell");
  // $((6*7)) is only 42 in the command's output, never in the terminal's echo of the command.
  ch.write("stty size; tty; echo READY$((6*7))\n");
  await within(ch.waitForOutput(/READY42/), ms, "pty shell: first command", client.peerLog);
  const first = ch.stdoutText;
  assert.match(first, /\b24 80\b/, `stty size in the pty: ${JSON.stringify(first)}`);
  assert.match(first, /\/dev\/(pts\/\d+|tty\w*)/, `tty names a terminal: ${JSON.stringify(first)}`);
  if (opts.windowChange !== false) {
    await client.conn.sendRequest(ch, "window-change", session.packRequest_window_change([40, 100, 0, 0]), false).asPromise();
    // window-change has no reply: a server may resize the terminal after the shell has already
    // read the next command, so ask again (a few times) until the new size shows.
    let resized = false;
    for (let i = 0; i < 10 && !resized; i++) {
      const before = ch.stdoutText.length;
      ch.write(`stty size; echo RESIZED${i}X$((6*7))\n`);
      await within(ch.waitForOutput(new RegExp(`RESIZED${i}X42`)), ms, "pty shell: after window-change", client.peerLog);
      resized = /\b40 100\b/.test(ch.stdoutText.slice(before));
    }
    assert.ok(resized, `stty size after window-change: ${JSON.stringify(ch.stdoutText)}`);
  }
  ch.write("exit 7\n");
  await within(ch.whenClosed.asPromise(), ms, "pty shell: exit", client.peerLog);
  assert.equal(ch.exitStatus, 7);
  assert.equal(ch.stderr.length, 0, "a pty sends everything as data, nothing as stderr");
}

const FXP_INIT = 1;
const FXP_VERSION = 2;
const FXP_REALPATH = 16;
const FXP_NAME = 104;
const FXP_STATUS = 101;

/** Reads one length-prefixed SFTP packet from the front of `buf`, or undefined if incomplete. */
function sftpPacket(buf: Uint8Array): Uint8Array | undefined {
  if (buf.length < 4) return undefined;
  const len = new DataView(buf.buffer, buf.byteOffset).getUint32(0);
  return buf.length >= 4 + len ? buf.subarray(4, 4 + len) : undefined;
}

/**
 * The `sftp` subsystem: SSH_FXP_INIT(3) is answered with SSH_FXP_VERSION(3), and
 * SSH_FXP_REALPATH(".") with an SSH_FXP_NAME holding an absolute path.
 */
export async function checkSftpSubsystem(client: Client): Promise<void> {
  const ch = await client.openSession();
  await ch.request("subsystem", common.NS("sftp"));
  ch.write(new common.SSHWriter().uint32(5).byte(FXP_INIT).uint32(3).finish().slice());
  await within(
    new Promise<void>((resolve, reject) => {
      ch.onOutput = () => {
        if (sftpPacket(ch.stdout) !== undefined) resolve();
      };
      void ch.whenClosed.asPromise().then(() => reject(new Error("sftp channel closed before VERSION")));
    }),
    30_000,
    "sftp VERSION",
    client.peerLog,
  );
  const version = new common.SSHReader(sftpPacket(ch.stdout)!);
  assert.equal(version.byte(), FXP_VERSION);
  assert.equal(version.uint32(), 3);
  const versionLength = 4 + sftpPacket(ch.stdout)!.length;
  const realpath = new common.SSHWriter().byte(FXP_REALPATH).uint32(7).string(".").finish().slice();
  ch.write(common.concatBytes(new common.SSHWriter().uint32(realpath.length).finish().slice(), realpath));
  await within(
    new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (sftpPacket(ch.stdout.subarray(versionLength)) !== undefined) resolve();
      };
      ch.onOutput = check;
      check();
      void ch.whenClosed.asPromise().then(() => reject(new Error("sftp channel closed before NAME")));
    }),
    30_000,
    "sftp REALPATH",
    client.peerLog,
  );
  const name = new common.SSHReader(sftpPacket(ch.stdout.subarray(versionLength))!);
  const kind = name.byte();
  if (kind === FXP_STATUS) {
    const id = name.uint32();
    const code = name.uint32();
    assert.fail(`REALPATH answered with SSH_FXP_STATUS id ${id} code ${code}: ${Buffer.from(name.string()).toString()}`);
  }
  assert.equal(kind, FXP_NAME);
  assert.equal(name.uint32(), 7, "request id echoed");
  assert.ok(name.uint32() >= 1, "at least one name");
  const path = Buffer.from(name.string()).toString("utf8");
  assert.match(path, /^\//, `REALPATH gives an absolute path, got ${JSON.stringify(path)}`);
  // As OpenSSH's sftp does: EOF, then the server ends the subsystem and closes the channel.
  ch.conn.sendEOF(ch);
  await within(ch.whenClosed.asPromise(), 30_000, "sftp close after EOF", client.peerLog);
}

/** The pattern's AES-128-CTR keystream generator. */
function patternStream(): { next(n: number): Uint8Array } {
  const cipher = createCipheriv("aes-128-ctr", Buffer.from(PATTERN_KEY, "hex"), Buffer.alloc(16));
  const zeros = Buffer.alloc(1024 * 1024);
  return {
    next(n: number): Uint8Array {
      return cipher.update(n === zeros.length ? zeros : zeros.subarray(0, n));
    },
  };
}

/** SHA-256 (hex) of the first `n` bytes of the pattern. */
export function patternSha256(n: number): string {
  const g = patternStream();
  const h = createHash("sha256");
  for (let left = n; left > 0; ) {
    const k = Math.min(left, 1024 * 1024);
    h.update(g.next(k));
    left -= k;
  }
  return h.digest("hex");
}

/** The shell command that writes the first `n` bytes of the pattern to stdout. */
export function patternCommand(n: number): string {
  return `openssl enc -aes-128-ctr -nosalt -K ${PATTERN_KEY} -iv 00000000000000000000000000000000 -in /dev/zero 2>/dev/null | head -c ${n}`;
}

export interface BulkResult {
  bytes: number;
  seconds: number;
  mbPerSecond: number;
}

/** Server → client: `n` pattern bytes from the server, hashed as they arrive, never kept. */
export async function checkDownload(client: Client, n: number, timeoutMs = 120_000): Promise<BulkResult> {
  const ch = new SessionChannel();
  const hash: Hash = createHash("sha256");
  let received = 0;
  ch.stdoutSink = (data) => {
    received += data.length;
    hash.update(data);
  };
  await client.openSession(ch);
  const start = process.hrtime.bigint();
  await ch.request("exec", common.NS(patternCommand(n)));
  ch.conn.sendEOF(ch);
  await within(ch.whenClosed.asPromise(), timeoutMs, `download of ${n} bytes (got ${received} so far)`, client.peerLog);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  assert.equal(ch.stderrText, "");
  assert.equal(received, n, "byte count");
  assert.equal(hash.digest("hex"), patternSha256(n), "SHA-256 of the bytes received");
  assert.equal(ch.exitStatus, 0);
  return { bytes: n, seconds, mbPerSecond: n / 1e6 / seconds };
}

/**
 * Client → server: `n` pattern bytes written through the channel as a push producer (paused by
 * the server's window, so memory stays bounded), EOF, and the server's `sha256sum` compared.
 */
export async function checkUpload(client: Client, n: number, timeoutMs = 120_000): Promise<BulkResult> {
  const ch = await client.openSession();
  await ch.request("exec", common.NS("sha256sum"));
  const start = process.hrtime.bigint();
  const g = patternStream();
  const hash = createHash("sha256");
  let sent = 0;
  let paused = false;
  let done = false;
  const chunk = 256 * 1024;
  const pump = (): void => {
    while (!paused && sent < n) {
      const data = g.next(Math.min(chunk, n - sent));
      hash.update(data);
      sent += data.length;
      ch.write(data);
    }
    if (sent >= n && !done) {
      done = true;
      ch.unregisterProducer();
      ch.conn.sendEOF(ch);
    }
  };
  const producer: IPushProducer = {
    pauseProducing: () => {
      paused = true;
    },
    resumeProducing: () => {
      paused = false;
      pump();
    },
    stopProducing: () => {
      paused = true;
    },
  };
  ch.registerProducer(producer, true);
  pump();
  await within(ch.whenClosed.asPromise(), timeoutMs, `upload of ${n} bytes (sent ${sent} so far)`, client.peerLog);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  assert.equal(sent, n);
  assert.equal(ch.stderrText, "");
  assert.equal(ch.exitStatus, 0);
  assert.equal(ch.stdoutText.split(/\s/)[0], hash.digest("hex"), "the server's sha256sum of what it read");
  return { bytes: n, seconds, mbPerSecond: n / 1e6 / seconds };
}

/**
 * `count` session channels opened at once on one connection, each running `cat; exit <i % 100>`
 * with its own 64 KiB of stdin, all in flight together; each channel's output and status checked.
 */
export async function checkManyChannels(client: Client, count = 50): Promise<void> {
  const openBefore = client.conn.channels.size;
  const channels: SessionChannel[] = [];
  const inputs: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const ch = new SessionChannel();
    channels.push(ch);
    inputs.push(Buffer.from(createHash("sha512").update(`channel ${i}`).digest("hex").repeat(512)));
    client.conn.openChannel(ch);
  }
  await within(Promise.all(channels.map((c) => c.opened.asPromise())), 60_000, `${count} channel opens`, client.peerLog);
  const ids = new Set(channels.map((c) => c.id));
  assert.equal(ids.size, count, "distinct channel numbers");
  await within(
    Promise.all(channels.map((c, i) => c.request("exec", common.NS(`cat; exit ${i % 100}`)))),
    60_000,
    `${count} exec requests`,
    client.peerLog,
  );
  for (let i = 0; i < count; i++) {
    channels[i]!.write(inputs[i]!);
    channels[i]!.conn.sendEOF(channels[i]!);
  }
  await within(Promise.all(channels.map((c) => c.whenClosed.asPromise())), 120_000, `${count} channels to finish`, client.peerLog);
  for (let i = 0; i < count; i++) {
    const c = channels[i]!;
    assert.equal(c.exitStatus, i % 100, `channel ${i} exit status`);
    assert.ok(Buffer.from(c.stdout).equals(inputs[i]!), `channel ${i} echoed its own input (${c.stdout.length} of ${inputs[i]!.length} bytes)`);
  }
  assert.equal(client.conn.channels.size, openBefore, "all 50 channels forgotten once closed");
}

// ---- further checks (flow control, errors) ------------------------------------------------------

/**
 * A paused consumer: the channel is paused (`pauseProducing`) before `n` bytes are asked for, so
 * no window is given back and the server stops after one window; resumed, the rest arrives and
 * the SHA-256 matches.
 */
export async function checkPausedConsumer(client: Client, n = 8 * 1024 * 1024): Promise<void> {
  const ch = new SessionChannel();
  const hash = createHash("sha256");
  let received = 0;
  ch.stdoutSink = (data) => {
    received += data.length;
    hash.update(data);
  };
  await client.openSession(ch);
  ch.pauseProducing();
  await ch.request("exec", common.NS(patternCommand(n)));
  ch.conn.sendEOF(ch);
  // Wait until a window's worth has arrived, and then a little longer to see it stop there.
  const deadline = Date.now() + 30_000;
  while (received < ch.localWindowSize && Date.now() < deadline && !ch.isClosed) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(received, ch.localWindowSize, `paused: exactly one window (${ch.localWindowSize} bytes) arrives, got ${received}`);
  assert.equal(ch.isClosed, false);
  ch.resumeProducing();
  await within(ch.whenClosed.asPromise(), 60_000, `paused download, after resume (got ${received})`, client.peerLog);
  assert.equal(received, n);
  assert.equal(hash.digest("hex"), patternSha256(n));
  assert.equal(ch.exitStatus, 0);
}

/**
 * stdout and stderr at once, `n` bytes each (two `cat`s of one file running together; not
 * `tee /dev/fd/2`, which cannot reopen a socket, as Node gives ssh2's children): both streams
 * share the channel window (extended data counts against it too) and both arrive whole.
 */
export async function checkStdoutAndStderrBulk(client: Client, n = 4 * 1024 * 1024): Promise<void> {
  const want = patternSha256(n);
  const ch = await client.openSession();
  await ch.request("exec", common.NS(`f=$(mktemp) && ${patternCommand(n)} > "$f" && { cat "$f" & cat "$f" >&2; wait; rm -f "$f"; }`));
  ch.conn.sendEOF(ch);
  await within(ch.whenClosed.asPromise(), 60_000, "stdout+stderr bulk", client.peerLog);
  assert.equal(ch.stdout.length, n, "stdout length");
  assert.equal(ch.stderr.length, n, `stderr length${ch.stderr.length < 1000 ? `: ${JSON.stringify(ch.stderrText)}` : ""}`);
  assert.equal(createHash("sha256").update(ch.stdout).digest("hex"), want, "stdout SHA-256");
  assert.equal(createHash("sha256").update(ch.stderr).digest("hex"), want, "stderr SHA-256");
  assert.equal(ch.exitStatus, 0);
}

/** A command that does not exist: the shell's exit status 127 and its message on stderr. */
export async function checkCommandNotFound(client: Client): Promise<void> {
  const r = await client.exec("no-such-command-twisted-ts");
  assert.equal(r.exitStatus, 127);
  assert.match(r.stderr, /not found/);
  assert.equal(r.stdout, "");
}

/**
 * A channel type the server does not know: openFailed with a ChannelOpenError carrying the
 * server's reason code — OPEN_UNKNOWN_CHANNEL_TYPE (3) by RFC 4254 §5.1, though OpenSSH's sshd
 * answers every refused type with OPEN_CONNECT_FAILED (2) — and the connection goes on.
 */
export async function checkUnknownChannelType(client: Client, expectedReason: number = error.OPEN_UNKNOWN_CHANNEL_TYPE): Promise<void> {
  const ch = new SessionChannel();
  ch.name = "x-unknown@twisted-ts.invalid";
  client.conn.openChannel(ch);
  const e = await within(
    ch.opened.asPromise().then(
      () => undefined,
      (err: unknown) => err,
    ),
    30_000,
    "unknown channel type refusal",
    client.peerLog,
  );
  assert.ok(e instanceof error.ChannelOpenError, `openFailed with a ChannelOpenError, got ${String(e)}`);
  assert.equal(e.reasonCode, expectedReason);
  assert.equal(e.data, expectedReason);
  // The connection still works.
  assert.equal((await client.exec("true")).exitStatus, 0);
}

/** An unknown global request with want-reply: REQUEST_FAILURE, a GlobalRequestFailedError. */
export async function checkGlobalRequestRefused(client: Client): Promise<void> {
  await assert.rejects(
    within(client.conn.sendGlobalRequest("x-unknown@twisted-ts.invalid", new Uint8Array(0), true).asPromise(), 30_000, "global request reply", client.peerLog),
    error.GlobalRequestFailedError,
  );
}

/** RFC 4254 §6.9 "signal": TERM sent to a running `sleep` ends it with exit-signal TERM. */
export async function checkSignalRequest(client: Client): Promise<void> {
  const ch = await client.openSession();
  await ch.request("exec", common.NS("echo started; exec sleep 30"));
  await within(ch.waitForOutput(/started/), 30_000, "sleep started", client.peerLog);
  await client.conn.sendRequest(ch, "signal", common.NS("TERM"), false).asPromise();
  await within(ch.whenClosed.asPromise(), 20_000, "signal to end the command", client.peerLog);
  assert.equal(ch.exitSignal?.signal, "TERM", `exit-signal TERM expected, got status ${ch.exitStatus}`);
}

/** A request on a channel that has closed: a failed Deferred (ChannelClosedError), nothing sent. */
export async function checkRequestOnClosedChannel(client: Client): Promise<void> {
  const ch = await client.openSession();
  await ch.request("exec", common.NS("true"));
  ch.conn.sendEOF(ch);
  await within(ch.whenClosed.asPromise(), 30_000, "exec true", client.peerLog);
  await assert.rejects(client.conn.sendRequest(ch, "exec", common.NS("true"), true).asPromise(), error.ChannelClosedError);
  assert.equal((await client.exec("true")).exitStatus, 0, "the connection still works");
}

/**
 * One `write` of `n` bytes (no producer) then EOF at once: the channel queues what the window
 * does not take, sends it as WINDOW_ADJUSTs arrive, and holds the EOF until the queue is empty.
 */
export async function checkUploadOneWrite(client: Client, n = 16 * 1024 * 1024): Promise<void> {
  const data = patternStream().next(Math.min(n, 1024 * 1024));
  const big = Buffer.concat(Array.from({ length: Math.ceil(n / data.length) }, () => data)).subarray(0, n);
  const r = await client.exec("sha256sum", { stdin: big, timeoutMs: 60_000 });
  assert.equal(r.stderr, "");
  assert.equal(r.exitStatus, 0);
  assert.equal(r.stdout.split(/\s/)[0], createHash("sha256").update(big).digest("hex"));
}

/**
 * `count` channels each echoing `n` bytes through `cat` at once: data flows both ways on all
 * channels together, each with its own window, and every channel gets back exactly its bytes.
 */
export async function checkConcurrentEcho(client: Client, count = 8, n = 4 * 1024 * 1024): Promise<void> {
  const chans = await Promise.all(Array.from({ length: count }, () => client.openSession()));
  await Promise.all(chans.map((c) => c.request("exec", common.NS("cat"))));
  const inputs = chans.map((_, i) => {
    const h = createHash("sha512").update(`echo ${i}`).digest();
    return Buffer.concat(Array.from({ length: n / h.length }, () => h));
  });
  chans.forEach((c, i) => {
    c.write(inputs[i]!);
    c.conn.sendEOF(c);
  });
  await within(Promise.all(chans.map((c) => c.whenClosed.asPromise())), 120_000, `${count} concurrent echoes`, client.peerLog);
  chans.forEach((c, i) => {
    assert.equal(c.stdout.length, n, `channel ${i} length`);
    assert.ok(Buffer.from(c.stdout).equals(inputs[i]!), `channel ${i} bytes`);
    assert.equal(c.exitStatus, 0);
  });
}

/**
 * The connection drops (our side closes the TCP connection) with one channel running a command
 * and one still opening: the open one is closed (`closed()`), the opening one gets `openFailed`.
 */
export async function checkConnectionLost(client: Client): Promise<void> {
  const running = await client.openSession();
  await running.request("exec", common.NS("sleep 30"));
  const opening = new SessionChannel();
  client.conn.openChannel(opening);
  const openResult = opening.opened.asPromise().then(
    () => "opened",
    (e: unknown) => e,
  );
  client.close();
  await within(running.whenClosed.asPromise(), 30_000, "running channel closed by connection loss", client.peerLog);
  const r = await within(openResult, 30_000, "opening channel fails on connection loss", client.peerLog);
  assert.ok(r instanceof Error, `the channel still opening fails, got ${String(r)}`);
  assert.equal(running.exitStatus, undefined);
}

/**
 * A small local window (`localWindow` 16 KiB, below the 32 KiB max packet): the server must send
 * in pieces of at most the window, and our WINDOW_ADJUSTs keep `n` bytes flowing, hash checked.
 */
export async function checkSmallWindow(client: Client, n = 2 * 1024 * 1024, localWindow = 16 * 1024): Promise<void> {
  const ch = new SessionChannel({ localWindow });
  const hash = createHash("sha256");
  let received = 0;
  let largest = 0;
  ch.stdoutSink = (data) => {
    received += data.length;
    largest = Math.max(largest, data.length);
    hash.update(data);
  };
  await client.openSession(ch);
  await ch.request("exec", common.NS(patternCommand(n)));
  ch.conn.sendEOF(ch);
  await within(ch.whenClosed.asPromise(), 60_000, `download through a ${localWindow}-byte window (got ${received})`, client.peerLog);
  assert.equal(received, n);
  assert.ok(largest <= localWindow, `no packet larger than the window (largest ${largest})`);
  assert.equal(hash.digest("hex"), patternSha256(n));
  assert.equal(ch.exitStatus, 0);
}

/** Cipher/MAC pairs to try against a server; the MAC is unused with AEAD ciphers. */
export const CIPHER_MATRIX: ReadonlyArray<readonly [string, string]> = [
  ["chacha20-poly1305@openssh.com", "hmac-sha2-256"],
  ["aes128-gcm@openssh.com", "hmac-sha2-256"],
  ["aes256-gcm@openssh.com", "hmac-sha2-256"],
  ["aes128-ctr", "hmac-sha2-256-etm@openssh.com"],
  ["aes192-ctr", "hmac-sha2-512"],
  ["aes256-ctr", "hmac-sha1"],
];

/**
 * For each [cipher, MAC] pair, a connection offering only that pair runs `cat` over 1 MiB (plus a
 * line on stderr) and gets it all back.
 */
export async function checkCipherMatrix(connect: (ciphers: string[], macs: string[]) => Promise<Client>, combos: ReadonlyArray<readonly [string, string]> = CIPHER_MATRIX): Promise<void> {
  const data = Buffer.alloc(1024 * 1024, "abcdefghijklmnopqrstuvwxyz0123456789\n").toString();
  for (const [cipher, mac] of combos) {
    const client = await connect([cipher], [mac]);
    try {
      const r = await client.exec("cat; echo done >&2", { stdin: data });
      assert.ok(r.stdout === data, `${cipher} + ${mac}: the bytes came back (${r.stdout.length} of ${data.length})`);
      assert.equal(r.stderr, "done\n");
      assert.equal(r.exitStatus, 0);
    } finally {
      client.close();
    }
  }
}

// ---- the scenario list every server is put through -------------------------------------------

/** What a server can do, where servers differ; each exception says why at the call site. */
export interface ServerTraits {
  /** Bytes for each bulk transfer (BULK_FULL or BULK_SMALL). */
  bulkBytes: number;
  /** "refused": the server has no env request (Dropbear 2022.83). Default "accepted". */
  env?: "accepted" | "refused";
  /** False when the server does not deliver `signal` requests (sshd for root, Twisted 22.4). */
  signals?: boolean;
  /** False when the server cannot send stdout and stderr bulk at once correctly (ssh2 1.17). */
  stdoutAndStderr?: boolean;
  /** The reason code the server refuses an unknown channel type with (sshd: OPEN_CONNECT_FAILED). */
  unknownChannelReason?: number;
}

/**
 * Runs the scenarios the issue asks of every server, as subtests of `t`, in an order where each
 * leaves the connection usable for the next; "connection lost" comes last because it ends it.
 */
export async function runServerScenarios(t: TestContext, client: Client, traits: ServerTraits): Promise<void> {
  const mib = traits.bulkBytes / (1024 * 1024);
  await t.test("exec: stdin, stdout, stderr and exit status", () => checkExec(client));
  await t.test("exec: exit-signal for a command killed by SIGTERM", () => checkExitSignal(client));
  if (traits.env === "refused") {
    await t.test("env: refused with CHANNEL_FAILURE, and the channel still runs a command", () => checkEnvRefused(client));
  } else {
    await t.test("env: an LC_ variable reaches the command", () => checkEnv(client));
  }
  await t.test("pty-req + shell: stty size, tty, window-change, exit status", () => checkPtyShell(client));
  await t.test("subsystem: sftp answers INIT and REALPATH", () => checkSftpSubsystem(client));
  await t.test("50 session channels at once on one connection", () => checkManyChannels(client, 50));
  await t.test("exec: a command that does not exist exits 127", () => checkCommandNotFound(client));
  if (traits.signals !== false) {
    await t.test("signal: TERM ends a running command with exit-signal TERM", () => checkSignalRequest(client));
  }
  await t.test("flow control: a paused channel receives one window, then the rest once resumed", () => checkPausedConsumer(client));
  if (traits.stdoutAndStderr !== false) {
    await t.test("flow control: 4 MiB on stdout and on stderr at once", () => checkStdoutAndStderrBulk(client));
  }
  await t.test("flow control: 16 MiB in one write, then EOF held until it is sent", () => checkUploadOneWrite(client));
  await t.test("flow control: 8 channels echoing 4 MiB each through cat at once", () => checkConcurrentEcho(client));
  await t.test("flow control: a 16 KiB local window (below the max packet) still moves 2 MiB", () => checkSmallWindow(client));
  await t.test("CHANNEL_OPEN of an unknown type: refused with the server's reason code", () =>
    checkUnknownChannelType(client, traits.unknownChannelReason ?? error.OPEN_UNKNOWN_CHANNEL_TYPE),
  );
  await t.test("GLOBAL_REQUEST unknown to the server: GlobalRequestFailedError", () => checkGlobalRequestRefused(client));
  await t.test("a request on a closed channel: ChannelClosedError, nothing sent", () => checkRequestOnClosedChannel(client));
  await t.test(`${mib} MiB server to client, SHA-256 checked`, async (tt) => {
    const r = await checkDownload(client, traits.bulkBytes);
    tt.diagnostic(`download ${r.bytes} bytes in ${r.seconds.toFixed(2)} s (${r.mbPerSecond.toFixed(0)} MB/s)`);
  });
  await t.test(`${mib} MiB client to server, SHA-256 checked`, async (tt) => {
    const r = await checkUpload(client, traits.bulkBytes);
    tt.diagnostic(`upload ${r.bytes} bytes in ${r.seconds.toFixed(2)} s (${r.mbPerSecond.toFixed(0)} MB/s)`);
  });
  await t.test("connection lost: the running channel is closed, the opening one fails", () => checkConnectionLost(client));
}
