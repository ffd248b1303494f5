import { test } from "node:test";
import assert from "node:assert/strict";
import { keys } from "@twisted-ts/conch/ssh";
import { TWISTED } from "./keys_twisted_data.js";

const { Key, BadKeyError } = keys;

/** A small deterministic PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(data: Uint8Array, r: () => number): Uint8Array {
  const out = data.slice();
  const kind = Math.floor(r() * 4);
  if (kind === 0 && out.length > 0) out[Math.floor(r() * out.length)] = Math.floor(r() * 256);
  else if (kind === 1) return out.subarray(0, Math.floor(r() * out.length));
  else if (kind === 2 && out.length > 0) {
    const i = Math.floor(r() * out.length);
    out[i] = out[i]! ^ (1 << Math.floor(r() * 8));
  } else {
    const i = Math.floor(r() * out.length);
    const extra = Uint8Array.from({ length: 1 + Math.floor(r() * 8) }, () => Math.floor(r() * 256));
    const grown = new Uint8Array(out.length + extra.length);
    grown.set(out.subarray(0, i));
    grown.set(extra, i);
    grown.set(out.subarray(i), i + extra.length);
    return grown;
  }
  return out;
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const ed = Key.generate("ed25519");
const ec = Key.generate("ecdsa", { bits: 384 });
const rsa = Key.fromString(TWISTED["privateRSA_openssh"]!);
const dsa = Key.fromString(TWISTED["privateDSA_openssh"]!);

const SAMPLES: [string, Uint8Array, string | undefined][] = [
  ["ed25519 blob", ed.blob(), undefined],
  ["ecdsa blob", ec.blob(), undefined],
  ["rsa blob", rsa.blob(), undefined],
  ["dsa blob", dsa.blob(), undefined],
  ["private blob", ec.privateBlob(), undefined],
  ["agentv3", rsa.toBytes("agentv3"), undefined],
  ["openssh line", enc(ec.public().toString("openssh", { comment: "c" })), undefined],
  ["openssh-key-v1", enc(ed.toString("openssh")), undefined],
  ["openssh-key-v1 encrypted", enc(ed.toString("openssh", { passphrase: "pw", rounds: 1 })), "pw"],
  ["PEM", enc(ec.toString("pem")), undefined],
  ["PuTTY v3", enc(ed.toString("putty", { comment: "c" })), undefined],
  ["PuTTY v2 encrypted", enc(rsa.toString("putty", { passphrase: "pw", subtype: "v2" })), "pw"],
  ["RFC 4716", enc(ec.public().toString("rfc4716", { comment: "c" })), undefined],
  ["LSH private", rsa.toBytes("lsh"), undefined],
  ["LSH public", dsa.public().toBytes("lsh"), undefined],
];

test("damaged key data of every format gives a Key or a BadKeyError, never another error", () => {
  const r = rng(4);
  for (const [name, data, pass] of SAMPLES) {
    for (let i = 0; i < 150; i++) {
      const bad = mutate(data, r);
      try {
        Key.fromString(bad, undefined, pass);
      } catch (e) {
        if (!(e instanceof BadKeyError)) {
          assert.fail(`${name} mutation ${i} (${Buffer.from(bad).toString("hex").slice(0, 80)}…) threw ${String(e)}`);
        }
        assert.ok(e.message.length > 10, `${name}: an empty message`);
      }
    }
  }
});

test("verify never throws on damaged signatures", () => {
  const r = rng(9);
  const data = enc("signed data");
  for (const k of [ed, ec, rsa, dsa]) {
    const sig = k.sign(data);
    for (let i = 0; i < 300; i++) {
      const bad = mutate(sig, r);
      assert.doesNotThrow(() => k.public().verify(bad, data));
    }
  }
});
