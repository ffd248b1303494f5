/**
 * issue 13: half-close through every forwarding channel, with OpenSSH's `ssh -L`, `-R` and `-W`
 * against our server, and the same against the real sshd for comparison. Two kinds of service
 * stand behind the tunnel: one that reads to EOF and then answers with the SHA-256 of what it read
 * (`sha256sum` behind `nc -N`), and one that greets, shuts its write side at once and then reads to
 * EOF. Through either server the answer, and the bytes sent after the destination's EOF, arrive.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { createServer, connect, type AddressInfo, type Socket } from "node:net";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { freePort, requirePeer, spawnPeer, tempDir } from "../_support/peers.js";
import { sshKeygen, startSshd } from "../_support/sshd.js";
import { clientEnv, sshClientArgs, startOurServer, type SshTarget } from "./_server_support.js";

const sha256 = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

/** More than one 2 MiB channel window, so the flows are throttled on the way. */
const PAYLOAD = randomBytes(3 * 1024 * 1024);

interface Target extends SshTarget {
  name: string;
  user: string;
  env: NodeJS.ProcessEnv;
  /** Unhandled errors our server logged (none for sshd). */
  criticals: () => unknown[];
}

/** Our server and, when installed, the real sshd: each a place to forward through. */
async function targets(t: TestContext): Promise<Target[]> {
  const ours = await startOurServer(t);
  const list: Target[] = [{ name: "our server", port: ours.port, user: ours.user, keyPath: ours.keyPath, knownHosts: ours.knownHosts, env: clientEnv(ours), criticals: ours.criticals }];
  const dir = tempDir(t, "twisted-ts-halfclose-");
  const [keyPath, pub] = await sshKeygen(dir, "id_ed25519", "ed25519");
  const sshd = await startSshd(t, { authorizedKeys: [pub], hostKeyTypes: ["ed25519"] });
  if (sshd === undefined) return list;
  const knownHosts = join(dir, "known_hosts");
  writeFileSync(knownHosts, `[127.0.0.1]:${sshd.port} ${sshd.hostKeys["ed25519"]}\n`);
  list.push({ name: "sshd", port: sshd.port, user: sshd.user, keyPath, knownHosts, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, LANG: "C.UTF-8" }, criticals: () => [] });
  return list;
}

/** What a destination saw on one connection: the SHA-256 of what it read, and whether EOF came. */
interface Seen {
  digest: string;
  eof: boolean;
}

/**
 * A TCP service on 127.0.0.1, closed when the test ends. `greetFirst`: it writes "hello\n" and
 * shuts its write side at once, then reads to EOF. Otherwise it reads to EOF and then answers with
 * the hex SHA-256 of what it read. `next()` resolves with what the next connection saw once it is
 * over (EOF, or closed without one).
 */
async function service(t: TestContext, greetFirst: boolean): Promise<{ port: number; next: () => Promise<Seen> }> {
  const seen: Array<Promise<Seen>> = [];
  const server = createServer({ allowHalfOpen: true }, (c) => {
    const hash = createHash("sha256");
    seen.push(
      new Promise((resolve) => {
        let eof = false;
        c.on("data", (d: Buffer) => hash.update(d));
        c.on("end", () => {
          eof = true;
          const digest = hash.digest("hex");
          if (!greetFirst) c.end(digest + "\n");
          resolve({ digest, eof });
        });
        c.on("error", () => undefined);
        c.on("close", () => resolve({ digest: eof ? "" : "closed without EOF", eof }));
      }),
    );
    if (greetFirst) c.end("hello\n");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  let taken = 0;
  return { port: (server.address() as AddressInfo).port, next: () => seen[taken++] ?? Promise.reject(new Error("no connection came")) };
}

/** One end of a forwarded stream: a socket, or ssh -W's stdout and stdin. */
interface End {
  out: Readable;
  in: Writable;
}

/** Reads `end.out` to EOF and resolves with what came. */
function readAll(end: End): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const got: Buffer[] = [];
    end.out.on("data", (d: Buffer) => got.push(d));
    end.out.on("error", reject);
    end.out.on("end", () => resolve(Buffer.concat(got)));
  });
}

/** As `nc -N`: sends `data`, half-closes, and resolves with the answer (read to EOF). */
async function askThenRead(end: End, data: Uint8Array): Promise<string> {
  const answer = readAll(end);
  end.in.end(data);
  return (await answer).toString();
}

