import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { error } from "@twisted-ts/conch";
import { requirePythonModule, runCommand, SYSTEM_PYTHON } from "../../../_support/peers.js";
import { T } from "./_load.js";

const { CIPHERS, MACS, createSealer, createOpener } = T;

function keysFor(cipher: string, mac: string) {
  const c = CIPHERS[cipher]!;
  const m = MACS[mac]!;
  return { key: randomBytes(c.keyLength), iv: randomBytes(c.ivLength), macKey: randomBytes(m.keyLength) };
}

function pair(cipher: string, mac: string) {
  const keys = keysFor(cipher, mac);
  return { keys, sealer: createSealer(cipher, mac, keys), opener: createOpener(cipher, mac, keys) };
}

/** Opens one wire packet the way the transport does: header first, then the whole packet. */
function openWire(opener: ReturnType<typeof createOpener>, seq: number, wire: Uint8Array): Uint8Array {
  const len = opener.decryptLength(seq, wire.subarray(0, opener.headerLength));
  assert.equal(wire.length, 4 + len + opener.macLength, "wire length matches the decrypted packet_length");
  return opener.open(seq, wire);
}

const cipherNames = Object.keys(CIPHERS);
const macNames = Object.keys(MACS);
const payloadSizes = [0, 1, 3, 4, 7, 8, 11, 12, 15, 16, 17, 31, 32, 33, 255, 256, 1000, 32768];

