/**
 * The OpenSSH extensions a {@link FileTransferServer} serves itself (OpenSSH PROTOCOL §4, and
 * `copy-data` from draft-ietf-secsh-filexfer-extensions): each handler reads its own fields from
 * the EXTENDED request and replies through the server.
 */
import type { SSHReader } from "../common.js";
import { FXP_EXTENDED_REPLY, FX_EOF, FX_OK, FX_OP_UNSUPPORTED } from "./constants.js";
import type { FileTransferServer } from "./server.js";
import { SFTPError, readAttrs, readPath, readSafeUint64 } from "./wire.js";

/** Bytes copied per step of `copy-data`. */
const COPY_CHUNK = 64 * 1024;

/** `string oldpath, string newpath`: the fields of posix-rename and hardlink. */
function twoPaths(r: SSHReader): [string, string] {
  const paths: [string, string] = [readPath(r), readPath(r)];
  r.end();
  return paths;
}

/** The OpenSSH extensions, by request name: each reads its own fields and replies. */
export const EXTENDED_HANDLERS: Readonly<Record<string, (this: FileTransferServer, r: SSHReader, id: number) => Promise<void>>> = {
  /** `string oldpath, string newpath` → STATUS. */
  async "posix-rename@openssh.com"(r, id) {
    await this.client.posixRename!(...twoPaths(r));
    this.sendStatus(id, FX_OK);
  },
  /** `string path` → EXTENDED_REPLY with the statvfs fields. */
  async "statvfs@openssh.com"(r, id) {
    const path = readPath(r);
    r.end();
    this._sendStatVFS(id, await this.client.statVFS!(path));
  },
  /** `string handle` → EXTENDED_REPLY with the statvfs fields. */
  async "fstatvfs@openssh.com"(r, id) {
    const file = this._fileFor(r);
    r.end();
    if (!file.statVFS) throw new SFTPError(FX_OP_UNSUPPORTED, "fstatvfs is not supported for this file");
    this._sendStatVFS(id, await file.statVFS());
  },
  /** `string oldpath, string newpath` → STATUS. */
  async "hardlink@openssh.com"(r, id) {
    await this.client.hardLink!(...twoPaths(r));
    this.sendStatus(id, FX_OK);
  },
  /** `string handle` → STATUS. */
  async "fsync@openssh.com"(r, id) {
    const file = this._fileFor(r);
    r.end();
    if (!file.sync) throw new SFTPError(FX_OP_UNSUPPORTED, "fsync is not supported for this file");
    await file.sync();
    this.sendStatus(id, FX_OK);
  },
  /** `string path, ATTRS attrs` → STATUS. */
  async "lsetstat@openssh.com"(r, id) {
    const path = readPath(r);
    const attrs = readAttrs(r);
    r.end();
    await this.client.lsetAttrs!(path, attrs);
    this.sendStatus(id, FX_OK);
  },
  /** No fields → EXTENDED_REPLY `uint64 max-packet-length, max-read-length, max-write-length, max-open-handles`. */
  async "limits@openssh.com"(r, id) {
    r.end();
    const maxWrite = this.maxPacketLength - 1024;
    this._sendPacket(FXP_EXTENDED_REPLY, (w) =>
      w.uint32(id).uint64(this.maxPacketLength).uint64(this.maxReadLength).uint64(maxWrite).uint64(this.maxOpenHandles),
    );
    return Promise.resolve();
  },
  /** `string path` → NAME with one entry. */
  async "expand-path@openssh.com"(r, id) {
    const path = readPath(r);
    r.end();
    const real = await this.client.expandPath!(path);
    this._sendNames(id, [[real, real, {}]]);
  },
  /** `string username` → NAME with one entry. */
  async "home-directory"(r, id) {
    const user = readPath(r, "user name");
    r.end();
    const home = await this.client.homeDirectory!(user);
    this._sendNames(id, [[home, home, {}]]);
  },
  /**
   * `string read-handle, uint64 read-offset, uint64 length (0: to the end), string write-handle,
   * uint64 write-offset` → STATUS. Copied in bounded chunks through the two files.
   */
  async "copy-data"(r, id) {
    const from = this._fileFor(r);
    let readOffset = readSafeUint64(r, "read offset");
    const length = readSafeUint64(r, "length");
    const to = this._fileFor(r);
    let writeOffset = readSafeUint64(r, "write offset");
    r.end();
    let left = length === 0 ? Number.POSITIVE_INFINITY : length;
    while (left > 0) {
      let chunk: Uint8Array;
      try {
        chunk = await from.readChunk(readOffset, Math.min(COPY_CHUNK, left));
      } catch (e) {
        if (e instanceof SFTPError && e.code === FX_EOF) break;
        throw e;
      }
      if (chunk.length === 0) break;
      await to.writeChunk(writeOffset, chunk);
      readOffset += chunk.length;
      writeOffset += chunk.length;
      left -= chunk.length;
    }
    if (length !== 0 && left > 0) throw new SFTPError(FX_EOF, "End of file before the length given");
    this.sendStatus(id, FX_OK);
  },
};
