import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { T } from "./_load.js";

const { CIPHERS, MACS, createSealer, createOpener } = T;

/** A deterministic padding source (xorshift32): two sealers given the same seed pad alike. */
function seededPadding(seed: number): (out: Uint8Array, offset: number, n: number) => void {
  let x = seed >>> 0 || 1;
  return (out, offset, n) => {
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      out[offset + i] = x & 0xff;
    }
  };
}

function keysFor(cipher: string, mac: string) {
  const c = CIPHERS[cipher]!;
  const m = MACS[mac]!;
  return { key: randomBytes(c.keyLength), iv: randomBytes(c.ivLength), macKey: randomBytes(m.keyLength) };
}

/** Body sizes: every size 0..300, around the pieces threshold, and 32 KiB (the channel packet). */
const bodySizes = [...Array.from({ length: 301 }, (_, i) => i), 1000, 4095, 4096, 4097, 32767, 32768];
/** Head sizes: none (sendPacket), channel headers (8 and 12 bytes), and past the pieces limit. */
const headSizes = [0, 8, 12, 64, 65];

for (const cipher of Object.keys(CIPHERS)) {
  const macs = CIPHERS[cipher]!.aead ? ["none"] : Object.keys(MACS);
  for (const mac of macs) {
    test(`${cipher} with ${mac}: sealPieces writes the bytes seal() writes, packet after packet, and keeps no view of head or body`, () => {
      // Two sealers with the same keys and padding, kept in step: one seals joined payloads, the
      // other pieces. Byte equality over ~1,700 packets checks the stream state, the GCM counter
      // and the sequence numbers (across the 2^32 wrap) on the pieces path.
      const keys = keysFor(cipher, mac);
      const joined = createSealer(cipher, mac, keys, seededPadding(7));
      const pieces = createSealer(cipher, mac, keys, seededPadding(7));
      const opener = createOpener(cipher, mac, keys);
      let seq = 0xfffffc00;
      let multi = 0;
      for (const h of headSizes) {
        for (const n of bodySizes) {
          const type = 94 + (seq & 1);
          const head = randomBytes(h);
          const body = randomBytes(n);
          const payload = Buffer.concat([Uint8Array.of(type), head, body]);
          const want = Buffer.from(joined.seal(seq, payload));
          const got = pieces.sealPieces(seq, type, head, body);
          for (const p of got) {
            assert.notEqual(p.buffer, head.buffer, "a piece shares memory with head");
            assert.notEqual(p.buffer, body.buffer, "a piece shares memory with body");
          }
          const wire = Buffer.concat(got);
          // The caller reuses its arrays at once: the pieces must not change with them.
          head.fill(0xa5);
          body.fill(0x5a);
          assert.deepEqual(Buffer.concat(got), wire, `${h}+${n}: pieces changed with head/body`);
          assert.ok(wire.equals(want), `${h}+${n} at seq ${seq}: pieces differ from seal()`);
          if (got.length > 1) multi++;
          const len = opener.decryptLength(seq, wire.subarray(0, opener.headerLength));
          assert.equal(wire.length, 4 + len + opener.macLength);
          assert.deepEqual(Buffer.from(opener.open(seq, wire)), payload, `${h}+${n}: opens`);
          seq = (seq + 1) >>> 0;
        }
      }
      assert.ok(seq < 0xfffffc00, "the sequence number wrapped");
      if (cipher !== "none") assert.ok(multi > 0, "large packets came back as several pieces");
    });
  }
}