test("the cipher table has every algorithm the transport negotiates", () => {
  for (const name of ["chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr", "aes128-cbc", "aes192-cbc", "aes256-cbc", "none"]) {
    assert.ok(CIPHERS[name], name);
    assert.equal(CIPHERS[name]!.name, name);
  }
  assert.equal(CIPHERS["chacha20-poly1305@openssh.com"]!.keyLength, 64);
  assert.equal(CIPHERS["chacha20-poly1305@openssh.com"]!.ivLength, 0);
  assert.equal(CIPHERS["aes128-gcm@openssh.com"]!.ivLength, 12);
  assert.ok(CIPHERS["aes256-gcm@openssh.com"]!.aead);
  assert.ok(!CIPHERS["aes256-ctr"]!.aead);
  for (const name of ["hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "hmac-sha1-etm@openssh.com", "hmac-sha2-256", "hmac-sha2-512", "hmac-sha1", "none"]) {
    assert.ok(MACS[name], name);
  }
  assert.equal(MACS["hmac-sha2-512"]!.macLength, 64);
  assert.ok(MACS["hmac-sha1-etm@openssh.com"]!.etm);
});

for (const cipher of cipherNames) {
  const macs = CIPHERS[cipher]!.aead ? ["hmac-sha2-256"] : macNames;
  for (const mac of macs) {
    test(`${cipher} with ${mac}: seal then open gives every payload back, across a sequence number wrap`, () => {
      const { sealer, opener } = pair(cipher, mac);
      let seq = 0xfffffff0;
      for (const n of payloadSizes) {
        for (let k = 0; k < 2; k++) {
          const payload = randomBytes(n);
          const wire = sealer.seal(seq, payload);
          assert.equal(wire.length % 1, 0);
          assert.equal(sealer.macLength, opener.macLength);
          const got = openWire(opener, seq, wire);
          assert.deepEqual(Buffer.from(got), payload);
          seq = (seq + 1) >>> 0;
        }
      }
      assert.ok(seq < 0xfffffff0, "the sequence number wrapped");
    });
  }
}

test("padding is at least 4 bytes and makes the right multiple (length excluded for ETM and AEAD)", () => {
  const cases: Array<[string, string, number, boolean]> = [
    ["none", "none", 8, true],
    ["aes128-ctr", "hmac-sha2-256", 16, true],
    ["aes128-ctr", "hmac-sha2-256-etm@openssh.com", 16, false],
    ["aes128-gcm@openssh.com", "none", 16, false],
    ["chacha20-poly1305@openssh.com", "none", 8, false],
  ];
  for (const [cipher, mac, bs, lengthCovered] of cases) {
    const { sealer } = pair(cipher, mac);
    const plain = createSealer("none", "none", { key: new Uint8Array(0), iv: new Uint8Array(0), macKey: new Uint8Array(0) });
    assert.equal(plain.blockSize, 8);
    assert.equal(sealer.blockSize, bs, cipher);
    for (let n = 0; n < 40; n++) {
      const wire = sealer.seal(0, new Uint8Array(n));
      const plen = wire.length - 4 - sealer.macLength;
      const covered = lengthCovered ? plen + 4 : plen;
      assert.equal(covered % bs, 0, `${cipher}/${mac}: ${n}-byte payload`);
      const pad = plen - 1 - n;
      assert.ok(pad >= 4 && pad < 4 + bs, `${cipher}: padding ${pad}`);
    }
  }
});

test("none/none is the cleartext packet format", () => {
  const { sealer, opener } = pair("none", "none");
  assert.equal(opener.headerLength, 8);
  assert.equal(opener.macLength, 0);
  const wire = sealer.seal(0, Uint8Array.of(20, 1, 2, 3));
  assert.equal(wire.length, 16);
  assert.deepEqual([...wire.subarray(0, 9)], [0, 0, 0, 12, 7, 20, 1, 2, 3]);
  assert.deepEqual([...openWire(opener, 0, wire)], [20, 1, 2, 3]);
});

test("header lengths: 4 for ETM and AEAD, the block size otherwise", () => {
  assert.equal(pair("chacha20-poly1305@openssh.com", "none").opener.headerLength, 4);
  assert.equal(pair("aes256-gcm@openssh.com", "none").opener.headerLength, 4);
  assert.equal(pair("aes128-ctr", "hmac-sha2-256-etm@openssh.com").opener.headerLength, 4);
  assert.equal(pair("aes128-ctr", "hmac-sha2-256").opener.headerLength, 16);
  assert.equal(pair("aes128-cbc", "hmac-sha1").opener.headerLength, 16);
  if (CIPHERS["3des-cbc"]) assert.equal(pair("3des-cbc", "hmac-sha1").opener.headerLength, 8);
});

test("decryptLength keeps the stream state of CTR and CBC across packets of many sizes", () => {
  for (const cipher of ["aes128-ctr", "aes256-cbc"]) {
    const { sealer, opener } = pair(cipher, "hmac-sha2-256");
    const wires = payloadSizes.map((n, i) => sealer.seal(i, randomBytes(n)));
    // The transport sees the header first and the rest of the packet later.
    wires.forEach((wire, i) => {
      const header = Uint8Array.from(wire.subarray(0, opener.headerLength));
      const len = opener.decryptLength(i, header);
      assert.equal(len, wire.length - 4 - 32);
      assert.equal(opener.open(i, wire).length, payloadSizes[i]);
    });
  }
});

// Tampering: every byte of the header, body and MAC/tag region is covered by some check.
const tamperCases: Array<[string, string]> = [
  ["chacha20-poly1305@openssh.com", "none"],
  ["aes128-gcm@openssh.com", "none"],
  ["aes256-gcm@openssh.com", "none"],
  ["aes128-ctr", "hmac-sha2-256"],
  ["aes256-ctr", "hmac-sha2-512-etm@openssh.com"],
  ["aes128-cbc", "hmac-sha1"],
  ["aes192-ctr", "hmac-sha1-etm@openssh.com"],
];

for (const [cipher, mac] of tamperCases) {
  test(`${cipher} with ${mac}: a flipped bit in the ciphertext or the tag is a MACError with MAC_ERROR`, () => {
    const payload = randomBytes(100);
    const probe = pair(cipher, mac).sealer.seal(7, payload);
    const headerLength = pair(cipher, mac).opener.headerLength;
    // Flip one bit past the length field (a changed length is a different framing error), in
    // the body and in the MAC/tag.
    for (const pos of [headerLength, probe.length - 20, probe.length - 1]) {
      const { sealer, opener } = pair(cipher, mac);
      const wire = sealer.seal(7, payload);
      wire[pos]! ^= 0x01;
      assert.throws(
        () => openWire(opener, 7, wire),
        (e: unknown) => e instanceof error.MACError && e.code === "ERR_SSH_MAC" && e.reasonCode === error.DISCONNECT_MAC_ERROR,
        `${cipher}/${mac} byte ${pos}`,
      );
    }
  });

  test(`${cipher} with ${mac}: the wrong sequence number fails authentication`, () => {
    const { sealer, opener } = pair(cipher, mac);
    if (cipher.includes("gcm")) return; // GCM's nonce is its own counter, not seq.
    const wire = sealer.seal(5, randomBytes(64));
    assert.throws(() => {
      const len = opener.decryptLength(6, wire.subarray(0, opener.headerLength));
      if (4 + len + opener.macLength !== wire.length) throw new error.MACError("length differs");
      opener.open(6, wire);
    }, error.MACError);
  });
}

test("chacha20-poly1305@openssh.com: a flipped length bit is caught by the tag or the length checks", () => {
  const { sealer, opener } = pair("chacha20-poly1305@openssh.com", "none");
  const wire = sealer.seal(1, randomBytes(50));
  wire[3]! ^= 0x08;
  assert.throws(() => opener.open(1, wire), (e: unknown) => e instanceof error.MACError || e instanceof error.PacketFormatError);
});

/** Builds a packet by hand (cleartext framing with chosen padding) and seals it with a raw cipher. */
function handPacket(padding: number, payload: Uint8Array): { plain: Uint8Array; plen: number } {
  const plen = 1 + payload.length + padding;
  const plain = new Uint8Array(4 + plen);
  new DataView(plain.buffer).setUint32(0, plen);
  plain[4] = padding;
  plain.set(payload, 5);
  return { plain, plen };
}

test("bad padding: under 4 bytes, or longer than the packet, is a PacketFormatError with PROTOCOL_ERROR", () => {
  const none = pair("none", "none");
  const check = (e: unknown) => e instanceof error.PacketFormatError && e.code === "ERR_SSH_BAD_PACKET" && e.reasonCode === error.DISCONNECT_PROTOCOL_ERROR;
  // 3 bytes of padding: 4 + 1 + 8 + 3 = 16.
  const short = handPacket(3, new Uint8Array(8)).plain;
  assert.throws(() => openWire(none.opener, 0, short), check);
  // padding_length 200 in a 12-byte packet.
  const long = handPacket(7, new Uint8Array(4)).plain;
  long[4] = 200;
  assert.throws(() => openWire(none.opener, 0, long), check);
  // Same through an AEAD, so the framing error is found after authentication.
  const gcmKeys = keysFor("aes128-gcm@openssh.com", "none");
  const gcmOpener = createOpener("aes128-gcm@openssh.com", "none", gcmKeys);
  const raw = handPacket(2, new Uint8Array(13)).plain; // 1 + 13 + 2 = 16
  const c = createGcmRaw(gcmKeys.key, gcmKeys.iv, raw);
  assert.throws(() => openWire(gcmOpener, 0, c), check);
});

import { createCipheriv, createDecipheriv } from "node:crypto";
function createGcmRaw(key: Uint8Array, iv: Uint8Array, plain: Uint8Array): Uint8Array {
  const c = createCipheriv("aes-128-gcm", key, iv);
  c.setAAD(plain.subarray(0, 4));
  const ct = c.update(plain.subarray(4));
  c.final();
  return Buffer.concat([plain.subarray(0, 4), ct, c.getAuthTag()]);
}

test("a packet length that is not a multiple of the block size is a PacketFormatError", () => {
  const check = (e: unknown) => e instanceof error.PacketFormatError && e.reasonCode === error.DISCONNECT_PROTOCOL_ERROR;
  // Cleartext: 4 + 9 is not a multiple of 8.
  const none = pair("none", "none");
  const odd = handPacket(4, new Uint8Array(4)).plain; // plen 9
  assert.throws(() => openWire(none.opener, 0, odd), check);
  // ETM / AEAD: the length itself must be a multiple.
  for (const [cipher, mac] of [["aes128-gcm@openssh.com", "none"], ["aes128-ctr", "hmac-sha2-256-etm@openssh.com"], ["chacha20-poly1305@openssh.com", "none"]] as const) {
    const { opener } = pair(cipher, mac);
    const wire = new Uint8Array(4 + 20 + opener.macLength);
    new DataView(wire.buffer).setUint32(0, 20);
    if (cipher.startsWith("chacha")) {
      // The length is encrypted: test through decryptLength-independent open().
      assert.throws(() => opener.open(0, wire), (e: unknown) => e instanceof error.PacketFormatError || e instanceof error.MACError);
    } else {
      assert.throws(() => opener.open(0, wire), check, cipher);
    }
  }
  // Classic MAC over CBC: the decrypted length is checked before anything is decrypted further.
  const { keys, opener } = pair("aes128-cbc", "hmac-sha2-256");
  const plain = handPacket(4, new Uint8Array(7)).plain; // 4 + 12 = 16: aligned
  new DataView(plain.buffer).setUint32(0, 20); // claims 20: 24 is not a multiple of 16
  const c = createCipheriv("aes-128-cbc", keys.key, keys.iv).setAutoPadding(false);
  const first = c.update(plain);
  const wire = Buffer.concat([first, new Uint8Array(8 + 32)]);
  assert.equal(opener.decryptLength(0, wire.subarray(0, 16)), 20);
  assert.throws(() => opener.open(0, wire), check);
});

test("aes-gcm: the 64-bit invocation counter carries across bytes", () => {
  const keys = keysFor("aes128-gcm@openssh.com", "none");
  const iv = Buffer.from(keys.iv);
  iv.fill(0xff, 4); // the counter is all ones: next packet wraps to zero
  const k = { ...keys, iv };
  const sealer = createSealer("aes128-gcm@openssh.com", "none", k);
  const opener = createOpener("aes128-gcm@openssh.com", "none", k);
  for (let i = 0; i < 3; i++) {
    const p = randomBytes(40);
    assert.deepEqual(Buffer.from(openWire(opener, i, sealer.seal(i, p))), p);
  }
  // Counters used so far: ff..ff, 0, 1; the next packet uses 2 with the fixed field unchanged.
  const next = Buffer.from(iv);
  next.fill(0, 4);
  next[11] = 2;
  const wire = sealer.seal(3, randomBytes(24));
  const end = wire.length - 16;
  const d = createDecipheriv("aes-128-gcm", keys.key, next);
  d.setAAD(wire.subarray(0, 4));
  d.setAuthTag(wire.subarray(end));
  d.update(wire.subarray(4, end));
  assert.doesNotThrow(() => d.final());
});

test("chacha20-poly1305@openssh.com matches a packet built from the raw primitives", async () => {
  // K_2 = key[0:32] (payload, Poly1305 key from block 0), K_1 = key[32:64] (length), nonce = seq.
  const { poly1305 } = await import("@noble/ciphers/_poly1305.js");
  const { chacha20orig } = await import("@noble/ciphers/chacha.js");
  const key = Uint8Array.from({ length: 64 }, (_, i) => i);
  const seq = 0x01020304;
  const nonce = new Uint8Array(8);
  new DataView(nonce.buffer).setUint32(4, seq);
  const sealer = createSealer("chacha20-poly1305@openssh.com", "none", { key, iv: new Uint8Array(0), macKey: new Uint8Array(0) });
  const payload = new TextEncoder().encode("\x05ssh-userauth");
  const wire = sealer.seal(seq, payload);
  const end = wire.length - 16;
  const encLen = chacha20orig(key.subarray(32), nonce, new Uint8Array(4).fill(0), new Uint8Array(4));
  const len = Buffer.from(wire.subarray(0, 4)).map((b, i) => b ^ encLen[i]!);
  assert.equal(Buffer.from(len).readUInt32BE(0), end - 4);
  const block0 = chacha20orig(key.subarray(0, 32), nonce, new Uint8Array(64));
  const tag = poly1305(wire.subarray(0, end), block0.subarray(0, 32));
  assert.deepEqual(Buffer.from(wire.subarray(end)), Buffer.from(tag));
  const body = chacha20orig(key.subarray(0, 32), nonce, wire.subarray(4, end), undefined, 1);
  const pad = body[0]!;
  assert.deepEqual(Buffer.from(body.subarray(1, body.length - pad)), Buffer.from(payload));
});

const interopCases: Array<[string, string]> = [
  ["chacha20-poly1305@openssh.com", "none"],
  ["aes128-gcm@openssh.com", "none"],
  ["aes256-gcm@openssh.com", "none"],
  ["aes128-ctr", "hmac-sha2-256-etm@openssh.com"],
  ["aes192-ctr", "hmac-sha2-512"],
  ["aes256-ctr", "hmac-sha1-etm@openssh.com"],
  ["aes128-cbc", "hmac-sha2-512-etm@openssh.com"],
  ["aes256-cbc", "hmac-sha1"],
  ["aes256-ctr", "hmac-sha2-256"],
  ["aes192-cbc", "hmac-md5"],
];

test("every cipher interoperates with python3-asyncssh both ways", async (t) => {
  if (!requirePythonModule(t, "asyncssh", "python3-asyncssh")) return;
  const script = fileURLToPath(new URL("../../../../../test/conch/ssh/_transport/asyncssh_packet.py", import.meta.url));
  const cases = [...interopCases];
  if (CIPHERS["3des-cbc"]) cases.push(["3des-cbc", "hmac-sha2-256"]);
  for (const [cipher, mac] of cases) {
    const keys = keysFor(cipher, mac);
    const sealer = createSealer(cipher, mac, keys);
    const payloads = [randomBytes(1), randomBytes(40), randomBytes(1000)];
    const seqs = [0, 0xffffffff, 0];
    const ours = payloads.map((p, i) => [seqs[i], Buffer.from(sealer.seal(seqs[i]!, p)).toString("hex")]);
    // Their packets: `padding_length || payload || padding`, block-aligned for this cipher.
    const aadLen = CIPHERS[cipher]!.aead || MACS[mac]!.etm ? 0 : 4;
    const bs = Math.max(8, CIPHERS[cipher]!.blockSize);
    const theirs = payloads.map((p, i) => {
      let pad = bs - ((aadLen + 1 + p.length) % bs);
      if (pad < 4) pad += bs;
      return [seqs[i], Buffer.concat([Uint8Array.of(pad), p, randomBytes(pad)]).toString("hex")];
    });
    const req = {
      cipher, mac, blockSize: bs,
      key: Buffer.from(keys.key).toString("hex"), iv: Buffer.from(keys.iv).toString("hex"), macKey: Buffer.from(keys.macKey).toString("hex"),
      open: ours, seal: theirs,
    };
    const r = await runCommand(SYSTEM_PYTHON, [script], { input: JSON.stringify(req) });
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout.toString()) as { open: Array<string | null>; seal: string[] };
    assert.deepEqual(res.open, payloads.map((p) => p.toString("hex")), `asyncssh opens our ${cipher}/${mac} packets`);
    const opener = createOpener(cipher, mac, keys);
    res.seal.forEach((hex, i) => {
      const got = openWire(opener, seqs[i]!, Buffer.from(hex, "hex"));
      assert.deepEqual(Buffer.from(got), payloads[i], `we open asyncssh's ${cipher}/${mac} packet ${i}`);
    });
  }
});

