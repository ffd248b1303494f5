import { test } from "node:test";
import assert from "node:assert/strict";
import { StringTransport } from "@twisted-ts/internet/testing";
import { common, transport } from "@twisted-ts/conch/ssh";
import { error } from "@twisted-ts/conch";
import { EchoService, hostKey, sshPair, type Pair, type TestClientTransport } from "./_sshpair.js";

const { SSHWriter } = common;

/** Starts the echo service from the client and returns both ends' service instances. */
function startEcho(p: Pair): { clientSvc: EchoService; serverSvc: EchoService } {
  const clientSvc = new EchoService();
  p.client.requestService(clientSvc);
  p.pump.flush();
  assert.equal(p.client.service, clientSvc, "client service started on SERVICE_ACCEPT");
  const serverSvc = p.server.service as EchoService;
  assert.ok(serverSvc instanceof EchoService);
  return { clientSvc, serverSvc };
}

function assertEchoes(p: Pair, sizes: number[]): void {
  const { clientSvc } = startEcho(p);
  for (const [i, n] of sizes.entries()) {
    const data = new Uint8Array(n).map((_, j) => (j * 7 + i) & 0xff);
    p.client.sendPacket(60 + (i % 10), data);
  }
  p.pump.flush();
  assert.equal(clientSvc.received.length, sizes.length);
  for (const [i, n] of sizes.entries()) {
    const [num, data] = clientSvc.received[i]!;
    assert.equal(num, 60 + (i % 10));
    assert.equal(data.length, n);
    assert.equal(data[n - 1] ?? 0, n === 0 ? 0 : ((n - 1) * 7 + i) & 0xff);
  }
}

function assertSecure(p: Pair): void {
  assert.equal(p.client.disconnectReason, undefined, p.client.disconnectReason?.message);
  assert.equal(p.server.disconnectReason, undefined, p.server.disconnectReason?.message);
  assert.equal(p.client.secureCount, 1);
  assert.ok(p.client.isEncrypted("both") && p.server.isEncrypted("both"));
  assert.ok(p.client.isVerified("both") && p.server.isVerified("both"));
  assert.ok(p.client.sessionID.length >= 20);
  assert.deepEqual(p.client.sessionID, p.server.sessionID);
}

/** Pumps until no Diffie-Hellman computation is left on the worker thread. */
async function settleKex(p: Pair): Promise<void> {
  while (transport.dhPoolPending() > 0) {
    await transport.dhPoolIdle();
    p.pump.flush();
  }
}

for (const kex of transport.ALL_KEY_EXCHANGES) {
  test(`KEXINIT: ${kex} completes between our client and server`, async () => {
    const p = sshPair({
      configure: (c, s) => {
        c.supportedKeyExchanges = [kex];
        s.supportedKeyExchanges = [...transport.ALL_KEY_EXCHANGES];
      },
    });
    await settleKex(p);
    assertSecure(p);
    assert.equal(p.client.kexAlg, kex);
    assert.equal(p.server.kexAlg, kex);
    assertEchoes(p, [0, 1, 100]);
  });
}

