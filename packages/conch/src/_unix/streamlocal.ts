/**
 * UNIX sockets opened for a logged-in user, with the user's rights: what the Unix realm's
 * `direct-streamlocal@openssh.com` and `streamlocal-forward@openssh.com` use.
 *
 * When the server runs as the user's own uid (or the user is root), the server connects and
 * listens itself. When the server is root and the user is not, nothing is done with root's rights:
 * one relay per login ({@link STREAMLOCAL_RELAY_SCRIPT}, run by this Node through setpriv as the
 * user, exactly as session processes are; so memory does not grow with the number of forwards)
 * connects to or binds the user's sockets and joins each connection to a rendezvous socket the
 * server listens on. The rendezvous sockets live in a directory made by root
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

/** Most bytes of one answer line (or of stderr) kept from the relay: it runs as the user. */
const MAX_RELAY_LINE = 4096;

/**
 * The relay of one login (`streamlocal_relay.js` run as the user): sends commands, matches the
 * answers to them by id, and fails what is pending when the relay ends.
 */
class RelayProtocol extends ProcessProtocol {
  private buffer = "";
  private stderr = "";
  private nextId = 0;
  private readonly pending = new Map<number, (error: string | undefined) => void>();
  ended = false;

  /** Sends `command` with a fresh id; `answer` hears the relay's answer (an error text, or undefined). */
  send(command: Record<string, unknown>, answer?: (error: string | undefined) => void): number {
    const id = this.nextId++;
    if (this.ended) {
      answer?.("the relay has ended");
      return id;
    }
    if (answer !== undefined) this.pending.set(id, answer);
    this.transport.write(`${JSON.stringify({ ...command, id })}\n`);
    return id;
  }

  override outReceived(data: Uint8Array): void {
    this.buffer += Buffer.from(data).toString("utf8");
    let nl: number;
    while ((nl = this.buffer.indexOf("\n")) >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      this.answer(line);
    }
    if (this.buffer.length > MAX_RELAY_LINE) this.buffer = "";
  }

  private answer(line: string): void {
    let msg: { id?: unknown; error?: unknown };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      return;
    }
    if (typeof msg.id !== "number") return;
    const f = this.pending.get(msg.id);
    this.pending.delete(msg.id);
    f?.(typeof msg.error === "string" ? msg.error.slice(0, MAX_RELAY_LINE) : undefined);
  }

  override errReceived(data: Uint8Array): void {
    if (this.stderr.length < MAX_RELAY_LINE) this.stderr += Buffer.from(data).toString("utf8");
  }

  override processEnded(_reason: Failure): void {
    this.ended = true;
    const message = this.stderr.trim().slice(0, MAX_RELAY_LINE) || "the relay ended";
    if (this.stderr.trim() !== "") log.warn("UNIX-socket relay ended: {message}", { message });
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const f of pending) f(message);
  }
}

/**
 * The UNIX sockets of one login: `connect` and `listen` with the user's rights. `close()` (at
 * logout) stops its listeners and its relay and removes its rendezvous directory.
 */
export class UserSockets {
  private dir: string | undefined = undefined;
  private relay: RelayProtocol | undefined = undefined;
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
    if (!this.relayed) return connectUNIXProtocol(this.reactor, path, build);
    const d = new Deferred<P>();
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
    const fail = (e: unknown): void => {
      void port?.stopListening();
      if (!d.called) d.errback(e instanceof Error ? e : new Error(String(e)));
    };
    this.rendezvous(factory).then(([p, rendezvous]) => {
      port = p;
      this.getRelay().send({ op: "connect", path, rendezvous }, (error) => {
        if (error !== undefined) fail(new Error(error));
      });
    }).catch(fail);
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
    const relay = this.getRelay();
    const [port, rendezvous] = await this.rendezvous(factory);
    let id = -1;
    try {
      await new Promise<void>((resolve, reject) => {
        id = relay.send({ op: "listen", path, rendezvous, unlink, mask: mask & 0o777 }, (error) => (error === undefined ? resolve() : reject(new Error(error))));
      });
    } catch (e) {
      void port.stopListening();
      throw e;
    }
    return this.track(() => {
      relay.send({ op: "unlisten", listener: id });
      void port.stopListening();
    });
  }

  /** Stops every listener and the relay (which removes its socket files), and the rendezvous directory. */
  close(): void {
    for (const l of [...this.listeners]) l.stop();
    if (this.relay !== undefined && !this.relay.ended) this.relay.transport.closeStdin();
    this.relay = undefined;
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

  /** The login's relay, started on first use (again if it ended): setpriv, then this Node running the relay as the user. */
  private getRelay(): RelayProtocol {
    if (this.relay !== undefined && !this.relay.ended) return this.relay;
    const setpriv = this.settings.setpriv ?? SETPRIV_PATH;
    if (!setpriv.startsWith("/") || !(this.settings.isExecutable ?? isExecutable)(setpriv)) {
      throw new RunAsUnavailable(`cannot open a UNIX socket as ${this.user.name}: ${setpriv} is missing`);
    }
    const argv = [setpriv, `--reuid=${this.user.uid}`, `--regid=${this.user.gid}`, "--init-groups", "--", process.execPath, STREAMLOCAL_RELAY_SCRIPT];
    const relay = new RelayProtocol();
    this.reactor.spawnProcess(relay, setpriv, argv, { env: {}, path: "/" });
    log.info("UNIX-socket relay started for {user}", { user: this.user.name });
    this.relay = relay;
    return relay;
  }
}
