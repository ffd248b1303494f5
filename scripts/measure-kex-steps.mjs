#!/usr/bin/env node
// What one key exchange costs the server's event loop: the longest single `dataReceived` call of
// an SSHServerTransport (or continuation of a step done on the DH worker thread) during a
// handshake with our client, pumped in memory (ed25519 host key).
// Finite-field groups are measured inline (dhInlineMaxBits = Infinity) and as served by default
// (bigger groups on the worker thread). Then what one signature check costs with the public keys a
// peer may send (RSA and DSA numbers at and past our bounds; the verify fails, the cost is the
// same). Run after `npx tsc -b`:
//   node scripts/measure-kex-steps.mjs [rounds] [only: a substring of the kex names to measure]
import { existsSync } from "node:fs";
import { createPublicKey, randomBytes, verify } from "node:crypto";
import { connectedServerAndClient } from "@twisted-ts/internet/testing";
import { Clock } from "@twisted-ts/internet/task";
import { succeed } from "@twisted-ts/internet/defer";
import { IPv4Address } from "@twisted-ts/internet/address";
import { keys, transport, factory } from "@twisted-ts/conch/ssh";

const rounds = Number(process.argv[2] ?? 7);
const only = process.argv[3];
const hostKey = keys.Key.generate("ed25519");
const moduli = existsSync("/etc/ssh/moduli") ? "/etc/ssh/moduli" : undefined;

class Client extends transport.SSHClientTransport {
  verifyHostKey() {
    return succeed(true);
  }
}

// One factory: it reads and parses the moduli file once, as a running server does.
const f = new factory.SSHFactory();
f.moduliPath = moduli;
f.privateKeys = { [hostKey.sshType()]: hostKey };
f.getPrimes();

async function once(kex, bits, inline) {
  const clock = new Clock();
  const server = f.buildProtocol(new IPv4Address("TCP", "127.0.0.1", 22));
  const client = new Client();
  server.clock = clock;
  client.clock = clock;
  server.supportedKeyExchanges = [kex];
  client.supportedKeyExchanges = [kex];
  if (inline) server.dhInlineMaxBits = Infinity;
  if (bits !== undefined) [client.gexMinBits, client.gexPreferredBits, client.gexMaxBits] = [bits, bits, bits];
  let longest = 0;
  // Input, and the continuation of a step computed on the worker thread.
  for (const method of ["dataReceived", "resumeInput"]) {
    const original = server[method].bind(server);
    server[method] = (arg) => {
      const t = performance.now();
      original(arg);
      longest = Math.max(longest, performance.now() - t);
    };
  }
  const lb = connectedServerAndClient(server, client, { clock, greet: true });
  while (transport.dhPoolPending() > 0) {
    await transport.dhPoolIdle();
    lb.pump.flush();
  }
  if (!server.isEncrypted("both")) throw new Error(`${kex} ${bits ?? ""}: no keys (${server.disconnectReason?.message})`);
  return longest;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const cases = [
  ["curve25519-sha256"],
  ["mlkem768x25519-sha256"],
  ["sntrup761x25519-sha512"],
  ["ecdh-sha2-nistp256"],
  ["ecdh-sha2-nistp521"],
  ["diffie-hellman-group14-sha256"],
  ["diffie-hellman-group16-sha512"],
  ["diffie-hellman-group18-sha512"],
  ...(moduli !== undefined ? [2048, 3072, 4096, 6144, 8192].map((b) => ["diffie-hellman-group-exchange-sha256", b]) : []),
].filter(([kex]) => only === undefined || kex.includes(only));
console.log(`longest server dataReceived per handshake, ms: median / max of ${rounds} (first run discarded)`);
for (const [kex, bits] of cases) {
  for (const inline of kex.includes("mlkem") || kex.includes("sntrup") || kex.includes("curve") || kex.includes("ecdh") ? [true] : [true, false]) {
    await once(kex, bits, inline);
    const xs = [];
    for (let i = 0; i < rounds; i++) xs.push(await once(kex, bits, inline));
    const label = `${kex}${bits ? ` ${bits}` : ""}${inline ? "" : " (default: worker above 4096)"}`;
    console.log(`${label.padEnd(70)} ${median(xs).toFixed(2).padStart(7)} / ${Math.max(...xs).toFixed(2).padStart(7)}`);
  }
}

function oddOfBits(bits) {
  let n = BigInt("0x" + randomBytes(Math.ceil(bits / 8)).toString("hex"));
  n &= (1n << BigInt(bits)) - 1n;
  return n | (1n << BigInt(bits - 1)) | 1n;
}
const b64 = (n) => Buffer.from(n.toString(16).padStart(Math.ceil(n.toString(16).length / 2) * 2, "0"), "hex").toString("base64url");

if (only !== undefined) process.exit(0);
console.log(`\none RSA signature check (node:crypto verify), ms: median / max of ${rounds}`);
for (const [nBits, eBits] of [[2048, 17], [4096, 17], [16384, 17], [16384, 32], [16384, 64], [2048, 2047], [3072, 3071], [16384, 16383], [16385, 17]]) {
  const n = oddOfBits(nBits);
  const e = eBits === 17 ? 65537n : oddOfBits(eBits);
  const key = createPublicKey({ key: { kty: "RSA", n: b64(n), e: b64(e) }, format: "jwk" });
  const sig = Buffer.from(b64(n - 12345n), "base64url");
  const xs = [];
  let refused = false;
  for (let i = 0; i <= rounds; i++) {
    const t = performance.now();
    try {
      verify("sha512", Buffer.from("x"), key, sig);
    } catch {
      refused = true;
    }
    if (i > 0) xs.push(performance.now() - t);
  }
  const label = `RSA ${nBits}-bit n, ${eBits === 17 ? "e = 65537" : `${eBits}-bit e`}${refused ? " (OpenSSL refuses it)" : ""}`;
  console.log(`${label.padEnd(70)} ${median(xs).toFixed(2).padStart(7)} / ${Math.max(...xs).toFixed(2).padStart(7)}`);
}