const AEAD = new Set(["chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]);
for (const cipher of transport.ALL_CIPHERS) {
  for (const mac of AEAD.has(cipher) ? ["(implicit)"] : transport.ALL_MACS) {
    test(`cipher ${cipher} with ${mac} carries packets of every size both ways`, () => {
      const p = sshPair({
        configure: (c, s) => {
          c.supportedCiphers = [cipher];
          c.supportedMACs = AEAD.has(cipher) ? ["hmac-sha2-256"] : [mac];
          c.supportedKeyExchanges = ["curve25519-sha256"];
          s.supportedCiphers = [...transport.ALL_CIPHERS];
          s.supportedMACs = [...transport.ALL_MACS];
        },
      });
      assertSecure(p);
      assert.equal(p.client.algorithms?.cipherCS, cipher);
      assertEchoes(p, [0, 1, 15, 16, 17, 255, 4096, 32768, 100_000]);
    });
  }
}

for (const [kind, algs] of [
  ["ed25519", ["ssh-ed25519"]],
  ["ecdsa", ["ecdsa-sha2-nistp256"]],
  ["ecdsa384", ["ecdsa-sha2-nistp384"]],
  ["ecdsa521", ["ecdsa-sha2-nistp521"]],
  ["rsa", ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]],
] as const) {
  for (const alg of algs) {
    test(`host key ${alg} is signed by the server and verified by the client`, () => {
      const key = hostKey(kind);
      const p = sshPair({
        hostKeys: [key],
        configure: (c, s) => {
          c.supportedPublicKeys = [alg];
          s.supportedPublicKeys = [...transport.ALL_PUBLIC_KEYS];
        },
      });
      assertSecure(p);
      assert.equal(p.client.keyAlg, alg);
      assert.deepEqual(p.client.fingerprints, [key.fingerprint()]);
    });
  }
}

test("the client's preference order wins the negotiation", () => {
  const p = sshPair({
    configure: (c, s) => {
      c.supportedCiphers = ["aes256-ctr", "aes128-gcm@openssh.com"];
      s.supportedCiphers = ["aes128-gcm@openssh.com", "aes256-ctr"];
    },
  });
  assertSecure(p);
  assert.equal(p.server.algorithms?.cipherCS, "aes256-ctr");
});

test("KEXINIT with nothing in common ends with KEY_EXCHANGE_FAILED", () => {
  const p = sshPair({
    configure: (c, s) => {
      c.supportedCiphers = ["aes128-ctr"];
      s.supportedCiphers = ["aes256-gcm@openssh.com"];
    },
  });
  assert.equal(p.server.disconnectReason?.reasonCode, error.DISCONNECT_KEY_EXCHANGE_FAILED);
  assert.equal(p.client.disconnectReason?.reasonCode, error.DISCONNECT_KEY_EXCHANGE_FAILED);
  assert.equal(p.client.secureCount, 0);
});

test("verifyHostKey failure disconnects with HOST_KEY_NOT_VERIFIABLE and keeps the cause", () => {
  const p = sshPair({ configure: (c) => (c.rejectWith = "deferred") });
  assert.equal(p.client.secureCount, 0);
  const reason = p.client.disconnectReason;
  assert.ok(reason instanceof error.SSHDisconnectError);
  assert.equal(reason.reasonCode, error.DISCONNECT_HOST_KEY_NOT_VERIFIABLE);
  assert.match(String((reason as { cause?: unknown }).cause), /not this key/);
  assert.equal(p.server.disconnectReason?.reasonCode, error.DISCONNECT_HOST_KEY_NOT_VERIFIABLE);
  assert.equal(p.server.disconnectReason?.byPeer, true);
});

test("verifyHostKey answering with a rejected Promise disconnects too", async () => {
  const p = sshPair({ configure: (c) => (c.rejectWith = "promise") });
  await new Promise<void>((resolve) => setImmediate(resolve));
  p.pump.flush();
  assert.equal(p.client.disconnectReason?.reasonCode, error.DISCONNECT_HOST_KEY_NOT_VERIFIABLE);
  assert.equal(p.client.secureCount, 0);
});

test("verifyHostKey may answer later; packets that arrive meanwhile wait", () => {
  let release: (() => void) | undefined;
  const p = sshPair({
    configure: (c) => {
      c.verifyHostKey = () => new Promise<void>((resolve) => (release = resolve));
    },
  });
  assert.equal(p.client.secureCount, 0);
  assert.ok(release);
  release();
  return new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
    p.pump.flush();
    assert.equal(p.client.secureCount, 1);
    assertSecure(p);
  });
});

test("rekey in the middle of traffic loses nothing and keeps the session id", () => {
  const p = sshPair();
  const { clientSvc, serverSvc } = startEcho(p);
  const sid = p.client.sessionID;
  for (let i = 0; i < 5; i++) p.client.sendPacket(70, new Uint8Array([i]));
  p.client.rekey();
  for (let i = 5; i < 10; i++) p.client.sendPacket(70, new Uint8Array([i]));
  p.pump.flush();
  p.server.rekey();
  for (let i = 10; i < 15; i++) p.client.sendPacket(70, new Uint8Array([i]));
  p.pump.flush();
  assert.deepEqual(
    serverSvc.received.map(([, d]) => d[0]),
    Array.from({ length: 15 }, (_, i) => i),
  );
  assert.equal(clientSvc.received.length, 15);
  assert.deepEqual(p.client.sessionID, sid);
  assert.equal(p.client.secureCount, 1, "connectionSecure runs once");
  assert.equal(p.client.keyExchangeInProgress, false);
});

