/**
 * Issue 11 item 3 at the transport level: what a peer can make one step cost. Big finite-field
 * groups are computed on the worker thread while the connection's input waits, the server serves
 * group-exchange groups only within its gexMinBits..gexMaxBits, the client refuses a group it did
 * not ask for, KEXINIT name-lists and inflated packets are bounded.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { common, transport } from "@twisted-ts/conch/ssh";
import { error } from "@twisted-ts/conch";
import { EchoService, sshPair, type Pair } from "./_sshpair.js";
import { T } from "./_transport/_load.js";

const { SSHWriter } = common;
const GEX = "diffie-hellman-group-exchange-sha256";

/** Pumps until nothing is left on the Diffie-Hellman worker thread. */
async function settleKex(p: Pair): Promise<void> {
  p.pump.flush();
  do {
    await transport.dhPoolIdle();
    p.pump.flush();
  } while (transport.dhPoolPending() > 0);
}

function bitsOf(n: bigint): number {
  return n.toString(2).length;
}

/** The group of the exchange under way or just finished (the transports keep it as `gex`). */
function gexGroupOf(t: transport.SSHTransportBase): { min: number; n: number; max: number; p: bigint } {
  return (t as unknown as { gex: { min: number; n: number; max: number; p: bigint } }).gex;
}

/** Writes a message past the sender's own key-exchange queue, as a careless or hostile peer would. */
function writeRaw(t: transport.SSHTransportBase, num: number, payload: Uint8Array): void {
  (t as unknown as { writePacket(n: number, d: Uint8Array): void }).writePacket(num, payload);
}

test("KEXDH_INIT: a group above dhInlineMaxBits is computed on the worker thread, and what the client sends meanwhile waits, in order", async () => {
  const p = sshPair({
    greet: false,
    configure: (c, s) => {
      c.supportedKeyExchanges = ["diffie-hellman-group16-sha512"];
      s.dhInlineMaxBits = 2048;
    },
  });
  p.pump.flush();
  assert.equal(transport.dhPoolPending(), 1, "the 4096-bit exchange went to the worker");
  assert.equal(p.server.isEncrypted("out"), false, "no reply before the result");
  await settleKex(p);
  assert.equal(p.client.secureCount, 1, p.client.disconnectReason?.message);

  const clientSvc = new EchoService();
  p.client.requestService(clientSvc);
  p.pump.flush();
  const serverSvc = p.server.service as EchoService;
  const debugs: string[] = [];
  p.server.receiveDebug = (_always, message) => void debugs.push(message);
  p.client.rekey();
  p.pump.flush();
  assert.equal(transport.dhPoolPending(), 1, "the rekey's exchange is on the worker");
  // Not strict after the first exchange: DEBUG is allowed during a key exchange, and a peer like
  // AsyncSSH keeps sending service messages too.
  p.client.sendDebug("one");
  writeRaw(p.client, 70, Uint8Array.of(1));
  p.client.sendDebug("two");
  writeRaw(p.client, 70, Uint8Array.of(2));
  p.pump.flush();
  assert.deepEqual(debugs, [], "input waits while the exchange is computed");
  assert.equal(serverSvc.received.length, 0);
  await settleKex(p);
  assert.deepEqual(debugs, ["one", "two"]);
  assert.deepEqual(serverSvc.received.map(([n, d]) => [n, d[0]]), [[70, 1], [70, 2]]);
  assert.equal(p.server.keyExchangeInProgress, false);
  assert.equal(p.client.keyExchangeInProgress, false);
  assert.equal(p.server.disconnectReason, undefined);
});

test("defaults: groups up to DH_INLINE_MAX_BITS (4096) are computed inline, larger ones on the worker; group exchange serves up to GEX_MAX_BITS (8192)", async () => {
  assert.equal(transport.DH_INLINE_MAX_BITS, 4096);
  for (const [kex, onWorker] of [["diffie-hellman-group16-sha512", 0], ["diffie-hellman-group18-sha512", 1]] as const) {
    const p = sshPair({ greet: false, configure: (c) => (c.supportedKeyExchanges = [kex]) });
    p.pump.flush();
    assert.equal(transport.dhPoolPending(), onWorker, kex);
    await settleKex(p);
    assert.equal(p.client.secureCount, 1, p.client.disconnectReason?.message);
  }
  const p = sshPair({
    greet: false,
    configure: (c) => {
      c.supportedKeyExchanges = [GEX];
      [c.gexMinBits, c.gexPreferredBits, c.gexMaxBits] = [2048, 16384, 16384];
    },
  });
  await settleKex(p);
  assert.equal(p.client.secureCount, 1, p.client.disconnectReason?.message);
  assert.equal(bitsOf(gexGroupOf(p.server).p), transport.GEX_MAX_BITS);
});

