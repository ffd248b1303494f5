/**
 * Issue 11: secrets never reach a log, at any level. Full sessions over real loopback TCP (our
 * client and our server in this process, every logger at debug) log in with a password after a
 * wrong one, with keyboard-interactive, and with a private key, run a command, send data and
 * close; then every event either side emitted is rendered (message, traceback and every field)
 * and searched for the secrets in every encoding a log line might use.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { Deferred, fail, succeed } from "@twisted-ts/internet/defer";
import type { Failure } from "@twisted-ts/internet/failure";
import type { ITransport } from "@twisted-ts/internet/interfaces";
import { addObserver, eventAsText, removeObserver, type LogEvent } from "@twisted-ts/internet/log";
import { ClientFactory, Protocol } from "@twisted-ts/internet/protocol";
import { reactor } from "@twisted-ts/internet/reactor";
import { InMemoryUsernamePasswordDatabaseDontUse, PAMPasswordChecker } from "@twisted-ts/cred/checkers";
import { Portal } from "@twisted-ts/cred/portal";
import { checkers, error, unix } from "@twisted-ts/conch";
import { common, connection, factory, keys, session, transport, userauth } from "@twisted-ts/conch/ssh";
import { resultOf, wiredAgent } from "./ssh/_agent_fakes.js";

const PASSWORD = "pw-SECRET-correct-7f3a";
const WRONG_PASSWORD = "pw-SECRET-wrong-91c2";
const KI_ANSWER = PASSWORD;
const hostKey = keys.Key.generate("ed25519");
const userKey = keys.Key.generate("ed25519");

/** Echoes what it is sent, then exits 0 at EOF. */
class Echo extends Protocol<ITransport> {
  override dataReceived(data: Uint8Array): void {
    this.transport.write(data);
  }
  readConnectionLost(): void {
    (this.transport as session.SSHSessionProcessProtocol).exit(0);
  }
}

async function startServer(t: TestContext): Promise<number> {
  const f = new factory.SSHFactory();
  f.privateKeys = { [hostKey.sshType()]: hostKey };
  const pw = new InMemoryUsernamePasswordDatabaseDontUse({ alice: PASSWORD });
  f.portal = new Portal(new unix.InProcessRealm({ commands: { echo: () => new Echo() } }), [
    new checkers.SSHPublicKeyChecker(new checkers.InMemorySSHKeyDB({ alice: [userKey.public()] })),
    pw,
    new PAMPasswordChecker(pw),
  ]);
  const port = reactor.listenTCP(0, f, 50, "127.0.0.1") as ReturnType<typeof reactor.listenTCP> & { whenListening(): PromiseLike<unknown> };
  await port.whenListening();
  t.after(() => port.stopListening());
  return port.getHost().port;
}

