import { test } from "node:test";
import assert from "node:assert/strict";
import { deferLater, react } from "@twisted-ts/internet/task";
import { reactor } from "@twisted-ts/internet/reactor";

test("react runs the global reactor by default and returns once it has shut down", async () => {
  const saved = process.exitCode;
  try {
    const code = await react(
      (r, word: string) => {
        assert.equal(r, reactor);
        return deferLater(r, 0.01, () => word);
      },
      ["done"],
    );
    assert.equal(code, 0);
    assert.equal(reactor.running, false);
  } finally {
    process.exitCode = saved;
  }
});
