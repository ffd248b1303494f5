/**
 * Starts OpenSSH's sshd for a test: on 127.0.0.1, on a free port, with host keys and an
 * authorized_keys made in a temp dir, stopped when the test ends.
 */
import { mkdirSync, writeFileSync, existsSync, readFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { freePort, requirePeer, runCommand, spawnPeer, tempDir, waitForPort } from "./peers.js";

export interface SshdOptions {
  /** Public key lines for authorized_keys. */
  authorizedKeys?: string[];
  /** Extra sshd_config lines (e.g. "Ciphers aes128-ctr"). */
  config?: string[];
  /** Host key types to generate (default ed25519, ecdsa, rsa). */
  hostKeyTypes?: Array<"ed25519" | "ecdsa" | "rsa">;
}

export interface Sshd {
  port: number;
  dir: string;
  user: string;
  /** Host public keys by type ("ed25519", "ecdsa", "rsa"), as OpenSSH one-line strings. */
  hostKeys: Record<string, string>;
  output(): string;
}

/** Generates a key with ssh-keygen; returns [private path, public line]. */
export async function sshKeygen(dir: string, name: string, type: "ed25519" | "ecdsa" | "rsa", extra: string[] = []): Promise<[string, string]> {
  const path = join(dir, name);
  const r = await runCommand("ssh-keygen", ["-q", "-t", type, ...(type === "rsa" ? ["-b", "2048"] : []), "-N", "", "-C", name, "-f", path, ...extra]);
  if (r.code !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
  return [path, readFileSync(path + ".pub", "utf8").trim()];
}

/** Starts sshd, or returns undefined when it is not installed (skipped, or failed under CI). */
export async function startSshd(t: TestContext, opts: SshdOptions = {}): Promise<Sshd | undefined> {
  const sshd = requirePeer(t, "/usr/sbin/sshd", "openssh-server");
  if (sshd === undefined) return undefined;
  if (requirePeer(t, "ssh-keygen", "openssh-client") === undefined) return undefined;
  // Privilege separation needs this directory (normally made by the service unit).
  if (!existsSync("/run/sshd")) mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  const dir = tempDir(t, "twisted-ts-sshd-");
  const hostKeys: Record<string, string> = {};
  const lines: string[] = [];
  for (const type of opts.hostKeyTypes ?? ["ed25519", "ecdsa", "rsa"]) {
    const [path, pub] = await sshKeygen(dir, `ssh_host_${type}_key`, type);
    hostKeys[type] = pub;
    lines.push(`HostKey ${path}`);
  }
  writeFileSync(join(dir, "authorized_keys"), (opts.authorizedKeys ?? []).join("\n") + "\n", { mode: 0o600 });
  const port = await freePort();
  const config = [
    `Port ${port}`,
    "ListenAddress 127.0.0.1",
    ...lines,
    `PidFile ${join(dir, "sshd.pid")}`,
    `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
    "StrictModes no",
    "UsePAM no",
    "PermitRootLogin yes",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "PubkeyAuthentication yes",
    "AcceptEnv *",
    // Keeps root's bash from sourcing ~/.bashrc (pyenv start-up) for every command (PERF-NOTES).
    "SetEnv SHLVL=1",
    "Subsystem sftp internal-sftp",
    "LogLevel VERBOSE",
    ...(opts.config ?? []),
  ];
  const cfgPath = join(dir, "sshd_config");
  writeFileSync(cfgPath, config.join("\n") + "\n");
  const check = await runCommand(sshd, ["-t", "-f", cfgPath]);
  if (check.code !== 0) throw new Error(`sshd -t rejected the config: ${check.stderr}`);
  const child = spawnPeer(t, sshd, ["-D", "-e", "-f", cfgPath]);
  await waitForPort(port);
  return { port, dir, user: userInfo().username, hostKeys, output: () => child.output() };
}