/** Reads the destination's greeting to EOF, then sends `data` and half-closes: resolves with the greeting. */
async function readThenSend(end: End, data: Uint8Array): Promise<string> {
  const greeting = (await readAll(end)).toString();
  end.in.end(data);
  return greeting;
}

/** A half-open-capable connection to 127.0.0.1:port. */
async function socketEnd(port: number): Promise<End & { socket: Socket }> {
  const socket = connect({ port, host: "127.0.0.1", allowHalfOpen: true });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return { out: socket, in: socket, socket };
}

/** Resolves once `child` has written a line matching `pattern` to stderr (ssh -v), or fails if it exits first. */
function stderrMatches(child: ChildProcess, pattern: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    let text = "";
    const onData = (d: Buffer): void => {
      text += d.toString();
      if (pattern.test(text)) {
        child.stderr?.off("data", onData);
        resolve();
      }
    };
    child.stderr?.on("data", onData);
    child.once("exit", (code) => reject(new Error(`ssh exited (${code}) before ${pattern}:\n${text}`)));
  });
}

/** ssh -N with a forwarding, resolved once ssh says the forwarding is in place. */
async function forwardingSsh(t: TestContext, bin: string, target: Target, flag: "-L" | "-R", spec: string): Promise<void> {
  const child = spawnPeer(t, bin, [...sshClientArgs(target, ["-v", "-N", "-o", "ExitOnForwardFailure=yes", flag, spec]), `${target.user}@127.0.0.1`], target.env);
  // -L listens before the session loop starts; -R is in place once the server said yes.
  await stderrMatches(child, flag === "-L" ? /Entering interactive session/ : /remote forward success/);
}

/** ssh -W to 127.0.0.1:port; its stdio is the forwarded stream. */
function stdioForward(t: TestContext, bin: string, target: Target, port: number): End {
  const child = spawn(bin, [...sshClientArgs(target, ["-W", `127.0.0.1:${port}`]), `${target.user}@127.0.0.1`], { env: target.env, stdio: ["pipe", "pipe", "inherit"] });
  t.after(() => void (child.exitCode === null && child.kill("SIGKILL")));
  return { out: child.stdout, in: child.stdin };
}

/**
 * The checks a forwarding must pass, given a way to open a forwarded stream to a port: the answer
 * after our EOF arrives; with `destinationFirst`, also data sent after the destination's EOF.
 */
async function checkHalfClose(t: TestContext, target: Target, open: (port: number) => Promise<End>, destinationFirst: boolean): Promise<void> {
  const digest = await service(t, false);
  const answer = await askThenRead(await open(digest.port), PAYLOAD);
  assert.equal(answer, sha256(PAYLOAD) + "\n", `${target.name}: the answer after our EOF arrives`);
  assert.deepEqual(await digest.next(), { digest: sha256(PAYLOAD), eof: true });
  assert.deepEqual(target.criticals(), []);
  if (!destinationFirst) return;

  const greeter = await service(t, true);
  const greeting = await readThenSend(await open(greeter.port), PAYLOAD);
  assert.equal(greeting, "hello\n", `${target.name}: the destination's EOF arrives as EOF`);
  assert.deepEqual(await greeter.next(), { digest: sha256(PAYLOAD), eof: true }, `${target.name}: what is sent after the destination's EOF reaches it`);
  assert.deepEqual(target.criticals(), []);
}

// -L listens on the client's side and -R on the server's; the spec reads the same for both.
for (const flag of ["-L", "-R"] as const) {
  test(`issue 13: ssh ${flag}: a client that half-closes gets the answer; a destination that half-closes first still gets the data (as through sshd)`, async (t) => {
    const bin = requirePeer(t, "ssh", "openssh-client");
    if (bin === undefined) return;
    for (const target of await targets(t)) {
      const open = async (port: number): Promise<End> => {
        const listen = await freePort();
        await forwardingSsh(t, bin, target, flag, `127.0.0.1:${listen}:127.0.0.1:${port}`);
        return socketEnd(listen);
      };
      await checkHalfClose(t, target, open, true);
    }
  });
}

test("issue 13: ssh -W: stdin to EOF gets the answer on stdout (as through sshd)", async (t) => {
  const bin = requirePeer(t, "ssh", "openssh-client");
  if (bin === undefined) return;
  for (const target of await targets(t)) {
    // Only this direction: ssh's stdio forwarding closes the channel once the destination's EOF is
    // written out (OpenSSH's force_drain), so through sshd too, stdin after that is lost.
    await checkHalfClose(t, target, async (port) => stdioForward(t, bin, target, port), false);
  }
});
