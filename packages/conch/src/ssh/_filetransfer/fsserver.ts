/**
 * An {@link ISFTPServer} over the local filesystem through `node:fs` file handles (the shape of
 * Twisted's `SFTPServerForUnixConchUser`), optionally confined to a root folder (see
 * `fspaths.ts`). It acts with the permissions of the process it runs in: run it as the user (the
 * `sftp-server` bin under the Unix realm) to open files as that user.
 */
import { constants, promises as fsp, readFileSync, readSync, writeSync, type Stats } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { homedir } from "node:os";
import { posix } from "node:path";
import { Logger } from "@twisted-ts/internet/log";
import {
  FXF_APPEND,
  FXF_CREAT,
  FXF_EXCL,
  FXF_READ,
  FXF_TRUNC,
  FXF_WRITE,
  FX_FAILURE,
  FX_OP_UNSUPPORTED,
  FX_PERMISSION_DENIED,
} from "./constants.js";
import { ConfinedResolver, PlainResolver, type PathResolver, type Target } from "./fspaths.js";
import type { DirectoryEntry, ISFTPDirectory, ISFTPFile, ISFTPServer, StatVFS } from "./interfaces.js";
import { SFTPError, type FileAttributes } from "./wire.js";

/** Options of {@link FilesystemSFTPServer}. */
export interface FilesystemSFTPServerOptions {
  /**
   * Confine the session to this folder: the client sees it as "/" and no path, `..` or symbolic
   * link leads out of it.
   */
  root?: string;
  /** The start directory ("."): a client path when confined (default "/"), else a real one (default: the process's cwd). */
  home?: string;
  /**
   * A quota: the largest size a file may reach through this session (a WRITE or a size change
   * past it fails with FX_FAILURE "Disk quota exceeded"). Default: no limit.
   */
  maxFileSize?: number;
  /**
   * Read and write open files with `readSync`/`writeSync` on the protocol's own thread, as
   * OpenSSH's sftp-server does, instead of a thread-pool round trip per request. For a process
   * that serves one session (the sftp-server bin) that is cheaper; a server that runs sessions in
   * process keeps the default (false), so a slow disk stalls no other connection.
   */
  blockingIO?: boolean;
}

/** Attributes of a stat result. */
export function attrsFromStats(st: Stats): FileAttributes {
  return {
    size: st.size,
    uid: st.uid,
    gid: st.gid,
    permissions: st.mode,
    atime: Math.floor(st.atimeMs / 1000),
    mtime: Math.floor(st.mtimeMs / 1000),
  };
}

let idNames: { users: Map<number, string>; groups: Map<number, string> } | undefined;

