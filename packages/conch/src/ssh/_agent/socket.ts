/** Internal: listening for agent connections on a private UNIX socket. Re-exported by `ssh/agent.ts`. */
import { chmodSync, chownSync, lchownSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { IListeningPort, IProtocolFactory, IReactorUNIX } from "@twisted-ts/internet/interfaces";
import { Logger } from "@twisted-ts/internet/log";
import { reactor as globalReactor } from "@twisted-ts/internet/reactor";
import { AgentError } from "./common.js";

const log = new Logger("twisted-ts.conch.ssh.agent");

/** The longest UNIX socket path, in bytes (Linux's `sun_path` is 108 bytes with its NUL). */
export const MAX_UNIX_SOCKET_PATH = 107;

/** Options of {@link listenAgentSocket}. */
export interface AgentSocketOptions {
  /** The reactor to listen with (default: the global one). */
  reactor?: IReactorUNIX;
  /** Where the private directory is made (default: the OS temporary directory; sshd uses /tmp). */
  parent?: string;
  /**
   * The account that must reach the socket: the directory and socket are given to it (needs
   * root). Default: the server's own account.
   */
  owner?: { uid: number; gid: number };
}

/** A listening agent socket: `path` is what SSH_AUTH_SOCK names. */
export interface AgentSocket {
  /** The socket's path. */
  readonly path: string;
  /** The private directory holding it. */
  readonly directory: string;
  readonly port: IListeningPort;
  /** Stops listening and removes the socket and its directory. Safe to call twice. */
  close(): void;
}

/**
 * Listens with `factory` on a UNIX socket `agent.<pid>` in a fresh directory `ssh-XXXXXX` of mode
 * 0700 (sshd's layout), the socket itself mode 0600; with `owner` both belong to that account, so
 * it and root reach the socket and nobody else does. The socket exists when this returns.
 */
export function listenAgentSocket(factory: IProtocolFactory, options: AgentSocketOptions = {}): AgentSocket {
  const parent = options.parent ?? tmpdir();
  // mkdtemp's six characters, then the socket's name.
  const length = Buffer.byteLength(join(parent, "ssh-XXXXXX", `agent.${process.pid}`));
  if (length > MAX_UNIX_SOCKET_PATH) {
    throw new AgentError(`an agent socket under ${JSON.stringify(parent)} would have a path of ${length} bytes, over the ${MAX_UNIX_SOCKET_PATH}-byte limit of UNIX sockets`);
  }
  const directory = mkdtempSync(join(parent, "ssh-"));
  const path = join(directory, `agent.${process.pid}`);
  let port: IListeningPort | undefined;
  try {
    chmodSync(directory, 0o700);
    // The directory is given away last: until then only we can put anything at `path`, so the
    // chmod and chown below reach our socket and nothing the owner could have planted there.
    port = (options.reactor ?? globalReactor).listenUNIX(path, factory);
    chmodSync(path, 0o600);
    if (options.owner !== undefined) {
      lchownSync(path, options.owner.uid, options.owner.gid);
      chownSync(directory, options.owner.uid, options.owner.gid);
    }
  } catch (e) {
    if (port !== undefined) void port.stopListening();
    rmSync(directory, { recursive: true, force: true });
    throw e;
  }
  const listening = port;
  let closed = false;
  return {
    path,
    directory,
    port: listening,
    close(): void {
      if (closed) return;
      closed = true;
      try {
        void listening.stopListening();
      } catch (e) {
        log.failure("stopping the agent socket {path} failed", e, "warn", { path });
      }
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
