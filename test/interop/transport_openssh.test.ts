/**
 * The transport layer against OpenSSH 9.2, both ways, one algorithm forced at a time.
 *
 * Our client → sshd: the key exchange completes, the host key is the one sshd has, and an
 * encrypted SERVICE_REQUEST/ACCEPT round trip works. OpenSSH's ssh → our server: ssh negotiates
 * the forced algorithm and gets through to user authentication (which a stub refuses), so
 * encrypted packets flowed both ways.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { reactor } from "@twisted-ts/internet";
import { ClientFactory } from "@twisted-ts/internet/protocol";
import { succeed } from "@twisted-ts/internet/defer";
import type { Failure } from "@twisted-ts/internet/failure";
import { common, factory, keys, service, transport } from "@twisted-ts/conch/ssh";
import { startSshd } from "../_support/sshd.js";
import { requirePeer, runCommand } from "../_support/peers.js";

/** Ciphers, MACs and kex that OpenSSH 9.2 and we share. */
/** OpenSSH 9.2 has no ML-KEM hybrid (mlkem768x25519-sha256 came in 9.9). */
const OPENSSH_KEX = transport.ALL_KEY_EXCHANGES.filter((k) => !k.startsWith("mlkem"));
const OPENSSH_CIPHERS = ["chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr", "aes128-cbc", "aes192-cbc", "aes256-cbc"];
const OPENSSH_MACS = ["hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "hmac-sha1-etm@openssh.com", "hmac-sha2-256", "hmac-sha2-512", "hmac-sha1"];

interface Outcome {
  secure: boolean;
  accepted: boolean;
  fingerprint: string | undefined;
  algorithms: transport.NegotiatedAlgorithms | undefined;
  reason: string;
}

class Probe extends service.SSHService {
  override name = "ssh-userauth";
  onStart: () => void = () => undefined;
  override serviceStarted(): void {
    this.onStart();
  }
}

function connectOnce(port: number, configure: (t: transport.SSHClientTransport) => void): Promise<Outcome> {
  return new Promise((resolve) => {
    const outcome: Outcome = { secure: false, accepted: false, fingerprint: undefined, algorithms: undefined, reason: "" };
    class Client extends transport.SSHClientTransport {
      override verifyHostKey(_blob: Uint8Array, fp: string): unknown {
        outcome.fingerprint = fp;
        return succeed(true);
      }
      override connectionSecure(): void {
        outcome.secure = true;
        outcome.algorithms = this.algorithms;
        const probe = new Probe();
        probe.onStart = () => {
          outcome.accepted = true;
          this.loseConnection();
        };
        this.requestService(probe);
      }
      override connectionMade(): void {
        configure(this);
        super.connectionMade();
      }
      override connectionLost(reason: Failure): void {
        super.connectionLost(reason);
        outcome.reason = this.disconnectReason?.message ?? reason.getErrorMessage();
        resolve(outcome);
      }
    }
    const f = new ClientFactory();
    f.protocol = Client;
    f.clientConnectionFailed = (_c, reason) => {
      outcome.reason = reason.getErrorMessage();
      resolve(outcome);
    };
    reactor.connectTCP("127.0.0.1", port, f);
  });
}

function md5OfLine(line: string): string {
  return keys.Key.fromString(line).fingerprint();
}

test("our client completes every shared key exchange, host key, cipher and MAC with sshd", async (t) => {
  const sshd = await startSshd(t, {
    hostKeyTypes: ["ed25519", "ecdsa", "rsa"],
    config: [
      `KexAlgorithms ${OPENSSH_KEX.join(",")}`,
      `Ciphers ${OPENSSH_CIPHERS.join(",")}`,
      `MACs ${OPENSSH_MACS.join(",")}`,
      "HostKeyAlgorithms ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256,ssh-rsa",
      "Compression yes",
    ],
  });
  if (!sshd) return;
  const cases: Array<[string, (c: transport.SSHClientTransport) => void, (o: Outcome) => void]> = [];
  for (const kex of OPENSSH_KEX) {
    cases.push([`kex ${kex}`, (c) => (c.supportedKeyExchanges = [kex]), (o) => assert.equal(o.algorithms?.kex, kex)]);
  }
  for (const [alg, type] of [
    ["ssh-ed25519", "ed25519"],
    ["ecdsa-sha2-nistp256", "ecdsa"],
    ["rsa-sha2-512", "rsa"],
    ["rsa-sha2-256", "rsa"],
    ["ssh-rsa", "rsa"],
  ] as const) {
    cases.push([
      `host key ${alg}`,
      (c) => (c.supportedPublicKeys = [alg]),
      (o) => {
        assert.equal(o.algorithms?.hostKey, alg);
        assert.equal(o.fingerprint, md5OfLine(sshd.hostKeys[type]!));
      },
    ]);
  }
  for (const cipher of OPENSSH_CIPHERS) {
    cases.push([`cipher ${cipher}`, (c) => (c.supportedCiphers = [cipher]), (o) => assert.equal(o.algorithms?.cipherCS, cipher)]);
  }
  for (const mac of OPENSSH_MACS) {
    cases.push([
      `mac ${mac}`,
      (c) => {
        c.supportedCiphers = ["aes128-ctr"];
        c.supportedMACs = [mac];
      },
      (o) => assert.equal(o.algorithms?.macSC, mac),
    ]);
  }
  cases.push(["compression zlib@openssh.com", (c) => (c.supportedCompressions = ["zlib@openssh.com"]), (o) => assert.equal(o.algorithms?.compCS, "zlib@openssh.com")]);
  for (const [name, configure, check] of cases) {
    const o = await connectOnce(sshd.port, configure);
    assert.ok(o.secure && o.accepted, `${name}: ${o.reason}\n${sshd.output().slice(-2000)}`);
    check(o);
  }
});

/** A userauth stand-in that refuses everything, so ssh gets as far as authentication. */
class RefuseAll extends service.SSHService {
  override name = "ssh-userauth";
  override packetReceived(messageNum: number): void {
    if (messageNum === 50) this.sendPacket(51, new common.SSHWriter().nameList(["publickey"]).boolean(false).finish());
  }
}

test("OpenSSH's ssh negotiates every shared algorithm with our server", async (t) => {
  const ssh = requirePeer(t, "ssh", "openssh-client");
  if (!ssh) return;
  const f = new factory.SSHFactory();
  const hostKeys = [keys.Key.generate("ed25519"), keys.Key.generate("ecdsa", { bits: 256 }), keys.Key.generate("rsa", { bits: 2048 })];
  f.privateKeys = Object.fromEntries(hostKeys.map((k) => [k.sshType(), k]));
  f.services = { "ssh-userauth": RefuseAll };
  // Dozens of refused connections in a row from one address would earn a PerSourcePenalties
  // noauth penalty, as under sshd.
  f.perSourcePenaltyExemptList = ["127.0.0.1"];
  class Server extends transport.SSHServerTransport {
    override supportedKeyExchanges = [...transport.ALL_KEY_EXCHANGES];
    override supportedCiphers = [...transport.ALL_CIPHERS];
    override supportedMACs = [...transport.ALL_MACS];
    override supportedPublicKeys = [...transport.ALL_PUBLIC_KEYS];
  }
  f.protocol = Server;
  const port = reactor.listenTCP(0, f, 50, "127.0.0.1");
  t.after(() => port.stopListening());
  await port.whenListening();
  const portNum = (port.getHost() as { port: number }).port;
  const run = async (opts: string[]) =>
    runCommand(ssh, [
      "-vv",
      "-o", "BatchMode=yes",
      "-o", "StrictHostKeyChecking=no",
      "-o", "UserKnownHostsFile=/dev/null",
      "-o", "IdentitiesOnly=yes",
      "-o", "IdentityFile=/dev/null",
      "-o", "ConnectTimeout=10",
      ...opts,
      "-p", String(portNum),
      "root@127.0.0.1",
      "true",
    ]);
  const cases: Array<[string[], RegExp]> = [];
  for (const kex of OPENSSH_KEX) cases.push([["-o", `KexAlgorithms=${kex}`], new RegExp(`kex: algorithm: ${kex.replace(/[.@]/g, "\\$&")}`)]);
  for (const hk of ["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256"]) cases.push([["-o", `HostKeyAlgorithms=${hk}`], new RegExp(`host key algorithm: ${hk}`)]);
  for (const c of OPENSSH_CIPHERS) cases.push([["-c", c], new RegExp(`server->client cipher: ${c.replace(/[.@]/g, "\\$&")}`)]);
  for (const m of OPENSSH_MACS) cases.push([["-c", "aes128-ctr", "-m", m], new RegExp(`MAC: ${m.replace(/[.@]/g, "\\$&")}`)]);
  cases.push([["-C"], /compression: zlib@openssh.com/]);
  for (const [opts, expect] of cases) {
    const r = await run(opts);
    assert.match(r.stderr, expect, `${opts.join(" ")}\n${r.stderr.slice(-3000)}`);
    assert.match(r.stderr, /Permission denied \(publickey\)/, `${opts.join(" ")}: did not reach authentication\n${r.stderr.slice(-3000)}`);
  }
});

// ---------------------------------------------------------------- rekeying under load

const REKEY_BULK = 64 * 1024 * 1024;

test("rekeys every MiB in the middle of 64 MiB each way between our client and sshd, bytes intact", async (t) => {
  const { connectClient, makeUserKey, checkUpload, checkDownload } = await import("./_client_support.js");
  const key = await makeUserKey(t);
  const sshd = await startSshd(t, { authorizedKeys: [key.publicLine], config: ["RekeyLimit 1M"] });
  if (!sshd) return;
  const client = await connectClient({ port: sshd.port, user: sshd.user, key, hostKey: sshd.hostKeys["ed25519"]!, peerLog: sshd.output });
  t.after(() => client.close());
  const tr = client.sshTransport;
  tr.rekeyBytes = 1024 * 1024;
  let rekeys = 0;
  const sessionID = tr.sessionID;
  const sendKexInit = tr.sendKexInit.bind(tr);
  tr.sendKexInit = () => {
    rekeys++;
    sendKexInit();
  };
  await checkUpload(client, REKEY_BULK);
  await checkDownload(client, REKEY_BULK);
  assert.ok(rekeys >= 64, `expected a rekey per MiB, saw ${rekeys}`);
  assert.deepEqual(tr.sessionID, sessionID);
});

test("OpenSSH's ssh with RekeyLimit=1M and compression moves 64 MiB each way through our server under strict kex", async (t) => {
  const ssh = requirePeer(t, "ssh", "openssh-client");
  if (!ssh) return;
  const { startOurServer, clientEnv } = await import("./_server_support.js");
  const { createHash, randomBytes } = await import("node:crypto");
  const { writeFileSync } = await import("node:fs");
  const { join } = await import("node:path");
  const server = await startOurServer(t);
  const data = randomBytes(REKEY_BULK);
  const digest = createHash("sha256").update(data).digest("hex");
  const file = join(server.home, "blob");
  writeFileSync(file, data);
  const args = [
    "-vv",
    "-C",
    "-o", "RekeyLimit=1M",
    "-o", "BatchMode=yes",
    "-o", `UserKnownHostsFile=${server.knownHosts}`,
    "-o", "StrictHostKeyChecking=yes",
    "-o", "IdentitiesOnly=yes",
    "-i", server.keyPath,
    "-p", String(server.port),
    `${server.user}@127.0.0.1`,
  ];
  const up = await runCommand(ssh, [...args, "sha256sum"], { input: data, env: clientEnv(server), timeoutMs: 180_000 });
  assert.equal(up.code, 0, up.stderr.slice(-3000));
  assert.equal(up.stdout.toString().split(/\s/)[0], digest, "what our server's command read");
  assert.match(up.stderr, /kex_input_ext_info|strict/i);
  assert.match(up.stderr, /compression: zlib@openssh.com/);
  const upRekeys = (up.stderr.match(/SSH2_MSG_KEXINIT sent/g) ?? []).length;
  assert.ok(upRekeys >= 32, `ssh rekeyed ${upRekeys} times uploading`);
  const down = await runCommand(ssh, [...args, "cat blob"], { env: clientEnv(server), timeoutMs: 180_000 });
  assert.equal(down.code, 0, down.stderr.slice(-3000));
  assert.equal(createHash("sha256").update(down.stdout).digest("hex"), digest, "what ssh received");
  const downRekeys = (down.stderr.match(/SSH2_MSG_KEXINIT (sent|received)/g) ?? []).length;
  assert.ok(downRekeys >= 32, `rekeys while downloading: ${downRekeys}`);
  assert.deepEqual(server.criticals(), []);
});