/** Logs in with `method` (after the given wrong passwords), runs `echo`, sends a line, returns the echo. */
function runSession(port: number, method: "password" | "keyboard-interactive" | "publickey"): Promise<string> {
  const result = new Deferred<string>();
  const passwords = [WRONG_PASSWORD, PASSWORD];
  class ClientTransport extends transport.SSHClientTransport {
    override verifyHostKey(_k: Uint8Array, fingerprint: string): Deferred<number> {
      return fingerprint === hostKey.fingerprint() ? succeed(1) : fail(new error.ConchError("bad host key"));
    }
    override connectionSecure(): void {
      const auth = new ClientAuth("alice", new ClientConnection());
      auth.preferredOrder = [method];
      auth.whenDone().addErrback((f: Failure) => void (result.called || result.errback(f)));
      this.requestService(auth);
    }
  }
  class ClientAuth extends userauth.SSHUserAuthClient {
    override getPublicKey(): Uint8Array | undefined {
      return method === "publickey" && !this.triedPublicKeys.length ? userKey.public().blob() : undefined;
    }
    override getPrivateKey(): Deferred<keys.Key> {
      return succeed(userKey);
    }
    override getPassword(): Deferred<string> | undefined {
      const p = passwords.shift();
      return p === undefined ? undefined : succeed(p);
    }
    override getGenericAnswers(): Deferred<string[]> {
      return succeed([KI_ANSWER]);
    }
  }
  class ClientConnection extends connection.SSHConnection {
    override serviceStarted(): void {
      const conn = this;
      let got = "";
      this.openChannel(
        new (class extends session.SSHSessionClientChannel {
          override channelOpen(): void {
            void conn.sendRequest(this, "exec", common.NS("echo"), true).addCallback(() => {
              this.write(`hello over ${method}\n`);
              conn.sendEOF(this);
            });
          }
          override dataReceived(data: Uint8Array): void {
            got += Buffer.from(data).toString("utf8");
          }
          override closed(): void {
            result.callback(got);
            conn.transport?.loseConnection();
          }
        })({ conn }),
      );
    }
  }
  const f = new ClientFactory();
  f.protocol = ClientTransport;
  reactor.connectTCP("127.0.0.1", port, f);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${method}: no result within 20 s`)), 20_000);
    result.addCallbacks(
      (v) => (clearTimeout(timer), resolve(v)),
      (f) => (clearTimeout(timer), reject(f.value)),
    );
  });
}

/** An event as a log observer could write it: the text, the traceback and every field but the source object. */
function render(e: LogEvent): string {
  const seen = new WeakSet<object>();
  const fields = JSON.stringify(e, (k, v: unknown) => {
    if (k === "log_source") return undefined;
    if (v instanceof Uint8Array) return `${Buffer.from(v).toString("hex")} ${Buffer.from(v).toString("base64")}`;
    if (typeof v === "object" && v !== null) {
      if (seen.has(v)) return "[seen]";
      seen.add(v);
    }
    return v;
  });
  return `${eventAsText(e)}\n${fields}`;
}

/** The secrets and the encodings they could show up in. */
function needles(): Array<[what: string, needle: string]> {
  const out: Array<[string, string]> = [];
  for (const [what, s] of [
    ["password", PASSWORD],
    ["wrong password", WRONG_PASSWORD],
  ] as const) {
    out.push([what, s], [`${what} (hex)`, Buffer.from(s).toString("hex")], [`${what} (base64)`, Buffer.from(s).toString("base64").slice(0, 16)]);
  }
  const priv = userKey.privateBlob();
  // The private blob of an ed25519 key ends with the 64-byte secret (seed and public half).
  const secret = priv.subarray(priv.length - 64, priv.length - 32);
  out.push(["private key seed (hex)", Buffer.from(secret).toString("hex")], ["private key seed (base64)", Buffer.from(secret).toString("base64").slice(0, 24)]);
  const pem = userKey.toString("openssh").split("\n").filter((l) => l.length > 40 && !l.startsWith("-----"));
  for (const line of pem.slice(1)) out.push(["private key file line", line]);
  return out;
}

test("secrets never reach a log at any level: password, keyboard-interactive answers, private keys", async (t) => {
  const events: LogEvent[] = [];
  const obs = (e: LogEvent): void => void events.push(e);
  addObserver(obs);
  t.after(() => removeObserver(obs));
  const port = await startServer(t);
  for (const method of ["password", "keyboard-interactive", "publickey"] as const) {
    assert.equal(await runSession(port, method), `hello over ${method}\n`);
  }
  removeObserver(obs);
  const lines = events.map(render);
  assert.ok(lines.length > 20, `a full session logs (${lines.length} events)`);
  assert.ok(lines.some((l) => /authenticated with password/.test(l)));
  assert.ok(lines.some((l) => /failed password/.test(l)), "the wrong password was logged as a failure");
  assert.ok(events.some((e) => e.log_level === "debug"), "debug events are included");
  for (const [what, needle] of needles()) {
    const hit = lines.find((l) => l.includes(needle));
    assert.equal(hit, undefined, `${what} found in a log line:\n${hit}`);
  }
});

test("agent secrets never reach a log: added private keys, lock passphrases, damaged keys", () => {
  const events: LogEvent[] = [];
  const obs = (e: LogEvent): void => void events.push(e);
  addObserver(obs);
  try {
    const { client, server, clock } = wiredAgent();
    const key = keys.Key.generate("ed25519");
    resultOf(client.addIdentity(key, "k"));
    resultOf(client.lock(PASSWORD));
    void client.unlock(WRONG_PASSWORD);
    clock.advance(1);
    resultOf(client.unlock(PASSWORD));
    const damaged = key.privateBlob().slice();
    damaged[damaged.length - 1]! ^= 1;
    void client.addIdentity(damaged, "damaged");
    void client.addIdentity(Buffer.concat([damaged.subarray(0, 40)]), "short");
    server.dataReceived(Uint8Array.of(0xff, 0, 0, 0));
    const lines = events.map(render);
    assert.ok(lines.length > 0, "the failures were logged");
    const priv = key.privateBlob();
    const seed = priv.subarray(priv.length - 64, priv.length - 32);
    for (const [what, needle] of [
      ["lock passphrase", PASSWORD],
      ["wrong unlock passphrase", WRONG_PASSWORD],
      ["lock passphrase (hex)", Buffer.from(PASSWORD).toString("hex")],
      ["private key seed (hex)", Buffer.from(seed).toString("hex")],
      ["private key seed (base64)", Buffer.from(seed).toString("base64").slice(0, 24)],
    ] as const) {
      const hit = lines.find((l) => l.includes(needle));
      assert.equal(hit, undefined, `${what} found in a log line:\n${hit}`);
    }
  } finally {
    removeObserver(obs);
  }
});