test("decryptLength asked twice for one packet does not advance a stream cipher", () => {
  for (const [cipher, mac] of [["aes128-ctr", "hmac-sha2-256"], ["aes128-cbc", "hmac-sha1"], ["chacha20-poly1305@openssh.com", "none"], ["aes128-gcm@openssh.com", "none"], ["none", "none"]] as const) {
    const { sealer, opener } = pair(cipher, mac);
    for (let seq = 0; seq < 3; seq++) {
      const payload = randomBytes(100 + seq);
      const wire = sealer.seal(seq, payload);
      const header = wire.subarray(0, opener.headerLength);
      const a = opener.decryptLength(seq, header);
      const b = opener.decryptLength(seq, header);
      assert.equal(a, b, cipher);
      assert.deepEqual(Buffer.from(opener.open(seq, wire)), payload, cipher);
    }
  }
});

test("open ignores bytes after the packet and returns a payload that does not share the wire's memory", () => {
  for (const [cipher, mac] of [["none", "none"], ["none", "hmac-sha2-256-etm@openssh.com"], ["aes128-ctr", "hmac-sha2-256-etm@openssh.com"], ["aes256-gcm@openssh.com", "none"], ["chacha20-poly1305@openssh.com", "none"]] as const) {
    const { sealer, opener } = pair(cipher, mac);
    const payload = randomBytes(64);
    const wire = Buffer.concat([sealer.seal(0, payload), randomBytes(50)]);
    opener.decryptLength(0, wire.subarray(0, opener.headerLength));
    const got = opener.open(0, wire);
    assert.deepEqual(Buffer.from(got), payload);
    wire.fill(0);
    assert.deepEqual(Buffer.from(got), payload, `${cipher}/${mac}`);
  }
});

