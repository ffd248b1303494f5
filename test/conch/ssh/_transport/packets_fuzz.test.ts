import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { error } from "@twisted-ts/conch";
import { T } from "./_load.js";

const { CIPHERS, MACS, createSealer, createOpener } = T;

const combos: Array<[string, string]> = [
  ["none", "none"],
  ["none", "hmac-sha2-256"],
  ["chacha20-poly1305@openssh.com", "none"],
  ["aes128-gcm@openssh.com", "none"],
  ["aes128-ctr", "hmac-sha2-256-etm@openssh.com"],
  ["aes256-ctr", "hmac-sha1"],
  ["aes128-cbc", "hmac-sha2-512-etm@openssh.com"],
  ["aes192-cbc", "hmac-sha2-256"],
];

function keysFor(cipher: string, mac: string) {
  const c = CIPHERS[cipher]!;
  const m = MACS[mac]!;
  return { key: randomBytes(c.keyLength), iv: randomBytes(c.ivLength), macKey: randomBytes(m.keyLength) };
}

const typed = (e: unknown) => e instanceof error.MACError || e instanceof error.PacketFormatError;

for (const [cipher, mac] of combos) {
  test(`${cipher} with ${mac}: any payload at any sequence number round-trips`, () => {
    const keys = keysFor(cipher, mac);
    const sealer = createSealer(cipher, mac, keys);
    const opener = createOpener(cipher, mac, keys);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.integer({ min: 0, max: 0xffffffff }), (payload, seq) => {
        const wire = sealer.seal(seq, payload);
        opener.decryptLength(seq, wire.subarray(0, opener.headerLength));
        assert.deepEqual(Buffer.from(opener.open(seq, wire)), Buffer.from(payload));
      }),
      { numRuns: 150 },
    );
  });

  test(`${cipher} with ${mac}: a changed byte after the length is always a typed error`, () => {
    // Stream ciphers carry state from packet to packet, so each case gets fresh keys.
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 300 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (payload, where, xor) => {
        const keys = keysFor(cipher, mac);
        const sealer = createSealer(cipher, mac, keys);
        const opener = createOpener(cipher, mac, keys);
        const wire = sealer.seal(3, payload);
        const unauthenticated = cipher === "none" && mac === "none";
        // Past the first cipher block / length field, so the length stays what the sender wrote.
        const start = Math.max(opener.headerLength, 16);
        if (wire.length <= start) return;
        const pos = start + (where % (wire.length - start));
        wire[pos]! ^= xor;
        opener.decryptLength(3, wire.subarray(0, opener.headerLength));
        if (unauthenticated) {
          // No MAC: only the padding length can be checked; anything else is accepted.
          try {
            opener.open(3, wire);
          } catch (e) {
            assert.ok(typed(e), String(e));
          }
          return;
        }
        assert.throws(() => opener.open(3, wire), typed);
      }),
      { numRuns: 150 },
    );
  });

  test(`${cipher} with ${mac}: random bytes are refused with a typed error, never a crash`, () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 400 }), (junk) => {
        const opener = createOpener(cipher, mac, keysFor(cipher, mac));
        const wire = Uint8Array.from(junk);
        const len = opener.decryptLength(0, wire.subarray(0, opener.headerLength));
        assert.ok(Number.isInteger(len) && len >= 0 && len <= 0xffffffff);
        // Frame the junk with the length it claims when that fits, otherwise hand it over as is.
        const total = 4 + len + opener.macLength;
        const candidate = total <= wire.length ? wire.subarray(0, total) : wire;
        try {
          opener.open(0, candidate);
          assert.ok(cipher === "none" && mac === "none", "only unauthenticated packets can be accepted");
        } catch (e) {
          assert.ok(typed(e), String(e));
        }
      }),
      { numRuns: 200 },
    );
  });
}

test("key exchange: any peer value gives K or a KeyExchangeError, never another error", () => {
  const group = { p: T.GROUP14.p, g: 2n };
  const names = Object.keys(T.KEX_ALGORITHMS);
  const lengths: Record<string, number[]> = { kem: [1120, 1216], ecdh: [32, 65, 97, 133] };
  fc.assert(
    fc.property(fc.constantFrom(...names), fc.nat(), fc.uint8Array({ maxLength: 1300 }), (name, pick, junk) => {
      const spec = T.KEX_ALGORITHMS[name]!;
      const grp = spec.family === "gex" ? group : undefined;
      // Often the right length, so the checks past the length one are reached too.
      const sizes = lengths[spec.family];
      const value = sizes !== undefined && pick % 2 === 0 ? Uint8Array.from({ length: sizes[pick % sizes.length]! }, (_, i) => junk[i % Math.max(1, junk.length)] ?? i) : junk;
      for (const side of ["client", "server"] as const) {
        try {
          const out = side === "client" ? T.createKexClient(name, grp).computeSecret(value) : T.kexServerRespond(name, value, grp).secret;
          assert.ok(out.length > 4);
        } catch (e) {
          assert.ok(e instanceof error.KeyExchangeError, `${name} ${side}: ${String(e)}`);
        }
      }
    }),
    { numRuns: 200 },
  );
});
