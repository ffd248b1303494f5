/**
 * Twisted's `docs/conch/examples/echoclient_ssh.py`, ported: SSHCommandClientEndpoint runs
 * `/bin/cat` on a server and a protocol talks to it — the session channel is the protocol's
 * transport. It sends "bif", "pow", "zot", prints each echo, then closes the channel (which closes
 * the connection the endpoint made).
 *
 *     node examples/dist/conch/echoclient_ssh.js [-p port] [-u username] [-i identity]
 *          [-k knownhosts] [--password password] [--no-agent] [-h] host
 *
 * The host key must be in the known_hosts file (an unknown one is asked about on a terminal, and
 * refused without one). See docs/client.md.
 */
import { existsSync } from "node:fs";
import { homedir, userInfo } from "node:os";
import { Deferred } from "@twisted-ts/internet/defer";
import { UNIXClientEndpoint } from "@twisted-ts/internet/endpoints";
import type { Failure } from "@twisted-ts/internet/failure";
import type { IReactor, IReactorTCP, IReactorUNIX, IStreamClientEndpoint, ITransport } from "@twisted-ts/internet/interfaces";
import { Factory, Protocol } from "@twisted-ts/internet/protocol";
import { react } from "@twisted-ts/internet/task";
import { SSHCommandClientEndpoint } from "@twisted-ts/conch/client/endpoints";
import { KnownHostsFile } from "@twisted-ts/conch/client/knownhosts";
import { TerminalUI } from "@twisted-ts/conch/client/default";
import { EncryptedKeyError } from "@twisted-ts/conch/error";
import { keys } from "@twisted-ts/conch/ssh";

/** Sends three words one at a time, each after the echo of the one before, then hangs up. */
class NoiseProtocol extends Protocol<ITransport> {
  readonly finished = new Deferred<void>();
  private strings = ["bif", "pow", "zot"];

  override connectionMade(): void {
    this.sendNoise();
  }

  private sendNoise(): void {
    const next = this.strings.shift();
    if (next !== undefined) this.transport.write(`${next}\n`);
    else this.transport.loseConnection();
  }

  override dataReceived(data: Uint8Array): void {
    console.log("Server says:", Buffer.from(data).toString("ascii").trimEnd());
    this.sendNoise();
  }

  override connectionLost(_reason: Failure): void {
    this.finished.callback(undefined);
  }
}

/** `readKey`: a key file, asking for its passphrase when it is encrypted. */
async function readKey(path: string): Promise<keys.Key> {
  try {
    return keys.Key.fromFile(path);
  } catch (e) {
    if (!(e instanceof EncryptedKeyError)) throw e;
    return keys.Key.fromFile(path, undefined, await new TerminalUI().ask(`'${path}' keyphrase: `, false));
  }
}

const expand = (p: string): string => p.replace(/^~(?=\/|$)/, process.env["HOME"] ?? homedir());

/** `ConnectionParameters.fromCommandLine`: the endpoint for a command, from the arguments. */
async function endpointFromCommandLine(reactor: IReactorTCP & IReactorUNIX, argv: string[], command: string): Promise<IStreamClientEndpoint> {
  let host = "localhost";
  let port = 22;
  let username = userInfo().username;
  let identity: string | undefined;
  let password: string | undefined;
  let knownhosts = "~/.ssh/known_hosts";
  let agent = true;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => argv[++i] ?? "";
    if (a === "-p" || a === "--port") port = Number(value());
    else if (a === "-u" || a === "--username") username = value();
    else if (a === "-i" || a === "--identity") identity = value();
    else if (a === "--password") password = value();
    else if (a === "-k" || a === "--knownhosts") knownhosts = value();
    else if (a === "--no-agent") agent = false;
    else if (a === "-h" || a === "--host") host = value();
    else host = a;
  }
  const keyList = identity !== undefined && existsSync(expand(identity)) ? [await readKey(expand(identity))] : [];
  const knownHostsPath = expand(knownhosts);
  const sock = process.env["SSH_AUTH_SOCK"];
  const agentEndpoint = agent && sock !== undefined ? new UNIXClientEndpoint(reactor, sock) : undefined;
  return SSHCommandClientEndpoint.newConnection(reactor, command, username, host, {
    port,
    keys: keyList,
    ...(password !== undefined ? { password } : {}),
    ...(agentEndpoint !== undefined ? { agentEndpoint } : {}),
    ...(existsSync(knownHostsPath) ? { knownHosts: KnownHostsFile.fromPath(knownHostsPath) } : {}),
  });
}

async function main(reactor: IReactor, ...argv: string[]): Promise<void> {
  const endpoint = await endpointFromCommandLine(reactor, argv, "/bin/cat");
  const factory = Factory.forProtocol(NoiseProtocol);
  const proto = (await endpoint.connect(factory)) as NoiseProtocol;
  await proto.finished;
}

void react(main, process.argv.slice(2));
