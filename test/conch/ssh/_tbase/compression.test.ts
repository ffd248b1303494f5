/**
 * Regression (issue 11, found by bench/fuzz's "ssh/zlib decompression of peer packets"): a peer's
 * packet that is not a valid zlib stream aborted the whole Node process. zlib destroys its stream
 * on the error at once but emits "error" a tick later; the inflate loop went on writing to the
 * closed handle, and Node's native assertion ("already finalized") killed every connection with it.
 * With plain `zlib` negotiated, one packet after NEWKEYS, before any login, was enough.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { error } from "@twisted-ts/conch";
import { common, transport } from "@twisted-ts/conch/ssh";
import { handshakenPair } from "../../../_support/fuzz_ssh_pair.js";

type Compression = typeof import("../../../../packages/conch/dist/ssh/_tbase/compression.js");
const Z = (await import(new URL("dist/ssh/_tbase/compression.js", import.meta.resolve("@twisted-ts/conch/package.json")).href)) as Compression;

const GARBAGE = new TextEncoder().encode("this is not a zlib stream at all");

test("issue 11 (zlib abort): a corrupt compressed packet is a typed COMPRESSION_ERROR, and so is every packet after it", () => {
  const d = new Z.Decompressor();
  for (let i = 0; i < 3; i++) {
    assert.throws(
      () => d.decompress(GARBAGE),
      (e: unknown) => e instanceof error.SSHDisconnectError && e.reasonCode === error.DISCONNECT_COMPRESSION_ERROR,
    );
  }
});

test("issue 11 (zlib abort): a valid stream that turns corrupt mid-way is refused too", () => {
  const c = new Z.Compressor();
  const d = new Z.Decompressor();
  assert.equal(Buffer.from(d.decompress(c.compress(new TextEncoder().encode("fine")))).toString(), "fine");
  const next = Uint8Array.from(c.compress(new Uint8Array(70_000).fill(0x61)));
  next.fill(0xff, 2);
  assert.throws(() => d.decompress(next), error.SSHDisconnectError);
});

test("issue 11 (zlib abort): before any login, a garbage zlib packet gets the peer a COMPRESSION_ERROR disconnect", () => {
  const p = handshakenPair("aes128-ctr", "hmac-sha2-256", "zlib");
  assert.equal(p.server.algorithms?.compCS, "zlib");
  // The client's compressor replaced by one that sends garbage: what a hostile client would do.
  (p.client as unknown as { compressOut: { compress(b: Uint8Array): Uint8Array } }).compressOut = { compress: () => GARBAGE };
  p.client.sendPacket(transport.MSG_SERVICE_REQUEST, new common.SSHWriter().string("ssh-userauth").finish());
  p.pump.flush();
  assert.equal(p.server.disconnectReason?.reasonCode, error.DISCONNECT_COMPRESSION_ERROR);
});
