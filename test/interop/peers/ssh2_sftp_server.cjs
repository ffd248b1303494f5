/**
 * ssh2's SFTP server (the npm package, a dev dependency) over the real filesystem, for
 * test/interop/sftp_client_ssh2.test.ts.
 *
 * Usage: node ssh2_sftp_server.cjs PORT HOST_KEY_FILE AUTHORIZED_PUBLIC_KEY_LINE
 *
 * Any user name logs in with the one authorized key; the sftp subsystem answers every v3 request
 * with plain `fs` calls (absolute paths are the real ones). Prints LISTENING once the port is open.
 */
"use strict";
const fs = require("node:fs");
const { posix } = require("node:path");
const { Server, utils } = require("ssh2");

const [port, hostKeyFile, authorized] = process.argv.slice(2);
const allowed = utils.parseKey(authorized);
const { STATUS_CODE, flagsToString } = utils.sftp;

function statusOf(e) {
  if (e.code === "ENOENT" || e.code === "ENOTDIR") return STATUS_CODE.NO_SUCH_FILE;
  if (e.code === "EACCES" || e.code === "EPERM") return STATUS_CODE.PERMISSION_DENIED;
  return STATUS_CODE.FAILURE;
}

function attrsOf(st) {
  return { mode: st.mode, uid: st.uid, gid: st.gid, size: st.size, atime: Math.floor(st.atimeMs / 1000), mtime: Math.floor(st.mtimeMs / 1000) };
}

function serve(sftp) {
  const handles = new Map();
  let next = 0;
  const newHandle = (v) => {
    const h = Buffer.from(String(next++));
    handles.set(h.toString(), v);
    return h;
  };
  const guard = (reqid, f) => {
    try {
      f();
    } catch (e) {
      sftp.status(reqid, statusOf(e), e.message);
    }
  };
  const ok = (reqid) => sftp.status(reqid, STATUS_CODE.OK);
  sftp.on("end", () => sftp.end());
  sftp.on("OPEN", (reqid, filename, flags, attrs) =>
    guard(reqid, () => sftp.handle(reqid, newHandle({ fd: fs.openSync(filename, flagsToString(flags), attrs.mode ?? 0o666) }))),
  );
  sftp.on("READ", (reqid, handle, offset, length) =>
    guard(reqid, () => {
      const buf = Buffer.alloc(length);
      const n = fs.readSync(handles.get(handle.toString()).fd, buf, 0, length, offset);
      if (n === 0) sftp.status(reqid, STATUS_CODE.EOF);
      else sftp.data(reqid, buf.subarray(0, n));
    }),
  );
  sftp.on("WRITE", (reqid, handle, offset, data) =>
    guard(reqid, () => {
      fs.writeSync(handles.get(handle.toString()).fd, data, 0, data.length, offset);
      ok(reqid);
    }),
  );
  sftp.on("FSTAT", (reqid, handle) => guard(reqid, () => sftp.attrs(reqid, attrsOf(fs.fstatSync(handles.get(handle.toString()).fd)))));
  sftp.on("FSETSTAT", (reqid, handle, attrs) =>
    guard(reqid, () => {
      const fd = handles.get(handle.toString()).fd;
      if (attrs.mode !== undefined) fs.fchmodSync(fd, attrs.mode & 0o7777);
      if (attrs.size !== undefined) fs.ftruncateSync(fd, attrs.size);
      if (attrs.mtime !== undefined) fs.futimesSync(fd, attrs.atime, attrs.mtime);
      ok(reqid);
    }),
  );
  sftp.on("CLOSE", (reqid, handle) =>
    guard(reqid, () => {
      const h = handles.get(handle.toString());
      handles.delete(handle.toString());
      if (h.fd !== undefined) fs.closeSync(h.fd);
      ok(reqid);
    }),
  );
  sftp.on("OPENDIR", (reqid, path) =>
    guard(reqid, () => {
      const names = fs.readdirSync(path);
      sftp.handle(reqid, newHandle({ dir: path, names }));
    }),
  );
  sftp.on("READDIR", (reqid, handle) =>
    guard(reqid, () => {
      const h = handles.get(handle.toString());
      if (h.names.length === 0) return sftp.status(reqid, STATUS_CODE.EOF);
      const batch = h.names.splice(0, 50).map((name) => {
        const st = fs.lstatSync(posix.join(h.dir, name));
        return { filename: name, longname: name, attrs: attrsOf(st) };
      });
      sftp.name(reqid, batch);
    }),
  );
  sftp.on("LSTAT", (reqid, path) => guard(reqid, () => sftp.attrs(reqid, attrsOf(fs.lstatSync(path)))));
  sftp.on("STAT", (reqid, path) => guard(reqid, () => sftp.attrs(reqid, attrsOf(fs.statSync(path)))));
  sftp.on("SETSTAT", (reqid, path, attrs) =>
    guard(reqid, () => {
      if (attrs.mode !== undefined) fs.chmodSync(path, attrs.mode & 0o7777);
      if (attrs.size !== undefined) fs.truncateSync(path, attrs.size);
      if (attrs.mtime !== undefined) fs.utimesSync(path, attrs.atime, attrs.mtime);
      ok(reqid);
    }),
  );
  sftp.on("REMOVE", (reqid, path) => guard(reqid, () => (fs.unlinkSync(path), ok(reqid))));
  sftp.on("RMDIR", (reqid, path) => guard(reqid, () => (fs.rmdirSync(path), ok(reqid))));
  sftp.on("MKDIR", (reqid, path, attrs) => guard(reqid, () => (fs.mkdirSync(path, attrs.mode ?? 0o777), ok(reqid))));
  sftp.on("RENAME", (reqid, oldPath, newPath) =>
    guard(reqid, () => {
      // SFTP v3 rename does not replace.
      if (fs.existsSync(newPath)) return sftp.status(reqid, STATUS_CODE.FAILURE, "file exists");
      fs.renameSync(oldPath, newPath);
      ok(reqid);
    }),
  );
  sftp.on("READLINK", (reqid, path) =>
    guard(reqid, () => {
      const target = fs.readlinkSync(path);
      sftp.name(reqid, [{ filename: target, longname: target, attrs: {} }]);
    }),
  );
  sftp.on("SYMLINK", (reqid, linkPath, targetPath) => guard(reqid, () => (fs.symlinkSync(targetPath, linkPath), ok(reqid))));
  sftp.on("REALPATH", (reqid, path) =>
    guard(reqid, () => {
      const full = posix.resolve(process.cwd(), path);
      let real = full;
      try {
        real = fs.realpathSync(full);
      } catch {
        // A path about to be created.
      }
      sftp.name(reqid, [{ filename: real, longname: real, attrs: {} }]);
    }),
  );
}

new Server({ hostKeys: [fs.readFileSync(hostKeyFile)] }, (client) => {
  client.on("authentication", (ctx) => {
    if (ctx.method === "publickey" && ctx.key.algo === allowed.type && ctx.key.data.equals(allowed.getPublicSSH())) {
      if (ctx.signature === undefined || allowed.verify(ctx.blob, ctx.signature, ctx.hashAlgo)) return ctx.accept();
    }
    ctx.reject(["publickey"]);
  });
  client.on("error", () => {});
  client.on("ready", () => {
    client.on("session", (accept) => {
      const session = accept();
      session.on("sftp", (accept) => serve(accept()));
    });
  });
}).listen(Number(port), "127.0.0.1", () => console.log("LISTENING"));
