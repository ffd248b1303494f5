import { test } from "node:test";
import assert from "node:assert/strict";
import { common } from "@twisted-ts/conch/ssh";

test("NS then getNS gives the string back and the rest", () => {
  const data = new Uint8Array([...common.NS("abc"), 9]);
  const [s, rest] = common.getNS(data);
  assert.deepEqual(Buffer.from(s!).toString(), "abc");
  assert.deepEqual([...rest!], [9]);
});