test("KEXDH_INIT: an e out of range ends the exchange with KEY_EXCHANGE_FAILED on the worker path too", async () => {
  const p = sshPair({
    greet: false,
    configure: (c, s) => {
      c.supportedKeyExchanges = ["diffie-hellman-group16-sha512"];
      s.dhInlineMaxBits = 2048;
      // The client's init carries e = p-1 instead of its public value.
      const send = c.sendPacket.bind(c);
      c.sendPacket = (num, payload) => send(num, num === transport.MSG_KEXDH_INIT ? new SSHWriter().mpint(T.GROUP16.p - 1n).finish() : payload);
    },
  });
  p.pump.flush();
  await new Promise((resolve) => setImmediate(resolve));
  await settleKex(p);
  assert.equal(p.server.disconnectReason?.reasonCode, error.DISCONNECT_KEY_EXCHANGE_FAILED);
  assert.match(p.server.disconnectReason?.message ?? "", /e is out of range/);
});

test("KEXDH_INIT: a connection lost while the worker computes is left alone when the result comes", async () => {
  const p = sshPair({
    greet: false,
    configure: (c, s) => {
      c.supportedKeyExchanges = ["diffie-hellman-group18-sha512"];
      s.dhInlineMaxBits = 4096;
    },
  });
  p.pump.flush();
  assert.equal(transport.dhPoolPending(), 1);
  p.server.loseConnection();
  await settleKex(p);
  assert.equal(p.server.isEncrypted("out"), false, "no reply, no NEWKEYS after the end");
  assert.equal(p.client.secureCount, 0);
});

test("KEX_DH_GEX_REQUEST: a request beyond the server's gexMaxBits is clamped to it, as OpenSSH's DH_GRP_MAX", async () => {
  const p = sshPair({
    configure: (c, s) => {
      c.supportedKeyExchanges = [GEX];
      [c.gexMinBits, c.gexPreferredBits, c.gexMaxBits] = [2048, 8192, 8192];
      s.gexMaxBits = 3072;
    },
  });
  await settleKex(p);
  assert.equal(p.client.secureCount, 1, p.client.disconnectReason?.message);
  assert.equal(bitsOf(gexGroupOf(p.server).p), 3072);
  assert.deepEqual([gexGroupOf(p.server).min, gexGroupOf(p.server).n, gexGroupOf(p.server).max], [2048, 8192, 8192], "the request as sent goes into the hash");
});

test("KEX_DH_GEX_REQUEST: a minimum above the server's gexMaxBits ends the exchange with KEY_EXCHANGE_FAILED", () => {
  const p = sshPair({
    configure: (c, s) => {
      c.supportedKeyExchanges = [GEX];
      [c.gexMinBits, c.gexPreferredBits, c.gexMaxBits] = [8192, 8192, 8192];
      s.gexMaxBits = transport.GEX_MAX_BITS / 2;
    },
  });
  assert.equal(p.server.disconnectReason?.reasonCode, error.DISCONNECT_KEY_EXCHANGE_FAILED);
  assert.match(p.server.disconnectReason?.message ?? "", /bad group size request 8192\/8192\/8192/);
});

test("KEX_DH_GEX_REQUEST: a maximum below the server's gexMinBits ends the exchange with KEY_EXCHANGE_FAILED", () => {
  const p = sshPair({
    configure: (c) => {
      c.supportedKeyExchanges = [GEX];
      [c.gexMinBits, c.gexPreferredBits, c.gexMaxBits] = [1024, 1024, 1024];
    },
  });
  assert.equal(p.server.disconnectReason?.reasonCode, error.DISCONNECT_KEY_EXCHANGE_FAILED);
});

/** A server that answers the group request with `group` whatever was asked. */
function hostileGroup(group: { p: bigint; g: bigint }): Pair {
  return sshPair({
    configure: (c, s) => {
      c.supportedKeyExchanges = [GEX];
      [c.gexMinBits, c.gexPreferredBits, c.gexMaxBits] = [2048, 2048, 3072];
      (s as unknown as { ssh_KEX_DH_GEX_REQUEST: () => void }).ssh_KEX_DH_GEX_REQUEST = () =>
        s.sendPacket(transport.MSG_KEX_DH_GEX_GROUP, new SSHWriter().mpint(group.p).mpint(group.g).finish());
    },
  });
}