test("key material: the shared secret is zeroed after key setup and a rekey drops the previous keys", () => {
  const secrets: Uint8Array[] = [];
  const spy = (t: transport.SSHServerTransport | TestClientTransport): void => {
    const orig = t["keySetup"].bind(t);
    t["keySetup"] = (K: Uint8Array, H: Uint8Array) => {
      secrets.push(K);
      assert.ok(K.some((b) => b !== 0), "K arrives whole");
      orig(K, H);
    };
  };
  const p = sshPair({ configure: (c, s) => (spy(c), spy(s)) });
  const { clientSvc } = startEcho(p);
  const before = [p.client["sealer"], p.client["opener"], p.server["sealer"], p.server["opener"]];
  p.client.rekey();
  p.pump.flush();
  const after = [p.client["sealer"], p.client["opener"], p.server["sealer"], p.server["opener"]];
  assert.equal(secrets.length, 4, "two exchanges, both sides");
  for (const K of secrets) assert.ok(K.every((b) => b === 0), "K is wiped");
  for (let i = 0; i < 4; i++) assert.notEqual(after[i], before[i], "the previous keys are no longer held");
  assert.equal(p.client["pendingKeys"], undefined);
  assert.equal(p.server["pendingKeys"], undefined);
  p.client.sendPacket(70, Uint8Array.of(1));
  p.pump.flush();
  assert.equal(clientSvc.received.length, 1, "the new keys work");
});

test("a rekey starts by itself after rekeyBytes", () => {
  const p = sshPair({ configure: (c) => (c.rekeyBytes = 10_000) });
  const { serverSvc } = startEcho(p);
  const before = p.client.ourKexInitPayload;
  for (let i = 0; i < 20; i++) p.client.sendPacket(80, new Uint8Array(1000));
  p.pump.flush();
  assert.notDeepEqual(p.client.ourKexInitPayload, before);
  assert.equal(serverSvc.received.length, 20);
  assertSecure(p);
});

for (const cipher of ["aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes128-ctr"]) {
  test(`${cipher}: a rekey set off by a large packet (sealed as pieces) goes out after the whole packet`, () => {
    const p = sshPair({
      configure: (c, s) => {
        c.rekeyBytes = 50_000;
        c.supportedCiphers = [cipher];
        s.supportedCiphers = [...transport.ALL_CIPHERS];
      },
    });
    const { serverSvc } = startEcho(p);
    const before = p.client.ourKexInitPayload;
    const head = new Uint8Array(8);
    const body = new Uint8Array(32768);
    for (let i = 0; i < 6; i++) {
      head.fill(i);
      body.fill(100 + i);
      // The same arrays each time: the transport must not keep them.
      p.client.sendPacketParts(94, head, body);
    }
    p.pump.flush();
    assert.notDeepEqual(p.client.ourKexInitPayload, before, "rekeyed");
    assert.equal(serverSvc.received.length, 6);
    for (const [i, [type, data]] of serverSvc.received.entries()) {
      assert.equal(type, 94);
      assert.deepEqual(Buffer.from(data), Buffer.concat([new Uint8Array(8).fill(i), new Uint8Array(32768).fill(100 + i)]));
    }
    assertSecure(p);
  });
}

test("a rekey starts by itself after rekeyInterval seconds", () => {
  const p = sshPair({ configure: (_c, s) => (s.loginGraceTime = 0) });
  startEcho(p);
  const before = p.client.ourKexInitPayload;
  p.clock.advance(transport.DEFAULT_REKEY_INTERVAL + 1);
  p.pump.flush();
  assert.notDeepEqual(p.client.ourKexInitPayload, before);
  assertSecure(p);
});

test("plain zlib, which would inflate before authentication, is not offered by default (OpenSSH 7.4)", () => {
  assert.deepEqual([...transport.DEFAULT_COMPRESSIONS], ["none", "zlib@openssh.com"]);
  assert.ok(transport.ALL_COMPRESSIONS.includes("zlib"));
  const p = sshPair({});
  assert.deepEqual(p.server.supportedCompressions, ["none", "zlib@openssh.com"]);
  assert.deepEqual(p.client.supportedCompressions, ["none", "zlib@openssh.com"]);
});

