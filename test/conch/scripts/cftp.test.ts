/**
 * `cftp`'s pieces that need no server: command-line words, options, usage.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { main, parseArgs, splitWords } from "@twisted-ts/conch/scripts/cftp";

test("splitWords: spaces separate, quotes group, backslash escapes", () => {
  assert.deepEqual(splitWords(`put "my file.txt" 'other one' a\\ b ""`), ["put", "my file.txt", "other one", "a b", ""]);
  assert.throws(() => splitWords(`get "open`), /unterminated quote/);
});

test("parseArgs: port, keys, batch, buffer size, requests, known_hosts options, user@host:path", () => {
  const o = parseArgs(["-P", "2222", "-i", "/k1", "-i", "/k2", "-b", "cmds", "-B", "65536", "-R", "16", "-o", "UserKnownHostsFile=/kh", "-o", "StrictHostKeyChecking=yes", "-o", "IdentityAgent=/run/agent.sock", "bob@example.org:/srv"]);
  assert.deepEqual(o, {
    port: 2222,
    user: "bob",
    host: "example.org",
    path: "/srv",
    identities: ["/k1", "/k2"],
    batch: "cmds",
    chunkSize: 65536,
    requests: 16,
    knownHosts: "/kh",
    policy: "strict",
    identityAgent: "/run/agent.sock",
  });
  assert.equal(parseArgs(["-o", "IdentityAgent=none", "h"]).identityAgent, undefined);
  assert.throws(() => parseArgs(["-R", "0", "h"]), /positive whole number/);
  assert.throws(() => parseArgs([]), /no host/);
});

test("main: --help prints the usage; a bad option exits 2 with it", async () => {
  let out = "";
  let err = "";
  const io = { stdin: new PassThrough(), stdout: (t: string) => void (out += t), stderr: (t: string) => void (err += t), isTTY: false };
  assert.equal(await main(["--help"], io), 0);
  assert.match(out, /^usage: cftp/);
  assert.equal(await main(["-x", "h"], io), 2);
  assert.match(err, /unknown option -x/);
});
