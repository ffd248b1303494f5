/**
 * Twisted's `sshsimpleserver.py`, ported: an SSH server with in-memory users whose shell echoes
 * what you type (Enter gives a new line, ^C or ^D ends the session). Commands are refused.
 *
 *     node examples/dist/conch/sshsimpleserver.js [PORT] [AUTHORIZED_KEYS_FILE]
 *     ssh -p 5022 user@127.0.0.1          # password: password
 *
 * A fresh ed25519 host key is generated at start; its fingerprint is printed.
 */
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import type { ITransport } from "@twisted-ts/internet/interfaces";
import { Protocol } from "@twisted-ts/internet/protocol";
import { reactor } from "@twisted-ts/internet/reactor";
import { InMemoryUsernamePasswordDatabaseDontUse } from "@twisted-ts/cred/checkers";
import type { AvatarId } from "@twisted-ts/cred/checkers";
import type { InterfaceToken } from "@twisted-ts/cred/interfaces";
import { Portal, type IRealm, type LoginResult } from "@twisted-ts/cred/portal";
import { avatar, checkers } from "@twisted-ts/conch";
import { factory, keys, session } from "@twisted-ts/conch/ssh";

/** Twisted's `ExampleAvatar`: a ConchUser whose session channels are SSHSessions. */
class ExampleAvatar extends avatar.ConchUser implements avatar.ISessionProvider {
  constructor(readonly username: string) {
    super();
    this.channelLookup["session"] = session.SSHSession;
  }

  /** Twisted registers an ISession adapter; here the avatar makes one per channel. */
  sessionFor(): avatar.ISession {
    return new ExampleSession(this);
  }
}

/** Twisted's `ExampleRealm`. */
class ExampleRealm implements IRealm {
  requestAvatar(avatarId: AvatarId, _mind: unknown, ...interfaces: InterfaceToken<unknown>[]): LoginResult<unknown> {
    return [interfaces[0]!, new ExampleAvatar(String(avatarId)), () => undefined];
  }
}

/** Twisted's `EchoProtocol`: the protocol the shell runs. */
class EchoProtocol extends Protocol<ITransport> {
  override dataReceived(data: Uint8Array): void {
    let out = data;
    if (data.length === 1 && data[0] === 0x0d) out = new Uint8Array([0x0d, 0x0a]);
    else if (data.length === 1 && (data[0] === 0x03 || data[0] === 0x04)) {
      // ^C / ^D
      this.transport.loseConnection();
      return;
    }
    this.transport.write(out);
  }
}

/** Twisted's `ExampleSession`: a pty is accepted (nothing to allocate), commands are not. */
class ExampleSession implements avatar.ISession {
  constructor(_avatar: ExampleAvatar) {}
  getPty(_term: string, _windowSize: avatar.WindowSize, _modes: avatar.TerminalModes): void {}
  execCommand(_proto: session.SSHSessionProcessProtocol, _command: string): void {
    throw new Error("no executing commands");
  }
  openShell(trans: session.SSHSessionProcessProtocol): void {
    const ep = new EchoProtocol();
    ep.makeConnection(trans);
    trans.makeConnection(session.wrapProtocol(ep));
  }
  windowChanged(_newWindowSize: avatar.WindowSize): void {}
  eofReceived(): void {}
  closed(): void {}
}

/** Twisted's `ExampleFactory`, with a host key made at start. */
export function exampleFactory(authorizedKeys: keys.Key[] = []): factory.SSHFactory {
  const hostKey = keys.Key.generate("ed25519");
  const portal = new Portal(new ExampleRealm());
  const passwdDB = new InMemoryUsernamePasswordDatabaseDontUse();
  passwdDB.addUser("user", "password");
  portal.registerChecker(passwdDB);
  portal.registerChecker(new checkers.SSHPublicKeyChecker(new checkers.InMemorySSHKeyDB({ user: authorizedKeys })));
  const f = new factory.SSHFactory();
  f.privateKeys = { [hostKey.sshType()]: hostKey };
  f.portal = portal;
  return f;
}

export async function main(argv: readonly string[]): Promise<void> {
  const port = Number(argv[0] ?? 5022);
  const authorized = argv[1] === undefined ? [] : checkers.readAuthorizedKeyFile(readFileSync(argv[1], "utf8")).map((k) => k.key);
  const f = exampleFactory(authorized);
  const listening = reactor.listenTCP(port, f, 50, "127.0.0.1");
  const hostKey = Object.values(f.privateKeys ?? {})[0]!;
  console.log(`listening on 127.0.0.1:${port}; host key ${hostKey.fingerprint("sha256")} (MD5 ${hostKey.fingerprint()})`);
  console.log('log in as "user" with password "password"');
  void listening;
  await reactor.run();
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(process.argv.slice(2));
}
