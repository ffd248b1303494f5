/**
 * UNIX sockets opened for a logged-in user, with the user's rights: what the Unix realm's
 * `direct-streamlocal@openssh.com` and `streamlocal-forward@openssh.com` use.
 *
 * When the server runs as the user's own uid (or the user is root), the server connects and
 * listens itself. When the server is root and the user is not, nothing is done with root's rights:
 * a relay ({@link STREAMLOCAL_RELAY_SCRIPT}, run by this Node through setpriv as the user, exactly
 * as session processes are) connects to or binds the user's socket and joins each connection to a
 * rendezvous socket the server listens on. The rendezvous sockets live in a directory made by root
 * (mode 0711, so only root writes there: no symlink games), each owned by the user with mode 0600
 * and a random name, so only that user and root can reach them.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, lstatSync, mkdtempSync, rmSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Deferred } from "@twisted-ts/internet/defer";
import type { Failure } from "@twisted-ts/internet/failure";
import type { IListeningPort, IProtocol, IProtocolFactory, IReactorProcess, IReactorUNIX } from "@twisted-ts/internet/interfaces";
import { Logger } from "@twisted-ts/internet/log";
import { ProcessProtocol } from "@twisted-ts/internet/protocol";
import { connectUNIXProtocol } from "../ssh/_forwarding/streamlocal.js";
import { RunAsUnavailable, isExecutable, type RunAsSettings, SETPRIV_PATH } from "./runas.js";
import type { PasswdEntry } from "./users.js";

const log = new Logger("twisted-ts.conch.unix.streamlocal");

/** The relay program run as the user (see `streamlocal_relay.ts`). */
export const STREAMLOCAL_RELAY_SCRIPT: string = fileURLToPath(new URL("./streamlocal_relay.js", import.meta.url));

/** A reactor that can listen and connect on UNIX sockets and spawn processes. */
export type StreamLocalReactor = IReactorUNIX & IReactorProcess;

/** A listener made for a user: `stop()` stops it and removes its socket file. */
export interface UserSocketListener {
  stop(): void;
}

/** Removes `path` if it is a socket file (StreamLocalBindUnlink never removes anything else). */
function removeSocketFile(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // Nothing there.
  }
}

/** Says whether `port` has `whenListening` (the real reactor's ports) and waits for it. */
async function listening(port: IListeningPort): Promise<void> {
  const ready = (port as IListeningPort & { whenListening?: () => PromiseLike<unknown> }).whenListening?.();
  if (ready !== undefined) await ready;
}

/** Collects a relay's stderr and tells its owner about its first line of output and its exit. */
class RelayProtocol extends ProcessProtocol {
  stderr = "";
  onOutput: (() => void) | undefined = undefined;
  onEnded: ((message: string) => void) | undefined = undefined;
  override outReceived(_data: Uint8Array): void {
    const f = this.onOutput;
    this.onOutput = undefined;
    f?.();
  }
  override errReceived(data: Uint8Array): void {
    if (this.stderr.length < 4096) this.stderr += Buffer.from(data).toString("utf8");
  }
  override processEnded(_reason: Failure): void {
    const f = this.onEnded;
    this.onEnded = undefined;
    f?.(this.stderr.trim() || "the relay exited");
  }
}

/**
 * The UNIX sockets of one login: `connect` and `listen` with the user's rights. `close()` (at
 * logout) stops its listeners and relays and removes its rendezvous directory.
 */
export class UserSockets {
  private dir: string | undefined = undefined;
  private readonly listeners = new Set<UserSocketListener>();

  constructor(
    readonly user: PasswdEntry,
    readonly reactor: StreamLocalReactor,
    readonly settings: RunAsSettings,
  ) {}

  /** True when a relay is needed: the server is root and the user is not. */
  get relayed(): boolean {
    return this.settings.serverUid === 0 && this.user.uid !== 0;
  }