for (const comp of ["zlib", "zlib@openssh.com"]) {
  test(`compression ${comp} carries packets both ways`, () => {
    const p = sshPair({ configure: (c, s) => (c.supportedCompressions = s.supportedCompressions = [comp]) });
    assertSecure(p);
    assert.equal(p.client.algorithms?.compCS, comp);
    assertEchoes(p, [0, 10, 50_000]);
  });
}

test("strict kex: IGNORE before NEWKEYS ends the connection (Terrapin)", () => {
  const p = sshPair({ greet: false });
  // Slip an IGNORE into the client's stream ahead of its KEXINIT, as a Terrapin attacker would.
  p.client.sendIgnore("x");
  p.pump.flush();
  assert.equal(p.server.disconnectReason?.reasonCode, error.DISCONNECT_PROTOCOL_ERROR);
  assert.match(p.server.disconnectReason?.description ?? "", /strict KEX/);
});

test("without strict kex an early IGNORE is accepted", () => {
  const p = sshPair({
    greet: false,
    configure: (c) => {
      // A client that does not offer strict kex: drop the signal from its KEXINIT.
      const lists = c["kexInitLists"].bind(c);
      (c as unknown as { kexInitLists: () => unknown })["kexInitLists"] = () => {
        const l = lists();
        return { ...l, kex: l.kex.filter((k) => !k.startsWith("kex-strict")) };
      };
    },
  });
  p.client.sendIgnore("x");
  p.pump.flush();
  assertSecure(p);
});

test("SERVICE_REQUEST for an unknown service ends with SERVICE_NOT_AVAILABLE", () => {
  const p = sshPair();
  p.client.sendPacket(transport.MSG_SERVICE_REQUEST, new SSHWriter().string("ssh-nonsense").finish());
  p.pump.flush();
  assert.equal(p.server.disconnectReason?.reasonCode, error.DISCONNECT_SERVICE_NOT_AVAILABLE);
});

test("ssh-connection is refused before authentication", () => {
  const p = sshPair();
  p.client.sendPacket(transport.MSG_SERVICE_REQUEST, new SSHWriter().string("ssh-connection").finish());
  p.pump.flush();
  assert.equal(p.server.disconnectReason?.reasonCode, error.DISCONNECT_SERVICE_NOT_AVAILABLE);
});

test("a packet that fails its MAC ends with MAC_ERROR", () => {
  for (const [cipher, mac] of [
    ["aes128-ctr", "hmac-sha2-256"],
    ["aes128-ctr", "hmac-sha2-256-etm@openssh.com"],
    ["aes128-gcm@openssh.com", "hmac-sha2-256"],
    ["chacha20-poly1305@openssh.com", "hmac-sha2-256"],
  ] as const) {
    const p = sshPair({
      configure: (c) => {
        c.supportedCiphers = [cipher];
        c.supportedMACs = [mac];
      },
    });
    startEcho(p);
    p.client.sendPacket(90, new Uint8Array(64));
    const wire = p.clientTransport.takeOutgoing()!;
    wire[wire.length - 1]! ^= 1;
    p.server.dataReceived(wire);
    assert.equal(p.server.disconnectReason?.reasonCode, error.DISCONNECT_MAC_ERROR, `${cipher} ${mac}`);
  }
});

// ---------------------------------------------------------------- bad input at the server

function serverOnStringTransport(): { server: transport.SSHServerTransport; t: StringTransport } {
  const p = sshPair({ greet: false });
  const server = p.serverFactory.buildProtocol(p.serverTransport.getPeer())!;
  server.clock = p.clock;
  const t = new StringTransport();
  server.makeConnection(t);
  return { server, t };
}

