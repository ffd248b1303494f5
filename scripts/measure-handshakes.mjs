#!/usr/bin/env node
// What one whole handshake costs in CPU, both sides together: our client and server pumped in
// memory (no sockets, no waiting), from version lines to NEWKEYS both ways, per key exchange
// (ed25519 host key). The post-quantum methods differ mostly in the client's key generation.
// Run after `npx tsc -b`:
//   node scripts/measure-handshakes.mjs [rounds]
import { connectedServerAndClient } from "@twisted-ts/internet/testing";
import { Clock } from "@twisted-ts/internet/task";
import { succeed } from "@twisted-ts/internet/defer";
import { IPv4Address } from "@twisted-ts/internet/address";
import { keys, transport, factory } from "@twisted-ts/conch/ssh";
const rounds = Number(process.argv[2] ?? 15);
const hostKey = keys.Key.generate("ed25519");
class Client extends transport.SSHClientTransport { verifyHostKey() { return succeed(true); } }
const f = new factory.SSHFactory();
f.privateKeys = { [hostKey.sshType()]: hostKey };
function once(kex) {
  const clock = new Clock();
  const server = f.buildProtocol(new IPv4Address("TCP", "127.0.0.1", 22));
  const client = new Client();
  server.clock = clock; client.clock = clock;
  server.supportedKeyExchanges = [kex]; client.supportedKeyExchanges = [kex];
  const t = performance.now();
  connectedServerAndClient(server, client, { clock, greet: true });
  if (!server.isEncrypted("both")) throw new Error(kex);
  return performance.now() - t;
}
const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
for (const kex of ["curve25519-sha256", "mlkem768x25519-sha256", "sntrup761x25519-sha512", "mlkem768nistp256-sha256"]) {
  for (let i = 0; i < 3; i++) once(kex);
  const xs = []; for (let i = 0; i < rounds; i++) xs.push(once(kex));
  console.log(kex.padEnd(28), "whole handshake in memory, both sides, ms: median", med(xs).toFixed(1), "min", Math.min(...xs).toFixed(1));
}
