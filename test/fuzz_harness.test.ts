/**
 * The fuzz harness itself (test/_support/fuzz.ts): what counts as a typed error, that mutations
 * never change the corpus they start from, and that every way of cutting a stream keeps its bytes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createPublicKey } from "node:crypto";
import fc from "fast-check";
import { error } from "@twisted-ts/conch";
import { InvalidProxyHeader } from "@twisted-ts/internet/error";
import { applyMutation, chunking, chunksOf, isTypedError, mutation, sliceParams } from "./_support/fuzz.js";

test("isTypedError: the project's errors are typed; built-in, Node and OpenSSL errors are not", () => {
  assert.ok(isTypedError(new error.ShortReadError("x")));
  assert.ok(isTypedError(new error.SSHDisconnectError(2, "x", false)));
  assert.ok(isTypedError(new InvalidProxyHeader("x")));
  assert.equal(isTypedError(new TypeError("x")), false);
  assert.equal(isTypedError(new RangeError("x")), false);
  assert.equal(isTypedError(Object.assign(new Error("x"), { code: "ERR_SOMETHING" })), false);
  let openssl: unknown;
  try {
    createPublicKey({ key: Buffer.from("nonsense"), format: "der", type: "spki" });
  } catch (e) {
    openssl = e;
  }
  assert.ok(openssl instanceof Error && typeof (openssl as { code?: unknown }).code === "string", "OpenSSL errors carry a code");
  assert.equal(isTypedError(openssl), false);
  assert.equal(isTypedError("a string"), false);
});

test("applyMutation never changes its input, even a Buffer (whose slice is a view)", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), mutation, (bytes, m) => {
      const seed = Buffer.from(bytes);
      const before = Buffer.from(seed);
      applyMutation(seed, m);
      assert.deepEqual(seed, before);
    }),
    sliceParams(500),
  );
});

test("chunksOf: the reads joined are the input, for every way of cutting", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), chunking, (bytes, how) => {
      assert.deepEqual(Buffer.concat(chunksOf(bytes, how)), Buffer.from(bytes));
    }),
    sliceParams(500),
  );
});