/** uid → name and gid → name from /etc/passwd and /etc/group (numbers when unreadable). */
function names(): { users: Map<number, string>; groups: Map<number, string> } {
  if (idNames !== undefined) return idNames;
  const read = (file: string): Map<number, string> => {
    const m = new Map<number, string>();
    try {
      for (const line of readFileSync(file, "utf8").split("\n")) {
        const f = line.split(":");
        if (f.length >= 3 && f[0] !== "" && !m.has(Number(f[2]))) m.set(Number(f[2]), f[0]!);
      }
    } catch {
      // Numbers it is.
    }
    return m;
  };
  idNames = { users: read("/etc/passwd"), groups: read("/etc/group") };
  return idNames;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function modeString(mode: number): string {
  const type = (mode & 0o170000) >>> 12;
  const t = { 0o14: "s", 0o12: "l", 0o10: "-", 0o6: "b", 0o4: "d", 0o2: "c", 0o1: "p" }[type] ?? "?";
  const rwx = (bits: number, special: boolean, ch: string): string =>
    (bits & 4 ? "r" : "-") + (bits & 2 ? "w" : "-") + (special ? (bits & 1 ? ch : ch.toUpperCase()) : bits & 1 ? "x" : "-");
  return t + rwx((mode >> 6) & 7, (mode & 0o4000) !== 0, "s") + rwx((mode >> 3) & 7, (mode & 0o2000) !== 0, "s") + rwx(mode & 7, (mode & 0o1000) !== 0, "t");
}

/**
 * The `ls -l` line of READDIR's longname, in OpenSSH's sftp-server layout
 * (`%s %3u %-8s %-8s %8llu %s %s`), times as `Mon dd HH:MM` within six months, else `Mon dd  YYYY`.
 */
export function longName(name: string, st: Stats, now: number = Date.now()): string {
  const { users, groups } = names();
  const d = new Date(st.mtimeMs);
  const recent = Math.abs(now - st.mtimeMs) < 182 * 24 * 3600 * 1000;
  const day = String(d.getDate()).padStart(2, " ");
  const when = recent
    ? `${MONTHS[d.getMonth()]} ${day} ${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`
    : `${MONTHS[d.getMonth()]} ${day}  ${d.getFullYear()}`;
  const user = users.get(st.uid) ?? String(st.uid);
  const group = groups.get(st.gid) ?? String(st.gid);
  return `${modeString(st.mode)} ${String(st.nlink).padStart(3)} ${user.padEnd(8)} ${group.padEnd(8)} ${String(st.size).padStart(8)} ${when} ${name}`;
}

function openFlags(pflags: number): number {
  let f: number;
  if (pflags & FXF_READ && pflags & FXF_WRITE) f = constants.O_RDWR;
  else if (pflags & FXF_WRITE) f = constants.O_WRONLY;
  else f = constants.O_RDONLY;
  if (pflags & FXF_APPEND) f |= constants.O_APPEND;
  if (pflags & FXF_CREAT) f |= constants.O_CREAT;
  if (pflags & FXF_TRUNC) f |= constants.O_TRUNC;
  if (pflags & FXF_EXCL) f |= constants.O_EXCL;
  return f;
}

async function withTarget<T>(t: Target, fn: (t: Target) => Promise<T>): Promise<T> {
  try {
    return await fn(t);
  } finally {
    await t.release();
  }
}

/** Applies attributes through an open descriptor (in OpenSSH's order: size, mode, times, owner). */
async function setHandleAttrs(fh: FileHandle, attrs: FileAttributes): Promise<void> {
  if (attrs.size !== undefined) await fh.truncate(attrs.size);
  if (attrs.permissions !== undefined) await fh.chmod(attrs.permissions & 0o7777);
  if (attrs.atime !== undefined && attrs.mtime !== undefined) await fh.utimes(attrs.atime, attrs.mtime);
  if (attrs.uid !== undefined && attrs.gid !== undefined) await fh.chown(attrs.uid, attrs.gid);
}

async function statVFSOf(path: string): Promise<StatVFS> {
  const s = await fsp.statfs(path, { bigint: true });
  return {
    bsize: s.bsize,
    frsize: s.bsize,
    blocks: s.blocks,
    bfree: s.bfree,
    bavail: s.bavail,
    files: s.files,
    ffree: s.ffree,
    favail: s.ffree,
    fsid: 0n,
    flag: 0n,
    namemax: 255n,
  };
}

const log = new Logger("twisted-ts.conch.ssh.filetransfer");

function checkQuota(size: number, maxFileSize: number): void {
  if (size <= maxFileSize) return;
  log.warn("refusing to make a file {size} bytes long: the quota is {maxFileSize}", { size, maxFileSize });
  throw new SFTPError(FX_FAILURE, "Disk quota exceeded");
}

/** An open file: `node:fs` FileHandle reads and writes at the offsets asked. */
export class FilesystemFile implements ISFTPFile {
  constructor(
    readonly fh: FileHandle,
    /** See {@link FilesystemSFTPServerOptions.maxFileSize}. */
    readonly maxFileSize: number = Number.POSITIVE_INFINITY,
    /** See {@link FilesystemSFTPServerOptions.blockingIO}. */
    readonly blockingIO = false,
  ) {}

  async readChunk(offset: number, length: number): Promise<Uint8Array> {
    const buf = Buffer.allocUnsafe(length);
    const { bytesRead } = await this.fh.read(buf, 0, length, offset);
    return buf.subarray(0, bytesRead);
  }

  async readChunkInto(offset: number, into: Uint8Array): Promise<number> {
    if (this.blockingIO) return readSync(this.fh.fd, into, 0, into.length, offset);
    const { bytesRead } = await this.fh.read(into, 0, into.length, offset);
    return bytesRead;
  }

  async writeChunk(offset: number, data: Uint8Array): Promise<void> {
    if (this.blockingIO) return this.writeChunkFrom(offset, data);
    checkQuota(offset + data.length, this.maxFileSize);
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, offset + done);
      done += bytesWritten;
    }
  }

  /**
   * `data` is written (copied into the file) before this settles, so the server may reuse it.
   * With `blockingIO` it is written before this returns (nothing to await: no promise per WRITE).
   */
  writeChunkFrom(offset: number, data: Uint8Array): Promise<void> | undefined {
    if (!this.blockingIO) return this.writeChunk(offset, data);
    checkQuota(offset + data.length, this.maxFileSize);
    for (let done = 0; done < data.length; ) done += writeSync(this.fh.fd, data, done, data.length - done, offset + done);
    return undefined;
  }

  async getAttrs(): Promise<FileAttributes> {
    return attrsFromStats(await this.fh.stat());
  }

  async setAttrs(attrs: FileAttributes): Promise<void> {
    if (attrs.size !== undefined) checkQuota(attrs.size, this.maxFileSize);
    await setHandleAttrs(this.fh, attrs);
  }

  sync(): Promise<void> {
    return this.fh.sync();
  }

  /** statfs(2) has no descriptor form in Node: the descriptor's /proc link names the same file. */
  statVFS(): Promise<StatVFS> {
    return statVFSOf(`/proc/self/fd/${this.fh.fd}`);
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

/** An open directory: entries with their `lstat` attributes and `ls -l` line, in batches. */
class FilesystemDirectory implements ISFTPDirectory {
  private done = false;

  constructor(
    private readonly dir: import("node:fs").Dir,
    private readonly dirPath: string,
    private readonly release: () => Promise<void>,
  ) {}

  async readBatch(max: number): Promise<DirectoryEntry[]> {
    if (this.done) return [];
    const ents: string[] = [];
    while (ents.length < max) {
      const e = await this.dir.read();
      if (e === null) {
        this.done = true;
        break;
      }
      ents.push(e.name);
    }
    const now = Date.now();
    const out = await Promise.all(
      ents.map(async (name): Promise<DirectoryEntry | undefined> => {
        try {
          const st = await fsp.lstat(posix.join(this.dirPath, name));
          return [name, longName(name, st, now), attrsFromStats(st)];
        } catch {
          // Gone since readdir: leave it out, as ls does.
          return undefined;
        }
      }),
    );
    return out.filter((x): x is DirectoryEntry => x !== undefined);
  }

  async next(): Promise<IteratorResult<DirectoryEntry, unknown>> {
    const [e] = await this.readBatch(1);
    return e === undefined ? { done: true, value: undefined } : { done: false, value: e };
  }

  async close(): Promise<void> {
    try {
      await this.dir.close();
    } finally {
      await this.release();
    }
  }
}

/**
 * The local filesystem as an ISFTPServer, with the OpenSSH extensions `posix-rename`, `statvfs`,
 * `fstatvfs`, `hardlink`, `fsync`, `lsetstat`, `expand-path` and `home-directory`.
 */
export class FilesystemSFTPServer implements ISFTPServer {
  readonly paths: PathResolver;
  readonly filesSupport = { sync: true, statVFS: true } as const;
  /** True when confined to a root folder. */
  readonly confined: boolean;
  /** See {@link FilesystemSFTPServerOptions.maxFileSize}. */
  readonly maxFileSize: number;
  /** See {@link FilesystemSFTPServerOptions.blockingIO}. */
  readonly blockingIO: boolean;

  constructor(options: FilesystemSFTPServerOptions = {}) {
    this.confined = options.root !== undefined;
    this.maxFileSize = options.maxFileSize ?? Number.POSITIVE_INFINITY;
    this.blockingIO = options.blockingIO ?? false;
    this.paths = options.root !== undefined ? new ConfinedResolver(options.root, options.home ?? "/") : new PlainResolver(options.home ?? process.cwd());
  }

  gotVersion(_otherVersion: number, _extData: Record<string, Uint8Array>): Record<string, Uint8Array> {
    return {};
  }

  async openFile(filename: string, flags: number, attrs: FileAttributes): Promise<ISFTPFile> {
    const t = await this.paths.resolve(filename, true);
    return withTarget(t, async () => {
      const mode = attrs.permissions !== undefined ? attrs.permissions & 0o7777 : 0o666;
      const fh = await fsp.open(t.opPath, openFlags(flags) | (t.follow ? 0 : constants.O_NOFOLLOW), mode);
      return new FilesystemFile(fh, this.maxFileSize, this.blockingIO);
    });
  }

  removeFile(filename: string): Promise<void> {
    return this.paths.resolve(filename, false).then((t) => withTarget(t, (t) => (t.isRoot ? denyRoot() : fsp.unlink(t.opPath))));
  }

  async renameFile(oldpath: string, newpath: string): Promise<void> {
    await this.rename(oldpath, newpath, false);
  }

  posixRename(oldpath: string, newpath: string): Promise<void> {
    return this.rename(oldpath, newpath, true);
  }

  private async rename(oldpath: string, newpath: string, replace: boolean): Promise<void> {
    const from = await this.paths.resolve(oldpath, false);
    await withTarget(from, async () => {
      const to = await this.paths.resolve(newpath, false);
      await withTarget(to, async () => {
        if (from.isRoot || to.isRoot) return denyRoot();
        if (!replace) {
          // SFTP v3 rename does not replace (draft-02 §6.5). link+unlink as OpenSSH does, so the
          // check and the move are one step; rename after an lstat where links are not possible.
          try {
            await fsp.link(from.opPath, to.opPath);
            await fsp.unlink(from.opPath);
            return;
          } catch (e) {
            const code = (e as { code?: string }).code;
            if (code === "EEXIST") throw e;
            if (code !== "EPERM" && code !== "EXDEV" && code !== "ENOTSUP" && code !== "EOPNOTSUPP") throw e;
          }
          const exists = await fsp.lstat(to.opPath).then(
            () => true,
            () => false,
          );
          if (exists) throw Object.assign(new Error("file exists"), { code: "EEXIST" });
        }
        await fsp.rename(from.opPath, to.opPath);
      });
    });
  }

  makeDirectory(path: string, attrs: FileAttributes): Promise<void> {
    const mode = attrs.permissions !== undefined ? attrs.permissions & 0o7777 : 0o777;
    return this.paths.resolve(path, false).then((t) => withTarget(t, async (t) => void (t.isRoot ? denyRoot() : await fsp.mkdir(t.opPath, { mode }))));
  }

  removeDirectory(path: string): Promise<void> {
    return this.paths.resolve(path, false).then((t) => withTarget(t, (t) => (t.isRoot ? denyRoot() : fsp.rmdir(t.opPath))));
  }

  async openDirectory(path: string): Promise<ISFTPDirectory> {
    const t = await this.paths.resolve(path, true);
    try {
      // O_NOFOLLOW: a final component swapped for a link after the walk is refused, not followed.
      const fh = await fsp.open(t.opPath, constants.O_RDONLY | constants.O_DIRECTORY | (t.follow ? 0 : constants.O_NOFOLLOW));
      const dirPath = `/proc/self/fd/${fh.fd}`;
      let dir;
      try {
        dir = await fsp.opendir(this.confined ? dirPath : t.opPath);
      } catch (e) {
        await fh.close();
        throw e;
      }
      return new FilesystemDirectory(dir, this.confined ? dirPath : t.opPath, async () => {
        await fh.close();
        await t.release();
      });
    } catch (e) {
      await t.release();
      throw e;
    }
  }

  async getAttrs(path: string, followLinks: boolean): Promise<FileAttributes> {
    const t = await this.paths.resolve(path, followLinks);
    return withTarget(t, async (t) => attrsFromStats(t.follow ? await fsp.stat(t.opPath) : await fsp.lstat(t.opPath)));
  }

  setAttrs(path: string, attrs: FileAttributes): Promise<void> {
    return this.applyAttrs(path, attrs, true);
  }

  lsetAttrs(path: string, attrs: FileAttributes): Promise<void> {
    return this.applyAttrs(path, attrs, false);
  }

  private async applyAttrs(path: string, attrs: FileAttributes, followLinks: boolean): Promise<void> {
    if (attrs.size !== undefined) checkQuota(attrs.size, this.maxFileSize);
    const t = await this.paths.resolve(path, followLinks);
    await withTarget(t, async (t) => {
      if (t.follow) {
        if (attrs.size !== undefined) await fsp.truncate(t.opPath, attrs.size);
        if (attrs.permissions !== undefined) await fsp.chmod(t.opPath, attrs.permissions & 0o7777);
        if (attrs.atime !== undefined && attrs.mtime !== undefined) await fsp.utimes(t.opPath, attrs.atime, attrs.mtime);
        if (attrs.uid !== undefined && attrs.gid !== undefined) await fsp.chown(t.opPath, attrs.uid, attrs.gid);
        return;
      }
      // No-follow: through a descriptor opened with O_NOFOLLOW where one can be opened.
      const st = await fsp.lstat(t.opPath);
      if (st.isSymbolicLink()) {
        if (attrs.size !== undefined || attrs.permissions !== undefined) throw new SFTPError(FX_OP_UNSUPPORTED, "a symbolic link has no size or mode of its own to set");
        if (attrs.atime !== undefined && attrs.mtime !== undefined) await fsp.lutimes(t.opPath, attrs.atime, attrs.mtime);
        if (attrs.uid !== undefined && attrs.gid !== undefined) await fsp.lchown(t.opPath, attrs.uid, attrs.gid);
        return;
      }
      let fh: FileHandle | undefined;
      for (const mode of attrs.size !== undefined ? [constants.O_WRONLY] : [constants.O_RDONLY, constants.O_WRONLY]) {
        fh = await fsp.open(t.opPath, mode | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(() => undefined);
        if (fh !== undefined) break;
      }
      if (fh === undefined) {
        // Neither readable nor writable (a mode 000 file its owner makes readable again): by
        // path, after the lstat above; the kernel's own permission check still applies.
        if (attrs.size !== undefined) throw new SFTPError(FX_PERMISSION_DENIED, "Permission denied");
        if (attrs.permissions !== undefined) await fsp.chmod(t.opPath, attrs.permissions & 0o7777);
        if (attrs.atime !== undefined && attrs.mtime !== undefined) await fsp.lutimes(t.opPath, attrs.atime, attrs.mtime);
        if (attrs.uid !== undefined && attrs.gid !== undefined) await fsp.lchown(t.opPath, attrs.uid, attrs.gid);
        return;
      }
      try {
        await setHandleAttrs(fh, attrs);
      } finally {
        await fh.close();
      }
    });
  }

  readLink(path: string): Promise<string> {
    // The confined root's opPath is itself a /proc link: reading it would tell the real path.
    return this.paths.resolve(path, false).then((t) =>
      withTarget(t, (t) => (t.isRoot ? Promise.reject(Object.assign(new Error("not a link"), { code: "EINVAL" })) : fsp.readlink(t.opPath))),
    );
  }

  makeLink(linkPath: string, targetPath: string): Promise<void> {
    return this.paths.resolve(linkPath, false).then((t) => withTarget(t, (t) => (t.isRoot ? denyRoot() : fsp.symlink(targetPath, t.opPath))));
  }

  async hardLink(oldpath: string, newpath: string): Promise<void> {
    const from = await this.paths.resolve(oldpath, false);
    await withTarget(from, async () => {
      const to = await this.paths.resolve(newpath, false);
      await withTarget(to, () => fsp.link(from.opPath, to.opPath));
    });
  }

  realPath(path: string): Promise<string> {
    return this.paths.realPath(path);
  }

  /** `~` and `~/x` are the start directory; `~user` is refused unless it is this user. */
  expandPath(path: string): Promise<string> {
    if (path === "~" || path.startsWith("~/")) return this.paths.realPath(posix.join(this.paths.home, path.slice(1)));
    if (path.startsWith("~")) return Promise.reject(new SFTPError(FX_FAILURE, "~user is not supported"));
    return this.paths.realPath(path);
  }

  homeDirectory(username: string): Promise<string> {
    if (username !== "") return Promise.reject(new SFTPError(FX_FAILURE, "home directories of other users are not available"));
    return Promise.resolve(this.confined ? this.paths.home : this.paths.home || homedir());
  }

  statVFS(path: string): Promise<StatVFS> {
    return this.paths.resolve(path, true).then((t) => withTarget(t, (t) => statVFSOf(t.opPath)));
  }

  extendedRequest(extendedName: string, _extendedData: Uint8Array): Promise<Uint8Array> {
    return Promise.reject(new SFTPError(FX_OP_UNSUPPORTED, `Unsupported extended request ${extendedName}`));
  }
}

function denyRoot(): Promise<never> {
  return Promise.reject(new SFTPError(FX_PERMISSION_DENIED, "Permission denied: the root folder cannot be changed"));
}
