/** The servers the SSH and SFTP benchmarks run: OpenSSH's sshd and ours, on loopback. */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { userInfo } from "node:os";
import { reactor } from "@twisted-ts/internet/reactor";
import { Portal } from "@twisted-ts/cred/portal";
import { checkers, unix } from "@twisted-ts/conch";
import { factory, filetransfer, keys } from "@twisted-ts/conch/ssh";
import { freePort, waitForPort } from "./_net.js";

const USER = userInfo().username;

/**
 * sshd on a free port, `userPub` authorized, with OpenSSH's sftp-server as `sftp`; `extraConfig`
 * lines win over the defaults (e.g. `MaxStartups 1000`).
 */
export async function startSshd(dir: string, userPub: string, extraConfig: string[] = []): Promise<{ port: number; stop: () => void; pid: number }> {
  if (!existsSync("/run/sshd")) mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "hostkey")]);
  writeFileSync(join(dir, "authorized_keys"), userPub + "\n", { mode: 0o600 });
  const port = await freePort();
  const cfg = [
    `Port ${port}`,
    "ListenAddress 127.0.0.1",
    `HostKey ${join(dir, "hostkey")}`,
    `PidFile ${join(dir, "sshd.pid")}`,
    `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
    "StrictModes no",
    "UsePAM no",
    "PermitRootLogin yes",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    // Keeps root's bash from sourcing ~/.bashrc for every command (PERF-NOTES).
    "SetEnv SHLVL=1",
    "Subsystem sftp /usr/lib/openssh/sftp-server",
    "LogLevel QUIET",
    // sshd 9.2 takes the last MaxStartups it reads: the default only when the caller has none.
    ...(extraConfig.some((l) => /^MaxStartups\b/i.test(l)) ? [] : ["MaxStartups 100"]),
    ...extraConfig,
  ];
  writeFileSync(join(dir, "sshd_config"), cfg.join("\n") + "\n");
  const child = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", join(dir, "sshd_config")], { stdio: "ignore" });
  await waitForPort(port);
  return { port, stop: () => child.kill(), pid: child.pid ?? 0 };
}

/**
 * Our SSHFactory with the Unix realm in this process. `sftp`: "bin" keeps the realm's default
 * subsystem (the sftp-server bin run as the user, as sshd does); "in-process" serves SFTP in
 * this process instead (`filetransfer.sftpSubsystem`).
 */
export async function startOurServer(userPub: string, sftp: "bin" | "in-process" = "bin"): Promise<{ port: number; stop: () => PromiseLike<unknown> }> {
  const f = ourFactory(userPub, sftp);
  const listening = reactor.listenTCP(0, f, 50, "127.0.0.1");
  await listening.whenListening();
  const host = listening.getHost();
  return { port: "port" in host ? host.port : 0, stop: () => listening.stopListening() };
}

/** The SSHFactory {@link startOurServer} listens with: a fresh ed25519 host key, `userPub` authorized. */
export function ourFactory(userPub: string, sftp: "bin" | "in-process" = "bin", processLauncher = true): factory.SSHFactory {
  const f = new factory.SSHFactory();
  f.moduliPath = undefined;
  f.privateKeys = { "ssh-ed25519": keys.Key.generate("ed25519") };
  const realm =
    sftp === "bin"
      ? new unix.UnixSSHRealm({ env: { SHLVL: "1" }, processLauncher })
      : new (class extends unix.UnixSSHRealm {
          override requestAvatar(...a: Parameters<unix.UnixSSHRealm["requestAvatar"]>): ReturnType<unix.UnixSSHRealm["requestAvatar"]> {
            const r = super.requestAvatar(...a);
            (r[1] as { subsystemLookup: Record<string, unknown> }).subsystemLookup["sftp"] = filetransfer.sftpSubsystem();
            return r;
          }
        })({ env: { SHLVL: "1" }, subsystems: {}, processLauncher });
  f.portal = new Portal(realm, [
    new checkers.SSHPublicKeyChecker(new checkers.InMemorySSHKeyDB({ [USER]: [keys.Key.fromString(userPub)] })),
  ]);
  return f;
}

