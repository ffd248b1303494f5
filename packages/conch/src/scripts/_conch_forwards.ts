/**
 * Where conch's forwards and agent forwarding are set up (internal): `-L`, `-R`, `-D` and `-A`
 * arrive parsed in {@link ForwardOptions} and go to `ssh/forwarding`'s client functions
 * (localForward, remoteForward, dynamicForward, localStreamForward, remoteStreamForward) and to
 * client/agent's `acceptAgentForwarding`. The session channel asks for agent forwarding itself
 * (`requestAgentForwarding` in conch's `channelOpen`), as OpenSSH does before its shell or exec.
 */
import type { IListeningPort, IReactorTCP, IReactorUNIX } from "@twisted-ts/internet/interfaces";
import { reactor as globalReactor } from "@twisted-ts/internet/reactor";
import { acceptAgentForwarding } from "../client/agent.js";
import { ConchError } from "../error.js";
import type { SSHConnection } from "../ssh/connection.js";
import { SSHListenStreamForwardingFactory, dynamicForward, localForward, localStreamForward, packOpen_direct_streamlocal, remoteForward, remoteStreamForward } from "../ssh/forwarding.js";
import type { ConchOptions, ConnectSpec, ListenSpec } from "./_conch_args.js";

/** What of conch's options concerns forwarding. */
export type ForwardOptions = Pick<ConchOptions, "localForwards" | "remoteForwards" | "dynamicForwards" | "forwardAgent">;

/** A forward conch cannot make (a combination OpenSSH has and this build does not). */
export class ForwardingNotSupported extends ConchError {
  override readonly code = "ERR_CONCH_FORWARDING_NOT_SUPPORTED";
  constructor(what: string) {
    super(`${what}: not supported`);
    this.name = "ForwardingNotSupported";
  }
}

/** True when the options ask for any forward or for agent forwarding. */
export function wantsForwards(o: ForwardOptions): boolean {
  return o.localForwards.length + o.remoteForwards.length + o.dynamicForwards.length > 0 || o.forwardAgent;
}

const isPath = (s: ListenSpec | ConnectSpec): s is { readonly path: string } => !Array.isArray(s) && "path" in s;

/** `-L`/`-D` bind address: OpenSSH's `*` (and an empty one) is every address. */
function bindOf(host: string | undefined): { host?: string } {
  if (host === undefined) return {};
  return { host: host === "*" ? "0.0.0.0" : host };
}

function describe(listen: ListenSpec): string {
  return isPath(listen) ? listen.path : `${listen.host ?? "localhost"}:${listen.port}`;
}

/** What the forwards report on the way: OpenSSH prints the port a server allocated for `-R 0:…`. */
export interface ForwardReport {
  stderr: { write(text: string): unknown };
}

/**
 * Sets up every forward of `options` on `connection` (and lets the server open agent channels for
 * `-A`); resolves with the local listening ports once every forward listens, or rejects with the
 * first failure (as `ssh` with ExitOnForwardFailure).
 */
export async function setUpForwards(
  connection: SSHConnection,
  options: ForwardOptions,
  report?: ForwardReport,
  reactor: IReactorTCP & IReactorUNIX = globalReactor,
): Promise<IListeningPort[]> {
  if (options.forwardAgent) acceptAgentForwarding(connection);
  const ports: IListeningPort[] = [];
  for (const { listen, connect } of options.localForwards) {
    if (isPath(listen)) ports.push(await localStreamForward(connection, listen.path, connect, { reactor }));
    else if (isPath(connect)) {
      const factory = new SSHListenStreamForwardingFactory(connection, "direct-streamlocal@openssh.com", () => packOpen_direct_streamlocal(connect.path));
      ports.push(reactor.listenTCP(listen.port, factory, 128, bindOf(listen.host).host ?? "127.0.0.1"));
    } else ports.push(await localForward(connection, { ...bindOf(listen.host), port: listen.port }, [connect[0], connect[1]], reactor));
  }
  for (const { listen } of options.dynamicForwards) {
    if (isPath(listen)) throw new ForwardingNotSupported(`dynamic forwarding on a Unix socket (${listen.path})`);
    ports.push(await dynamicForward(connection, { ...bindOf(listen.host), port: listen.port }, reactor));
  }
  for (const { listen, connect } of options.remoteForwards) {
    if (connect === undefined) throw new ForwardingNotSupported(`remote dynamic forwarding (-R ${describe(listen)})`);
    if (isPath(listen)) {
      await remoteStreamForward(connection, listen.path, connect, { reactor });
      continue;
    }
    if (isPath(connect)) throw new ForwardingNotSupported(`remote forwarding from a port to a Unix socket (-R ${describe(listen)}:${connect.path})`);
    const bound = await remoteForward(connection, { ...(listen.host !== undefined ? { host: listen.host } : {}), port: listen.port }, [connect[0], connect[1]], reactor);
    if (listen.port === 0) report?.stderr.write(`Allocated port ${bound} for remote forward to ${connect[0]}:${connect[1]}\n`);
  }
  return ports;
}
