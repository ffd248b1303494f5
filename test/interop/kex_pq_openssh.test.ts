/**
 * Post-quantum key exchange against OpenSSH 9.2 (issue 16): sntrup761x25519-sha512 under both of
 * its names, forced and by default, both ways, each through to a command run in a session.
 *
 * OpenSSH 9.2 has no mlkem768x25519-sha256 (that came in 9.9), so with our default order it and we
 * settle on the first sntrup761 name of the client's list. Upstream 9.0-9.8 know only
 * sntrup761x25519-sha512@openssh.com; Debian 12's 9.2p1-2+deb12u10 also has the plain name (from
 * 9.9) and lists it first, so the default expected here is read from `ssh -Q kex`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { runCommand, requirePeer } from "../_support/peers.js";
import { startSshd } from "../_support/sshd.js";
import { clientEnv, sshClientArgs, startOurServer } from "./_server_support.js";
import { connectClient, makeUserKey } from "./_client_support.js";

const SNTRUP_NAMES = ["sntrup761x25519-sha512@openssh.com", "sntrup761x25519-sha512"];

/** The sntrup761 name this OpenSSH negotiates with us by default: the plain one where it has it. */
function openSshDefault(): string {
  let kex = "";
  try {
    kex = execFileSync("ssh", ["-Q", "kex"], { encoding: "utf8" });
  } catch {
    // No ssh: the tests below skip themselves through requirePeer.
  }
  return kex.split("\n").includes("sntrup761x25519-sha512") ? "sntrup761x25519-sha512" : "sntrup761x25519-sha512@openssh.com";
}
const OPENSSH_DEFAULT = openSshDefault();

const escape = (s: string) => s.replace(/[.@]/g, "\\$&");

for (const forced of [undefined, ...SNTRUP_NAMES]) {
  const expected = forced ?? OPENSSH_DEFAULT;
  const how = forced === undefined ? "by default" : "forced";

  test(`${expected}: OpenSSH's ssh runs a command on our server, ${how}`, async (t) => {
    const ssh = requirePeer(t, "ssh", "openssh-client");
    if (!ssh) return;
    const server = await startOurServer(t);
    const extra = ["-v", ...(forced === undefined ? [] : ["-o", `KexAlgorithms=${forced}`])];
    const r = await runCommand(ssh, [...sshClientArgs(server, extra), `${server.user}@127.0.0.1`, "echo pq-ok"], { env: clientEnv(server) });
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    assert.equal(r.stdout.toString(), "pq-ok\n");
    assert.match(r.stderr, new RegExp(`kex: algorithm: ${escape(expected)}\\r?\\n`));
    assert.match(server.logText(), new RegExp(`kex alg=${escape(expected)} `));
    assert.deepEqual(server.criticals(), []);
  });

  test(`${expected}: our client runs a command on sshd, ${how}`, async (t) => {
    const key = await makeUserKey(t);
    const sshd = await startSshd(t, { authorizedKeys: [key.publicLine] });
    if (!sshd) return;
    const client = await connectClient({
      port: sshd.port,
      user: sshd.user,
      key,
      hostKey: sshd.hostKeys["ed25519"]!,
      peerLog: sshd.output,
      ...(forced === undefined ? {} : { keyExchanges: [forced] }),
    });
    t.after(() => client.close());
    assert.equal(client.sshTransport.kexAlg, expected);
    const r = await client.exec("echo pq-ok");
    assert.equal(r.stdout, "pq-ok\n");
    assert.equal(r.exitStatus, 0);
  });
}