test("version: a non-SSH identification line is refused", () => {
  const { server, t } = serverOnStringTransport();
  server.dataReceived(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
  assert.equal(server.disconnectReason?.reasonCode, error.DISCONNECT_PROTOCOL_ERROR);
  assert.ok(t.disconnecting);
});

test("version: SSH-1.5 gets PROTOCOL_VERSION_NOT_SUPPORTED", () => {
  const { server, t } = serverOnStringTransport();
  server.dataReceived(new TextEncoder().encode("SSH-1.5-OldClient\r\n"));
  assert.equal(server.disconnectReason?.reasonCode, error.DISCONNECT_PROTOCOL_VERSION_NOT_SUPPORTED);
  assert.ok(t.disconnecting);
});

test("version: an endless identification line is cut off after MAX_VERSION_BUFFER bytes", () => {
  const { server, t } = serverOnStringTransport();
  const chunk = new Uint8Array(1000).fill(0x41);
  chunk.set(new TextEncoder().encode("SSH-2.0-"));
  for (let i = 0; i < 10 && !t.disconnecting; i++) server.dataReceived(chunk);
  assert.ok(t.disconnecting);
  assert.equal(server.disconnectReason?.reasonCode, error.DISCONNECT_PROTOCOL_ERROR);
});

test("version: the line is found when it arrives one byte at a time; \\r is stripped", () => {
  const { server, t } = serverOnStringTransport();
  for (const b of new TextEncoder().encode("SSH-2.0-Peer_1.0\r\n")) server.dataReceived(new Uint8Array([b]));
  assert.equal(server.otherVersionString, "SSH-2.0-Peer_1.0");
  assert.ok(!t.disconnecting);
});

test("version: maxVersionLength is a setting", () => {
  const { server, t } = serverOnStringTransport();
  server.maxVersionLength = 100;
  server.dataReceived(new TextEncoder().encode("SSH-2.0-" + "A".repeat(90)));
  assert.ok(!t.disconnecting);
  server.dataReceived(new TextEncoder().encode("AAAA"));
  assert.ok(t.disconnecting);
  assert.match(server.disconnectReason?.description ?? "", /longer than 100 bytes/);
});

test("packet: maxPacketLength is a setting", () => {
  const { server, t } = serverOnStringTransport();
  server.maxPacketLength = 1024;
  server.dataReceived(new TextEncoder().encode("SSH-2.0-x\r\n"));
  server.dataReceived(new SSHWriter().uint32(1025).uint32(0).finish());
  assert.ok(t.disconnecting);
  assert.match(server.disconnectReason?.description ?? "", /bad packet length 1025/);
});

function rawPacket(payload: Uint8Array, padding = 8): Uint8Array {
  const len = 1 + payload.length + padding;
  return new SSHWriter().uint32(len).byte(padding).raw(payload).raw(new Uint8Array(padding)).finish();
}

test("packet: a length over MAX_PACKET_LENGTH ends with PROTOCOL_ERROR before buffering it", () => {
  const { server, t } = serverOnStringTransport();
  server.dataReceived(new TextEncoder().encode("SSH-2.0-x\r\n"));
  server.dataReceived(new SSHWriter().uint32(transport.MAX_PACKET_LENGTH + 1).uint32(0).finish());
  assert.ok(t.disconnecting);
  assert.equal(server.disconnectReason?.reasonCode, error.DISCONNECT_PROTOCOL_ERROR);
});

test("packet: bad padding ends with PROTOCOL_ERROR", () => {
  const { server, t } = serverOnStringTransport();
  server.dataReceived(new TextEncoder().encode("SSH-2.0-x\r\n"));
  // padding_length 200 inside a 16-byte packet.
  server.dataReceived(new SSHWriter().uint32(12).byte(200).raw(new Uint8Array(11)).finish());
  assert.ok(t.disconnecting);
  assert.equal(server.disconnectReason?.reasonCode, error.DISCONNECT_PROTOCOL_ERROR);
});

test("packet: a service message before key exchange ends with PROTOCOL_ERROR", () => {
  const { server, t } = serverOnStringTransport();
  server.dataReceived(new TextEncoder().encode("SSH-2.0-x\r\n"));
  server.dataReceived(rawPacket(new SSHWriter().byte(transport.MSG_SERVICE_REQUEST).string("ssh-userauth").finish()));
  assert.ok(t.disconnecting);
  assert.equal(server.disconnectReason?.reasonCode, error.DISCONNECT_PROTOCOL_ERROR);
});

test("packet: a KEX reply sent to a server is a protocol error, not a crash", () => {
  const p = sshPair({ greet: false });
  p.pump.pump();
  p.server.dataReceived(rawPacket(new Uint8Array([transport.MSG_KEXDH_REPLY, 0, 0, 0, 0])));
  assert.equal(p.server.disconnectReason?.reasonCode, error.DISCONNECT_PROTOCOL_ERROR);
});

test("login grace: a client that goes silent mid key exchange is disconnected", () => {
  const { server, t } = serverOnStringTransport();
  server.dataReceived(new TextEncoder().encode("SSH-2.0-x\r\n"));
  (server.clock as unknown as { advance(n: number): void }).advance(transport.DEFAULT_LOGIN_GRACE_TIME + 1);
  assert.ok(t.disconnecting);
  assert.equal(server.disconnectReason?.reasonCode, error.DISCONNECT_BY_APPLICATION);
});

test("a fault on one connection leaves another untouched", () => {
  const good = sshPair();
  const bad = sshPair();
  bad.client.sendPacket(transport.MSG_SERVICE_REQUEST, new SSHWriter().string("nope").finish());
  bad.pump.flush();
  assert.ok(bad.server.disconnectReason);
  assertEchoes(good, [10]);
});

test("SERVICE_ACCEPT starts the requested service on the client", () => {
  const p = sshPair();
  const svc = new EchoService();
  p.client.requestService(svc);
  p.pump.flush();
  assert.equal(p.client.service, svc);
  assert.equal(svc.transport, p.client);
});

test("DISCONNECT from the peer reaches receiveError and disconnectReason", () => {
  const p = sshPair();
  p.server.sendDisconnect(error.DISCONNECT_BY_APPLICATION, "bye now");
  p.pump.flush();
  assert.deepEqual(p.client.errors, [[error.DISCONNECT_BY_APPLICATION, "bye now"]]);
  assert.equal(p.client.disconnectReason?.byPeer, true);
});

test("hostKey helper gives distinct key types", () => {
  assert.equal(hostKey("rsa").sshType(), "ssh-rsa");
});

test("rekey: service messages a peer keeps sending after its KEXINIT are delivered (AsyncSSH does this)", () => {
  const p = sshPair();
  const { serverSvc } = startEcho(p);
  p.client.rekey();
  // Bypass the client's own queue, as a peer that keeps sending during its key exchange would.
  (p.client as unknown as { writePacket(t: number, d: Uint8Array): void }).writePacket(70, new Uint8Array([42]));
  p.pump.flush();
  assert.deepEqual(serverSvc.received.map(([n, d]) => [n, d[0]]), [[70, 42]]);
  assertSecure(p);
  assert.equal(p.server.keyExchangeInProgress, false);
});

test("first_kex_packet_follows: a wrong guess (first algorithms differ) is skipped, a right one is used", () => {
  for (const [clientFirst, guessRight] of [
    ["curve25519-sha256", false],
    ["mlkem768x25519-sha256", true],
  ] as const) {
    const p = sshPair({
      greet: false,
      configure: (c) => {
        c.supportedKeyExchanges = [clientFirst, ...transport.DEFAULT_KEY_EXCHANGES.filter((k) => k !== clientFirst)];
        // The client's KEXINIT says a guessed key exchange packet follows.
        const lists = c["kexInitLists"].bind(c);
        (c as unknown as { kexInitLists: () => unknown }).kexInitLists = () => ({ ...lists(), firstKexPacketFollows: true });
      },
    });
    // The guess: a KEX_ECDH_INIT whose public value is garbage.
    (p.client as unknown as { writePacket(t: number, d: Uint8Array): void }).writePacket(
      transport.MSG_KEX_ECDH_INIT,
      new SSHWriter().string(new Uint8Array(7)).finish(),
    );
    p.pump.flush();
    if (guessRight) {
      // Both sides put mlkem768x25519-sha256 first: the server takes the guessed packet, and its garbage fails the exchange.
      assert.equal(p.server.disconnectReason?.reasonCode, error.DISCONNECT_KEY_EXCHANGE_FAILED);
    } else {
      // The server prefers mlkem768x25519-sha256: the guess is skipped and the real init that follows succeeds.
      assertSecure(p);
      assert.equal(p.server.kexAlg, clientFirst);
    }
  }
});
