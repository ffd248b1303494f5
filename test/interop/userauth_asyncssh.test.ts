/**
 * Our SSHUserAuthClient logging in by password and by keyboard-interactive to AsyncSSH's server
 * (Debian's python3-asyncssh), started by the test on loopback with no system account.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Deferred, succeed } from "@twisted-ts/internet/defer";
import { ClientFactory } from "@twisted-ts/internet/protocol";
import { reactor } from "@twisted-ts/internet/reactor";
import type { Failure } from "@twisted-ts/internet/failure";
import { connection, transport, userauth } from "@twisted-ts/conch/ssh";
import { SYSTEM_PYTHON, freePort, requirePythonModule, spawnPeer, tempDir } from "../_support/peers.js";

const SERVER = String.raw`
import asyncio, sys, asyncssh

port = int(sys.argv[1])

class Server(asyncssh.SSHServer):
    def connection_made(self, conn):
        conn.send_auth_banner("Welcome to AsyncSSH\n")
    def begin_auth(self, username):
        return True
    def public_key_auth_supported(self):
        return False
    def password_auth_supported(self):
        return True
    def validate_password(self, username, password):
        ok = username == "alice" and password == "sesame"
        print("PASSWORD", username, password, ok, flush=True)
        return ok
    def kbdint_auth_supported(self):
        return True
    def get_kbdint_challenge(self, username, lang, submethods):
        return ("Login", "Answer both", "", [("Password: ", False), ("Colour: ", True)])
    def validate_kbdint_response(self, username, responses):
        ok = username == "alice" and list(responses) == ["sesame", "blue"]
        print("KBDINT", username, list(responses), ok, flush=True)
        return ok

def handle(process):
    process.exit(0)

async def main():
    key = asyncssh.generate_private_key("ssh-ed25519")
    await asyncssh.create_server(Server, "127.0.0.1", port, server_host_keys=[key], process_factory=handle)
    print("LISTENING", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
`;

async function startAsyncssh(t: TestContext): Promise<{ port: number; output: () => string } | undefined> {
  if (!requirePythonModule(t, "asyncssh", "python3-asyncssh")) return undefined;
  const dir = tempDir(t, "twisted-ts-asyncssh-");
  const script = join(dir, "server.py");
  writeFileSync(script, SERVER);
  const port = await freePort();
  const child = spawnPeer(t, SYSTEM_PYTHON, ["-W", "ignore", script, String(port)]);
  const deadline = Date.now() + 15_000;
  while (!child.output().includes("LISTENING")) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`asyncssh server did not start:\n${child.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, output: child.output };
}

interface Outcome {
  banners: string[];
  prompts: Array<[string, string, ReadonlyArray<readonly [string, boolean]>]>;
  passwordsAsked: number;
}

function connect(port: number, setup: (auth: Client) => void): Deferred<Outcome> {
  const result = new Deferred<Outcome>();
  let auth: Client | undefined;
  class Conn extends connection.SSHConnection {
    override serviceStarted(): void {
      super.serviceStarted();
      const a = auth!;
      result.callback({ banners: a.banners, prompts: a.prompts, passwordsAsked: a.passwordsAsked });
      this.transport?.loseConnection();
    }
  }
  class Transport extends transport.SSHClientTransport {
    override verifyHostKey() {
      return succeed(true);
    }
    override connectionSecure(): void {
      auth = new Client("alice", new Conn());
      setup(auth);
      auth.whenDone().addErrback((f: Failure) => {
        if (!result.called) result.errback(f);
      });
      this.requestService(auth);
    }
  }
  const f = new ClientFactory();
  f.protocol = Transport;
  reactor.connectTCP("127.0.0.1", port, f);
  return result;
}

class Client extends userauth.SSHUserAuthClient {
  passwords: string[] = [];
  answers: string[][] = [];
  banners: string[] = [];
  prompts: Array<[string, string, ReadonlyArray<readonly [string, boolean]>]> = [];
  passwordsAsked = 0;
  override getPassword() {
    this.passwordsAsked++;
    const p = this.passwords.shift();
    return p === undefined ? undefined : succeed(p);
  }
  override getGenericAnswers(name: string, instruction: string, prompts: ReadonlyArray<readonly [string, boolean]>) {
    this.prompts.push([name, instruction, prompts]);
    return succeed(this.answers.shift() ?? []);
  }
  override displayBanner(message: string): void {
    this.banners.push(message);
  }
}

/** Waits for the server to print `re` (its stdout can arrive after our side is done). */
async function printed(output: () => string, re: RegExp): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!re.test(output())) {
    if (Date.now() > deadline) assert.match(output(), re);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function within<T>(d: Deferred<T>, what: string, output: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      d.asPromise(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no result in 20 s\n${output()}`)), 20_000);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

test("password: logs in to AsyncSSH after a wrong first password, and shows its banner", async (t) => {
  const server = await startAsyncssh(t);
  if (server === undefined) return;
  const out = await within(
    connect(server.port, (a) => {
      a.preferredOrder = ["password"];
      a.passwords = ["wrong", "sesame"];
    }),
    "password login",
    server.output,
  );
  assert.deepEqual(out.banners, ["Welcome to AsyncSSH\n"]);
  assert.equal(out.passwordsAsked, 2);
  await printed(server.output, /PASSWORD alice wrong False/);
  await printed(server.output, /PASSWORD alice sesame True/);
});

test("keyboard-interactive: answers AsyncSSH's two prompts (echo off, echo on) and logs in", async (t) => {
  const server = await startAsyncssh(t);
  if (server === undefined) return;
  const out = await within(
    connect(server.port, (a) => {
      a.preferredOrder = ["keyboard-interactive"];
      a.answers = [["sesame", "blue"]];
    }),
    "keyboard-interactive login",
    server.output,
  );
  assert.deepEqual(out.prompts[0], ["Login", "Answer both", [["Password: ", false], ["Colour: ", true]]]);
  await printed(server.output, /KBDINT alice \['sesame', 'blue'\] True/);
});

test("refused everywhere: AsyncSSH says no to every password, the client ends with NoMoreAuthMethodsError", async (t) => {
  const server = await startAsyncssh(t);
  if (server === undefined) return;
  const d = connect(server.port, (a) => {
    a.preferredOrder = ["password", "keyboard-interactive"];
    a.passwords = ["a", "b"];
    a.answers = [["x", "y"]];
    a.maxKeyboardInteractiveAttempts = 1;
  });
  await assert.rejects(within(d, "refusal", server.output), (e: Error) => e.name === "NoMoreAuthMethodsError");
});
