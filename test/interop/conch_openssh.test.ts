/**
 * The `conch` program's main() in process against sshd: 8 MiB through `cat` with a slow standard
 * output, so both directions meet back-pressure (stdin paused while the channel window is full,
 * the window held back while stdout is full), and the bytes come back whole.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough, Readable, Writable } from "node:stream";
import { main } from "@twisted-ts/conch/scripts/conch";
import { startSshd } from "../_support/sshd.js";
import { tempDir } from "../_support/peers.js";
import { makeUserKey, within } from "./_client_support.js";

const SIZE = 8 * 1024 * 1024;

test("conch relays 8 MiB through cat with back-pressure both ways and exits with cat's status", async (t) => {
  const key = await makeUserKey(t);
  const sshd = await startSshd(t, { authorizedKeys: [key.publicLine], hostKeyTypes: ["ed25519"] });
  if (sshd === undefined) return;
  const dir = tempDir(t, "twisted-ts-conch-");
  const knownHosts = join(dir, "known_hosts");
  writeFileSync(knownHosts, `[127.0.0.1]:${sshd.port} ${sshd.hostKeys.ed25519!}\n`);

  const payload = randomBytes(SIZE);
  let pauses = 0;
  let offset = 0;
  const stdin = new Readable({
    highWaterMark: 64 * 1024,
    read() {
      if (offset >= SIZE) return void this.push(null);
      const end = Math.min(SIZE, offset + 64 * 1024);
      this.push(payload.subarray(offset, end));
      offset = end;
    },
  });
  const pause = stdin.pause.bind(stdin);
  stdin.pause = () => {
    pauses++;
    return pause();
  };
  const hash = createHash("sha256");
  let received = 0;
  let stdoutFull = 0;
  const stdout = new Writable({
    highWaterMark: 16 * 1024,
    write(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      received += chunk.length;
      // A slow terminal: each chunk takes a turn of the timers.
      setTimeout(cb, 0);
    },
  });
  const write = stdout.write.bind(stdout) as (...args: unknown[]) => boolean;
  stdout.write = ((...args: unknown[]) => {
    const ok = write(...args);
    if (!ok) stdoutFull++;
    return ok;
  }) as typeof stdout.write;
  const stderr = new PassThrough();
  const argv = ["-p", String(sshd.port), "-i", key.privatePath, "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "StrictHostKeyChecking=yes", `${sshd.user}@127.0.0.1`, "cat"];
  const status = await within(main(argv, { stdin, stdout, stderr, env: { HOME: dir, TERM: "dumb" } }), 120_000, "conch cat", sshd.output);
  assert.equal(status, 0, String(stderr.read() ?? ""));
  assert.equal(received, SIZE);
  assert.equal(hash.digest("hex"), createHash("sha256").update(payload).digest("hex"));
  assert.ok(stdoutFull > 0, "stdout filled up at least once");
  assert.ok(pauses > 0, "stdin was paused at least once");
});
