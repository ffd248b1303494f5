/**
 * ssh2's SSH server (the npm package, a dev dependency), for interop tests of our client.
 *
 * Usage: node ssh2_server.cjs PORT HOST_KEY_FILE AUTHORIZED_PUBLIC_KEY_LINE
 *
 * Listens on 127.0.0.1:PORT; any user name logs in with the one authorized key (the signature
 * checked with ssh2's parseKey().verify). Sessions run real commands: exec spawns
 * `/bin/sh -c COMMAND` with stdin/stdout/stderr piped (backpressure through ssh2's streams) and
 * sends exit-status or exit-signal; env requests reach the command; with a pty-req, the command
 * (or `/bin/sh -i` for a shell) runs on a real pty through pty_bridge.py, which window-change
 * resizes; "signal" requests are passed to the command; the sftp subsystem is ssh2's SFTP server answering REALPATH.
 *
 * With SSH2_REKEY_EVERY_MS set, the server rekeys each connection that often.
 *
 * Prints LISTENING once the port is open.
 */
"use strict";
const { spawn } = require("node:child_process");
const { readFileSync } = require("node:fs");
const { join, posix } = require("node:path");
const { Server, utils } = require("ssh2");

const [port, hostKeyFile, authorized] = process.argv.slice(2);
const allowed = utils.parseKey(authorized);
const BRIDGE = join(__dirname, "pty_bridge.py");

function run(stream, command, env, pty, resizers, signals) {
  let child;
  if (pty) {
    const argv = [BRIDGE, String(pty.rows), String(pty.cols), pty.term || "xterm", ...(command === undefined ? ["/bin/sh", "-i"] : ["/bin/sh", "-c", command])];
    child = spawn("/usr/bin/python3", argv, { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe", "pipe"] });
    resizers.push((rows, cols) => child.stdio[3].write(`${rows} ${cols}\n`));
  } else {
    child = spawn("/bin/sh", ["-c", command], { env: { ...process.env, ...env } });
  }
  signals.push((name) => child.kill(`SIG${name}`));
  stream.pipe(child.stdin);
  child.stdin.on("error", () => {});
  child.stdout.pipe(stream, { end: false });
  child.stderr.pipe(stream.stderr, { end: false });
  child.on("close", (code, signal) => {
    if (signal) stream.exit(signal, false, "");
    else stream.exit(code ?? 255);
    stream.end();
  });
}

new Server({ hostKeys: [readFileSync(hostKeyFile)], debug: process.env.SSH2_DEBUG ? (s) => console.log(s) : undefined }, (client) => {
  client.on("error", (e) => console.log("client error", e.message));
  client.on("authentication", (ctx) => {
    if (ctx.method === "publickey" && ctx.key.algo === allowed.type && Buffer.compare(ctx.key.data, allowed.getPublicSSH()) === 0) {
      if (!ctx.signature) return ctx.accept();
      if (allowed.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true) return ctx.accept();
    }
    ctx.reject(["publickey"]);
  });
  client.on("ready", () => {
    // SSH2_REKEY_EVERY_MS: the server starts a key exchange that often (client.rekey()).
    const every = Number(process.env.SSH2_REKEY_EVERY_MS ?? 0);
    if (every > 0) {
      const timer = setInterval(() => client.rekey(), every);
      client.on("close", () => clearInterval(timer));
    }
    client.on("session", (acceptSession) => {
      const session = acceptSession();
      const env = {};
      const resizers = [];
      const signals = [];
      let pty;
      session.on("env", (accept, _reject, info) => {
        env[info.key] = info.val;
        accept?.();
      });
      session.on("pty", (accept, _reject, info) => {
        pty = info;
        accept?.();
      });
      session.on("window-change", (accept, _reject, info) => {
        for (const r of resizers) r(info.rows, info.cols);
        accept?.();
      });
      session.on("signal", (accept, _reject, info) => {
        for (const f of signals) f(info.name);
        accept?.();
      });
      session.on("exec", (accept, _reject, info) => run(accept(), info.command, env, pty, resizers, signals));
      session.on("shell", (accept) => run(accept(), undefined, env, pty ?? { rows: 24, cols: 80, term: "dumb" }, resizers, signals));
      session.on("sftp", (accept) => {
        const sftp = accept();
        // ssh2 leaves closing an SFTP channel to the application: on the client's EOF or CLOSE it
        // emits "end" and sends nothing (RFC 4254 §5.3 wants a CLOSE back), so end it here.
        sftp.on("end", () => sftp.end());
        sftp.on("REALPATH", (reqid, path) => {
          const full = posix.resolve(process.env.HOME || "/", path);
          sftp.name(reqid, [{ filename: full, longname: full, attrs: {} }]);
        });
      });
    });
  });
}).listen(Number(port), "127.0.0.1", () => console.log("LISTENING"));