for (const cipher of cipherNames) {
  const macs = CIPHERS[cipher]!.aead ? ["none"] : macNames;
  for (const mac of macs) {
    test(`${cipher} with ${mac}: sealParts(seq, type, head, body) is the packet seal(seq, type || head || body) makes`, () => {
      // Two sealer/opener pairs with the same keys, kept in step: one seals joined payloads, the
      // other the parts; each opener opens the other side's packets. Only the random padding differs.
      const keys = keysFor(cipher, mac);
      const a = { sealer: createSealer(cipher, mac, keys), opener: createOpener(cipher, mac, keys) };
      const b = { sealer: createSealer(cipher, mac, keys), opener: createOpener(cipher, mac, keys) };
      const shapes: Array<[number, number]> = [[0, 0], [0, 1], [8, 0], [8, 1], [8, 7], [12, 4], [8, 100], [12, 1000], [8, 32768], [3, 17]];
      let seq = 0xfffffffa;
      for (const [h, n] of shapes) {
        const type = 94 + (seq & 1);
        const head = randomBytes(h);
        const body = randomBytes(n);
        const payload = Buffer.concat([Uint8Array.of(type), head, body]);
        const joined = a.sealer.seal(seq, payload);
        const parts = b.sealer.sealParts(seq, type, head, body);
        assert.equal(parts.length, joined.length, `${h}+${n}: same wire length`);
        assert.deepEqual(Buffer.from(openWire(a.opener, seq, parts)), payload, `${h}+${n}: sealParts opens`);
        assert.deepEqual(Buffer.from(openWire(b.opener, seq, joined)), payload, `${h}+${n}: seal opens`);
        if (cipher === "none" && mac === "none") {
          const pad = joined[4]!;
          assert.equal(parts[4], pad);
          assert.deepEqual(Buffer.from(parts.subarray(0, parts.length - pad)), Buffer.from(joined.subarray(0, joined.length - pad)), "byte for byte but the padding");
        }
        seq = (seq + 1) >>> 0;
      }
      // Mixed on one sealer: the stream state carries from one entry point to the other.
      for (let i = 0; i < 4; i++) {
        const body = randomBytes(50 + i);
        const wire = i % 2 === 0 ? a.sealer.sealParts(seq, 94, u32be(i), body) : a.sealer.seal(seq, Buffer.concat([Uint8Array.of(94), u32be(i), body]));
        assert.deepEqual(Buffer.from(openWire(b.opener, seq, wire)), Buffer.concat([Uint8Array.of(94), u32be(i), body]));
        seq = (seq + 1) >>> 0;
      }
    });
  }
}

function u32be(n: number): Uint8Array {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(n);
  return out;
}