  /** Connects to `path` as the user; fires with the protocol `build` made once the connection exists. */
  connect<P extends IProtocol>(path: string, build: () => P): Deferred<P> {
    const d = new Deferred<P>();
    if (!this.relayed) return connectUNIXProtocol(this.reactor, path, build);
    let port: IListeningPort | undefined;
    const factory: IProtocolFactory = {
      buildProtocol: (): P | null => {
        if (d.called) return null;
        void port?.stopListening();
        const p = build();
        d.callback(p);
        return p;
      },
      doStart: () => undefined,
      doStop: () => undefined,
    };
    this.rendezvous(factory).then(
      ([p, rendezvous]) => {
        port = p;
        try {
          const relay = this.spawnRelay(["connect", path, rendezvous]);
          relay.onEnded = (message) => {
            void p.stopListening();
            if (!d.called) d.errback(new Error(message));
          };
        } catch (e) {
          void p.stopListening();
          d.errback(e instanceof Error ? e : new Error(String(e)));
        }
      },
      (e: unknown) => d.errback(e instanceof Error ? e : new Error(String(e))),
    );
    return d;
  }

  /**
   * Listens on `path` as the user (StreamLocalBindUnlink: `unlink` removes a socket file there
   * first; the file's mode is `0o777 & ~mask`); each connection goes to `factory`.
   */
  async listen(path: string, factory: IProtocolFactory, unlink: boolean, mask: number): Promise<UserSocketListener> {
    if (!this.relayed) {
      if (unlink) removeSocketFile(path);
      const port = this.reactor.listenUNIX(path, factory);
      await listening(port);
      chmodSync(path, 0o777 & ~mask);
      return this.track(() => void port.stopListening());
    }
    const [port, rendezvous] = await this.rendezvous(factory);
    const relay = this.spawnRelay(["listen", path, rendezvous, unlink ? "1" : "0", (mask & 0o777).toString(8)]);
    await new Promise<void>((resolve, reject) => {
      relay.onOutput = resolve;
      relay.onEnded = (message) => reject(new Error(message));
    });
    relay.onEnded = undefined;
    return this.track(() => {
      relay.transport.closeStdin();
      void port.stopListening();
    });
  }

  /** Stops every listener and removes the rendezvous directory. */
  close(): void {
    for (const l of [...this.listeners]) l.stop();
    if (this.dir !== undefined) rmSync(this.dir, { recursive: true, force: true });
    this.dir = undefined;
  }

  private track(stop: () => void): UserSocketListener {
    const listener: UserSocketListener = {
      stop: () => {
        if (!this.listeners.delete(listener)) return;
        stop();
      },
    };
    this.listeners.add(listener);
    return listener;
  }

  /** A rendezvous socket for `factory`, reachable by the user only. */
  private async rendezvous(factory: IProtocolFactory): Promise<[IListeningPort, string]> {
    if (this.dir === undefined) {
      this.dir = mkdtempSync(join(tmpdir(), "twts-streamlocal-"));
      chmodSync(this.dir, 0o711);
    }
    const path = join(this.dir, `${randomBytes(12).toString("hex")}.sock`);
    const port = this.reactor.listenUNIX(path, factory);
    await listening(port);
    // Root's own directory, which nobody else may write: the path names the socket just bound.
    chownSync(path, this.user.uid, this.user.gid);
    chmodSync(path, 0o600);
    return [port, path];
  }

  /** Starts the relay as the user: setpriv, then this Node running the relay program. */
  private spawnRelay(args: string[]): RelayProtocol {
    const setpriv = this.settings.setpriv ?? SETPRIV_PATH;
    if (!setpriv.startsWith("/") || !(this.settings.isExecutable ?? isExecutable)(setpriv)) {
      throw new RunAsUnavailable(`cannot open a UNIX socket as ${this.user.name}: ${setpriv} is missing`);
    }
    const argv = [setpriv, `--reuid=${this.user.uid}`, `--regid=${this.user.gid}`, "--init-groups", "--", process.execPath, STREAMLOCAL_RELAY_SCRIPT, ...args];
    const relay = new RelayProtocol();
    this.reactor.spawnProcess(relay, setpriv, argv, { env: {}, path: "/" });
    log.info("relay for {user}: {args}", { user: this.user.name, args: args.slice(0, 2).join(" ") });
    return relay;
  }
}
