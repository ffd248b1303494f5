import { test } from "node:test";
import assert from "node:assert/strict";
import { Failure, NoCurrentExceptionError, NonErrorThrown } from "@twisted-ts/internet/failure";

class ParentError extends Error {}
class ChildError extends ParentError {}
class OtherError extends Error {}

test("a Failure keeps the error as value and its class as type", () => {
  const e = new ChildError("boom");
  const f = new Failure(e);
  assert.equal(f.value, e);
  assert.equal(f.type, ChildError);
  assert.equal(f.getErrorMessage(), "boom");
});

test("a thrown non-Error value is wrapped, keeping the original", () => {
  const f = new Failure("just a string");
  assert.ok(f.value instanceof NonErrorThrown);
  assert.equal((f.value as NonErrorThrown).thrown, "just a string");
  assert.equal(f.getErrorMessage(), "just a string");
  assert.equal(new Failure({ code: 3 }).getErrorMessage(), '{"code":3}');
  assert.equal(new Failure(undefined).getErrorMessage(), "undefined");
});

test("new Failure() without an error throws NoCurrentExceptionError", () => {
  assert.throws(() => new Failure(), NoCurrentExceptionError);
});

test("a Failure of a Failure wraps the same error", () => {
  const inner = new Failure(new OtherError("x"));
  const outer = new Failure(inner);
  assert.equal(outer.value, inner.value);
});

test("check matches by class, including base classes, and returns the matching argument", () => {
  const f = new Failure(new ChildError("x"));
  assert.equal(f.check(OtherError, ParentError), ParentError);
  assert.equal(f.check(ChildError), ChildError);
  assert.equal(f.check(Error), Error);
  assert.equal(f.check(OtherError), null);
  assert.equal(f.check(), null);
});

test("check matches class names, qualified names by their last part", () => {
  const f = new Failure(new ChildError("x"));
  assert.equal(f.check("ParentError"), "ParentError");
  assert.equal(f.check("twisted.test.ChildError"), "twisted.test.ChildError");
  assert.equal(f.check("OtherError"), null);
});

test("trap returns the matching type, and otherwise throws the Failure itself", () => {
  const f = new Failure(new ChildError("x"));
  assert.equal(f.trap(OtherError, ChildError), ChildError);
  assert.throws(
    () => f.trap(OtherError),
    (thrown: unknown) => thrown === f,
  );
});

test("raiseException throws the wrapped error", () => {
  const e = new OtherError("raised");
  assert.throws(() => new Failure(e).raiseException(), (t: unknown) => t === e);
});

test("getTraceback starts with the class name and message and lists the frames", () => {
  const f = new Failure(new ChildError("with trace"));
  const tb = f.getTraceback();
  assert.match(tb, /^ChildError: with trace\n {4}at /);
  assert.ok(tb.endsWith("\n"));
  assert.equal(f.getBriefTraceback(), "ChildError: with trace");
});

test("getTraceback uses an error's own name and follows its cause", () => {
  const e = new Error("outer", { cause: new OtherError("root") });
  e.name = "CustomName";
  const tb = new Failure(e).getTraceback();
  assert.match(tb, /^CustomName: outer\n/);
  assert.match(tb, /Caused by: OtherError: root\n/);
});

test("printTraceback writes the traceback", () => {
  let out = "";
  new Failure(new OtherError("printed")).printTraceback((s) => {
    out += s;
  });
  assert.match(out, /^OtherError: printed/);
});

test("toString is Twisted's Failure repr", () => {
  assert.equal(String(new Failure(new OtherError("r"))), "[Failure instance: OtherError: r]");
});
