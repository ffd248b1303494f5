/**
 * Shared by the `server_*` interop tests: starts OUR SSH server (SSHFactory + SSHUserAuthServer +
 * SSHConnection + a cred portal) on 127.0.0.1 on a free port, with fresh host keys, an in-memory
 * user `alice` (password and an ed25519 key made by ssh-keygen), and either the Unix realm (real
 * commands through reactor.spawnProcess) or the in-process realm. Everything our server logs while
 * the test runs is kept, so tests can check that bad input was logged and nothing crashed.
 *
 * The Unix realm's user runs `/bin/sh` with a temp dir as home: root's bash would read ~/.bashrc
 * (pyenv start-up, 0.6 s a command) because SSH_CLIENT is set, which measures the shell, not SSH.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TestContext } from "node:test";
import type { AvatarId } from "@twisted-ts/cred/checkers";
import { InMemoryUsernamePasswordDatabaseDontUse, PAMPasswordChecker } from "@twisted-ts/cred/checkers";
import type { InterfaceToken } from "@twisted-ts/cred/interfaces";
import { Portal, type IRealm, type LoginResult } from "@twisted-ts/cred/portal";
import { addObserver, formatEvent, removeObserver, type LogEvent } from "@twisted-ts/internet/log";
import { reactor } from "@twisted-ts/internet/reactor";
import { checkers, unix } from "@twisted-ts/conch";
import { connection, factory, keys, userauth } from "@twisted-ts/conch/ssh";
import { tempDir } from "../_support/peers.js";
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
  /** Every event our code logged since the server started. */
  logs: LogEvent[];
  /** The log as text lines "level namespace: message". */
  logText: () => string;
  /** Events at level critical (unhandled errors); a healthy server logs none. */
  criticals: () => LogEvent[];
}

/** A UnixConchUser whose shell is /bin/sh and whose home is the test's temp dir. */
class TestUnixUser extends unix.UnixConchUser {
  constructor(
    name: string,
    private readonly home: string,
  ) {
    super(name);
  }
  override getShell(): string {
    return "/bin/sh";
  }
  override getHomeDir(): string {
    return this.home;
  }
}

class CountingRealm implements IRealm {
  count = 0;
  constructor(private readonly make: (name: string) => unknown) {}
  requestAvatar(avatarId: AvatarId, _mind: unknown, ...interfaces: InterfaceToken<unknown>[]): LoginResult<unknown> {
    this.count++;
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

  const inProcess = new unix.InProcessRealm(opts.inProcess ?? {});
  const realm = new CountingRealm((name) =>
    opts.realm === "inprocess" ? new unix.InProcessConchUser(name, inProcess.options) : new TestUnixUser(name, home),
  );
  const passwords = new InMemoryUsernamePasswordDatabaseDontUse({ [USER]: PASSWORD });
  const portal = new Portal(realm, [
    new checkers.SSHPublicKeyChecker(new checkers.InMemorySSHKeyDB({ [USER]: [keys.Key.fromString(keyPub)] })),
    passwords,
    new PAMPasswordChecker(passwords),
  ]);

  const f = new factory.SSHFactory();
  f.moduliPath = undefined;
  f.privateKeys = hostKeys;
  f.portal = portal;
  f.services = { "ssh-userauth": QuickUserAuthServer, "ssh-connection": opts.connectionClass ?? connection.SSHConnection };

  const logs: LogEvent[] = [];
  const observer = (e: LogEvent): void => {
    logs.push(e);
  };
  addObserver(observer);
  const listening = reactor.listenTCP(0, f, 50, "127.0.0.1");
  await listening.whenListening();
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
    user: USER,
    password: PASSWORD,
    keyPath,
    keyPub,
    hostKeys,
    knownHosts,
    logins: () => realm.count,
    logs,
    logText: () => logs.map((e) => `${e.log_level} ${e.log_namespace}: ${formatEvent(e)}`).join("\n"),
    criticals: () => logs.filter((e) => e.log_level === "critical"),
  };
}

/** A small environment for client programs: PATH, HOME (the server's temp dir) and extras. */
export function clientEnv(server: OurServer, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: server.dir, LANG: "C.UTF-8", ...extra };
}