test("KEX_DH_GEX_GROUP: a group larger than the client's gexMaxBits ends the exchange before any arithmetic", () => {
  const p = hostileGroup(T.GROUP18);
  assert.equal(p.client.disconnectReason?.reasonCode, error.DISCONNECT_KEY_EXCHANGE_FAILED);
  assert.match(p.client.disconnectReason?.message ?? "", /group of 1025 bytes, more than 3072 bits/);
});

test("KEX_DH_GEX_GROUP: a group smaller than the client's gexMinBits ends the exchange", () => {
  const p = hostileGroup(T.GROUP1);
  assert.equal(p.client.disconnectReason?.reasonCode, error.DISCONNECT_KEY_EXCHANGE_FAILED);
  assert.match(p.client.disconnectReason?.message ?? "", /1024-bit group, outside 2048\.\.3072/);
});

test("KEX_DH_GEX_GROUP: an even modulus or a generator out of range is refused", () => {
  for (const group of [
    { p: T.GROUP14.p + 1n, g: 2n },
    { p: T.GROUP14.p, g: 1n },
    { p: T.GROUP14.p, g: T.GROUP14.p - 1n },
  ]) {
    const p = hostileGroup(group);
    assert.equal(p.client.disconnectReason?.reasonCode, error.DISCONNECT_KEY_EXCHANGE_FAILED, String(group.g));
    assert.match(p.client.disconnectReason?.message ?? "", /unusable group/);
  }
});

/** A pair whose client's KEXINIT has `change` applied to its lists. */
function clientKexInit(change: (lists: transport.KexInitLists) => transport.KexInitLists): Pair {
  return sshPair({
    configure: (c) => {
      const lists = c["kexInitLists"].bind(c);
      (c as unknown as { kexInitLists: () => unknown }).kexInitLists = () => change(lists());
    },
  });
}

test("KEXINIT: a name-list of MAX_NAME_LIST_NAMES names is read, one more ends the connection with PROTOCOL_ERROR", () => {
  assert.equal(transport.MAX_NAME_LIST_NAMES, 256);
  const junk = (n: number) => Array.from({ length: n }, (_, i) => `junk${i}`);
  const ok = clientKexInit((l) => ({ ...l, cipherCS: [...junk(255), "aes128-ctr"] }));
  assert.equal(ok.client.secureCount, 1, ok.server.disconnectReason?.message);
  const over = clientKexInit((l) => ({ ...l, cipherCS: [...junk(256), "aes128-ctr"] }));
  assert.equal(over.server.disconnectReason?.reasonCode, error.DISCONNECT_PROTOCOL_ERROR);
  assert.match(over.server.disconnectReason?.message ?? "", /name-list 2 has 257 names/);
});

test("KEXINIT: a name-list of MAX_NAME_LIST_BYTES bytes is read, one byte more ends the connection with PROTOCOL_ERROR", () => {
  assert.equal(transport.MAX_NAME_LIST_BYTES, 16384);
  const list = (bytes: number) => ["x".repeat(bytes - ",hmac-sha2-256".length), "hmac-sha2-256"];
  const ok = clientKexInit((l) => ({ ...l, macSC: list(16384) }));
  assert.equal(ok.client.secureCount, 1, ok.server.disconnectReason?.message);
  const over = clientKexInit((l) => ({ ...l, macSC: list(16385) }));
  assert.equal(over.server.disconnectReason?.reasonCode, error.DISCONNECT_PROTOCOL_ERROR);
  assert.match(over.server.disconnectReason?.message ?? "", /name-list 5 is 16385 bytes/);
});

test("zlib: a packet that inflates to MAX_DECOMPRESSED_PAYLOAD is read, one byte more ends the connection with COMPRESSION_ERROR", () => {
  assert.equal(transport.MAX_DECOMPRESSED_PAYLOAD, 256 * 1024 + 1024);
  for (const extra of [0, 1]) {
    const p = sshPair({
      configure: (c, s) => {
        c.supportedCompressions = ["zlib"];
        s.supportedCompressions = ["zlib"];
      },
    });
    const clientSvc = new EchoService();
    p.client.requestService(clientSvc);
    p.pump.flush();
    const serverSvc = p.server.service as EchoService;
    // Zeros inflate about a thousandfold: the packet on the wire is small.
    p.client.sendPacket(70, new Uint8Array(transport.MAX_DECOMPRESSED_PAYLOAD - 1 + extra));
    p.pump.flush();
    if (extra === 0) {
      assert.equal(serverSvc.received.length, 1);
      assert.equal(p.server.disconnectReason, undefined);
    } else {
      assert.equal(serverSvc.received.length, 0);
      assert.equal(p.server.disconnectReason?.reasonCode, error.DISCONNECT_COMPRESSION_ERROR);
    }
  }
});
