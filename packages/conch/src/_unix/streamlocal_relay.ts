/**
 * The UNIX-socket relay a server running as root starts once per login, as the logged-in user
 * (through setpriv), for `direct-streamlocal@openssh.com` and `streamlocal-forward@openssh.com`:
 * the user's sockets are connected to, or bound, with the user's own rights, as sshd does it in the
 * user's child. Each connection is joined to a rendezvous socket the server listens on (owned by
 * the user, mode 0600, in a directory only root may write).
 *
 *     node streamlocal_relay.js
 *
 * Commands arrive on stdin, one JSON object a line; answers go to stdout the same way:
 *
 * - `{"op":"connect","id":N,"path":P,"rendezvous":R}`: connect to P, then to R, and join them
 *   (half-close both ways); `{"id":N,"ok":true}` or `{"id":N,"error":"…"}`.
 * - `{"op":"listen","id":N,"path":P,"rendezvous":R,"unlink":B,"mask":M}`: with B remove a socket
 *   file at P first; bind P under umask M; join each accepted connection to a new connection to R;
 *   `{"id":N,"ok":true}` once listening, or `{"id":N,"error":"…"}`.
 * - `{"op":"unlisten","id":N,"listener":L}`: stop the listener command L made and remove its
 *   socket file.
 *
 * When stdin ends (the login is over, or the server is gone) every listener stops and its file is
 * removed; the relay exits once its connections have ended. Run only as a program; it imports
 * nothing of the package.
 */
import { lstatSync, unlinkSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { createInterface } from "node:readline";

interface Command {
  op?: unknown;
  id?: unknown;
  path?: unknown;
  rendezvous?: unknown;
  unlink?: unknown;
  mask?: unknown;
  listener?: unknown;
}

const listeners = new Map<number, { server: Server; path: string; ino: number }>();

function reply(id: number, error?: string): void {
  process.stdout.write(`${JSON.stringify(error === undefined ? { id, ok: true } : { id, error })}\n`);
}

function describe(e: NodeJS.ErrnoException): string {
  return e.code ?? e.message;
}

/** Joins two sockets both ways: EOF goes on as a half-close; an error or a full close ends both. */
function join(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  const end = (): void => {
    a.destroy();
    b.destroy();
  };
  for (const s of [a, b]) {
    s.on("error", end);
    s.on("close", end);
  }
}

/** Joins `peer` to a new connection to the rendezvous socket; `done` hears whether that worked. */
function toRendezvous(rendezvous: string, peer: Socket, done: (error?: string) => void): void {
  const r = connect({ path: rendezvous, allowHalfOpen: true });
  r.once("error", (e: NodeJS.ErrnoException) => {
    peer.destroy();
    done(`rendezvous: ${describe(e)}`);
  });
  r.once("connect", () => {
    r.removeAllListeners("error");
    join(peer, r);
    done();
  });
}

function removeIfOurs(path: string, ino: number): void {
  try {
    if (lstatSync(path).ino === ino) unlinkSync(path);
  } catch {
    // Already gone.
  }
}

function stopListener(id: number): void {
  const l = listeners.get(id);
  if (l === undefined) return;
  listeners.delete(id);
  l.server.close();
  removeIfOurs(l.path, l.ino);
}

function doConnect(id: number, path: string, rendezvous: string): void {
  const s = connect({ path, allowHalfOpen: true });
  s.once("error", (e: NodeJS.ErrnoException) => reply(id, `connect to ${path}: ${describe(e)}`));
  s.once("connect", () => {
    s.removeAllListeners("error");
    toRendezvous(rendezvous, s, (error) => reply(id, error));
  });
}

function doListen(id: number, path: string, rendezvous: string, unlink: boolean, mask: number): void {
  if (unlink) {
    try {
      if (lstatSync(path).isSocket()) unlinkSync(path);
    } catch {
      // Nothing there: nothing to remove.
    }
  }
  const server = createServer({ allowHalfOpen: true }, (peer) => toRendezvous(rendezvous, peer, () => undefined));
  server.once("error", (e: NodeJS.ErrnoException) => reply(id, `listen on ${path}: ${describe(e)}`));
  // Node binds a path at once, inside listen(): the umask is ours only for that call.
  const previous = process.umask(mask & 0o777);
  try {
    server.listen({ path }, () => {
      listeners.set(id, { server, path, ino: lstatSync(path).ino });
      reply(id);
    });
  } finally {
    process.umask(previous);
  }
}

function handle(c: Command): void {
  if (typeof c.id !== "number") return;
  const id = c.id;
  if (c.op === "unlisten") stopListener(typeof c.listener === "number" ? c.listener : -1);
  else if (typeof c.path !== "string" || typeof c.rendezvous !== "string") reply(id, "bad command");
  else if (c.op === "connect") doConnect(id, c.path, c.rendezvous);
  else if (c.op === "listen") doListen(id, c.path, c.rendezvous, c.unlink === true, typeof c.mask === "number" ? c.mask : 0o177);
  else reply(id, "bad command");
}

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  try {
    handle(JSON.parse(line) as Command);
  } catch {
    // Not a command: ignored (only the server writes here).
  }
});
lines.on("close", () => {
  for (const id of [...listeners.keys()]) stopListener(id);
});
