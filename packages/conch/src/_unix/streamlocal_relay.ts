/**
 * The UNIX-socket relay a server running as root starts, as the logged-in user (through setpriv),
 * for `direct-streamlocal@openssh.com` and `streamlocal-forward@openssh.com`: the user's socket is
 * connected to, or bound, with the user's own rights, as sshd does it in the user's child. Each
 * connection is joined to the server through a rendezvous socket the server listens on (owned by
 * the user, mode 0600, in a directory only root may write).
 *
 *     node streamlocal_relay.js connect TARGET RENDEZVOUS
 *     node streamlocal_relay.js listen TARGET RENDEZVOUS UNLINK MASK
 *
 * `connect`: connects to TARGET, then to RENDEZVOUS, and joins them (half-close both ways); a
 * failure is one line on stderr and exit status 1. `listen`: with UNLINK "1" removes a socket file
 * at TARGET first; binds TARGET under umask MASK (octal), says `listening` on stdout, and joins each
 * accepted connection to a new connection to RENDEZVOUS; when stdin ends (the forward is cancelled
 * or the server is gone) it stops listening and removes TARGET, and exits once its connections end.
 *
 * Run only as a program; it imports nothing of the package.
 */
import { lstatSync, unlinkSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

/** Joins two sockets both ways: EOF goes on as a half-close; an error or a full close ends both. */
function join(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  const end = (): void => {
    a.destroy();
    b.destroy();
  };
  a.on("error", end);
  b.on("error", end);
  a.on("close", end);
  b.on("close", end);
}

function toRendezvous(rendezvous: string, peer: Socket): void {
  const r = connect({ path: rendezvous, allowHalfOpen: true });
  r.on("error", () => peer.destroy());
  r.on("connect", () => join(peer, r));
}

const [mode, target, rendezvous, unlink, mask] = process.argv.slice(2);
if (target === undefined || rendezvous === undefined) fail("usage: streamlocal_relay connect|listen TARGET RENDEZVOUS [UNLINK MASK]");

if (mode === "connect") {
  const s = connect({ path: target, allowHalfOpen: true });
  s.once("error", (e: NodeJS.ErrnoException) => fail(`connect to ${target}: ${e.code ?? e.message}`));
  s.once("connect", () => {
    s.removeAllListeners("error");
    toRendezvous(rendezvous, s);
  });
} else if (mode === "listen") {
  if (unlink === "1") {
    try {
      if (lstatSync(target).isSocket()) unlinkSync(target);
    } catch {
      // Nothing there: nothing to remove.
    }
  }
  const server = createServer({ allowHalfOpen: true }, (peer) => toRendezvous(rendezvous, peer));
  let ino = -1;
  server.once("error", (e: NodeJS.ErrnoException) => fail(`listen on ${target}: ${e.code ?? e.message}`));
  const previous = process.umask(Number.parseInt(mask ?? "177", 8) & 0o777);
  server.listen({ path: target }, () => {
    process.umask(previous);
    ino = lstatSync(target).ino;
    process.stdout.write("listening\n");
  });
  process.stdin.on("data", () => undefined);
  process.stdin.on("end", () => {
    server.close();
    try {
      if (lstatSync(target).ino === ino) unlinkSync(target);
    } catch {
      // Already gone.
    }
  });
} else fail(`unknown mode ${JSON.stringify(mode)}`);
