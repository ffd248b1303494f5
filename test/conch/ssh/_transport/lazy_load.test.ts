/**
 * Issue 16 (cold start): what importing the transport loads, and what it leaves until a key
 * exchange or cipher needs it. Module loading is per process, so each case runs in a fresh
 * child (`_lazy_child.ts`).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { error } from "@twisted-ts/conch";
import { SSHWriter } from "@twisted-ts/conch/ssh/common";
import { plainPacket } from "../../../_support/fuzz_transport.js";
import { T } from "./_load.js";

const CHILD = fileURLToPath(new URL("./_lazy_child.js", import.meta.url));

/** Runs the child with `args` (node flags first) and returns its JSON line. */
function child(nodeFlags: string[], ...args: string[]): Record<string, unknown> {
  const r = spawnSync(process.execPath, [...nodeFlags, CHILD, ...args], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

const MLKEM = "mlkem768x25519-sha256";

/** Every module `entry` imports statically, transitively (package specifiers resolved from each file). */
function staticImports(entry: string): string[] {
  const seen = new Set<string>();
  const todo = [entry];
  for (let file = todo.pop(); file !== undefined; file = todo.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    for (const m of readFileSync(file, "utf8").matchAll(/^(?:import|export)\s[^;]*?from\s+"([^"]+)"|^import\s+"([^"]+)"/gms)) {
      const spec = (m[1] ?? m[2])!;
      if (spec.startsWith("node:")) continue;
      todo.push(spec.startsWith(".") ? resolve(dirname(file), spec) : createRequire(file).resolve(spec));
    }
  }
  return [...seen];
}
const DEFAULTS = "mlkem768x25519-sha256,sntrup761x25519-sha512,curve25519-sha256";

test("issue 16: importing the transport loads neither ML-KEM nor node:worker_threads", () => {
  const r = child([], "defaults");
  assert.equal(r.mlkem, false);
  assert.equal(r.workerThreads, false);
});

test("issue 16: the conch and cftp bins import no @noble module statically (ML-KEM, Argon2 and key-file ChaCha20 load on use)", () => {
  for (const bin of ["conch", "cftp"]) {
    const files = staticImports(fileURLToPath(new URL(`dist/scripts/${bin}.js`, import.meta.resolve("@twisted-ts/conch/package.json"))));
    assert.ok(files.some((f) => f.endsWith("ssh/_transport/kex.js")), bin);
    assert.deepEqual(files.filter((f) => f.includes("@noble")), [], bin);
  }
});

for (const kex of ["curve25519-sha256", "sntrup761x25519-sha512"]) {
  test(`issue 16: a process that negotiates ${kex}, though its client offers ML-KEM first, never loads ML-KEM`, () => {
    const r = child([], "pair", DEFAULTS, kex);
    assert.deepEqual(r, { kex, cipher: "chacha20-poly1305@openssh.com", secure: true, clientReason: null, serverReason: error.DISCONNECT_CONNECTION_LOST, mlkem: false, workerThreads: false, unhandled: [] });
  });
}

test("issue 16: an ML-KEM exchange in a fresh process waits for ML-KEM to load, then completes both ways", () => {
  const r = child([], "pair", DEFAULTS, DEFAULTS);
  assert.deepEqual(r, { kex: MLKEM, cipher: "chacha20-poly1305@openssh.com", secure: true, clientReason: null, serverReason: error.DISCONNECT_CONNECTION_LOST, mlkem: true, workerThreads: false, unhandled: [] });
});

test("issue 16: KEX_ECDH_INIT and NEWKEYS arriving while ML-KEM loads are handled after it, in order", () => {
  const kexinit = new SSHWriter().byte(20).raw(new Uint8Array(16)).nameList([MLKEM]).nameList(["ssh-ed25519"]);
  for (const list of [["aes128-ctr"], ["aes128-ctr"], ["hmac-sha2-256"], ["hmac-sha2-256"], ["none"], ["none"], [], []]) kexinit.nameList(list);
  const init = new SSHWriter().byte(30).string(T.createKexClient(MLKEM).clientPublic).finish();
  const wire = Buffer.concat([
    Buffer.from("SSH-2.0-Issue16\r\n", "latin1"),
    plainPacket(kexinit.boolean(false).uint32(0).finish()),
    plainPacket(init),
    plainPacket(Uint8Array.of(21)),
  ]);
  const r = child([], "server", wire.toString("hex"));
  // While loading: only the server's KEXINIT is out, nothing of the init has been answered.
  assert.deepEqual(r.whileLoading, { types: [20], mlkem: false });
  // Then KEX_ECDH_REPLY and NEWKEYS, and the client's NEWKEYS read after them switched the input keys.
  assert.deepEqual(r.types, [20, 31, 21]);
  assert.equal(r.reason, null);
  assert.equal(r.inEncrypted, true);
  assert.deepEqual(r.unhandled, []);
});

test("issue 16: when ML-KEM cannot be loaded, an ML-KEM exchange ends with KEY_EXCHANGE_FAILED and no unhandled rejection", () => {
  const hooks = `export async function resolve(s, c, next) { if (s.includes("post-quantum")) throw new Error("no ML-KEM here"); return next(s, c); }`;
  const register = `import { register } from "node:module"; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});`;
  const r = child(["--import", `data:text/javascript,${encodeURIComponent(register)}`], "pair", DEFAULTS, DEFAULTS);
  // The loader hooks run on a thread of their own, so node:worker_threads is loaded here anyway.
  delete r.workerThreads;
  assert.deepEqual(r, { kex: MLKEM, cipher: null, secure: false, clientReason: error.DISCONNECT_KEY_EXCHANGE_FAILED, serverReason: error.DISCONNECT_KEY_EXCHANGE_FAILED, mlkem: false, unhandled: [] });
});

test("issue 16: under node --jitless the transport imports, and sntrup761 and chacha20-poly1305 are not offered by default", () => {
  const r = child(["--jitless"], "defaults");
  assert.deepEqual(r.kex, T.DEFAULT_KEX_ORDER.filter((k) => !k.startsWith("sntrup761")));
  assert.ok(!(r.ciphers as string[]).includes("chacha20-poly1305@openssh.com"));
  assert.ok((r.ciphers as string[]).includes("aes128-gcm@openssh.com"));
});

test("issue 16: under node --jitless a default handshake completes with ML-KEM and AES-GCM", () => {
  const r = child(["--jitless"], "pair", DEFAULTS, DEFAULTS, "aes128-gcm@openssh.com");
  assert.equal(r.secure, true);
  assert.equal(r.kex, MLKEM);
  assert.equal(r.cipher, "aes128-gcm@openssh.com");
});

test("issue 16: under node --jitless a negotiated sntrup761 or chacha20-poly1305 ends the connection cleanly", () => {
  const kex = child(["--jitless"], "pair", "sntrup761x25519-sha512", "sntrup761x25519-sha512");
  assert.equal(kex.secure, false);
  assert.equal(kex.clientReason, error.DISCONNECT_KEY_EXCHANGE_FAILED);
  assert.deepEqual(kex.unhandled, []);
  const cipher = child(["--jitless"], "pair", "curve25519-sha256", "curve25519-sha256", "chacha20-poly1305@openssh.com");
  assert.equal(cipher.secure, false);
  assert.equal(typeof cipher.clientReason, "number");
  assert.deepEqual(cipher.unhandled, []);
});
