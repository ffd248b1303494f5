/**
 * `ISFTPServer` and `ISFTPFile` (Twisted's `twisted.conch.interfaces`): what a FileTransferServer
 * asks of the filesystem it serves. Every method may return a value, a Promise or a Deferred;
 * throwing (or rejecting) with an {@link SFTPError} answers with that status, a Node `fs` error
 * with the status its errno maps to.
 */
import type { Awaitable } from "@twisted-ts/internet/defer";
import type { FileAttributes } from "./wire.js";

/** One READDIR entry, as Twisted's tuple: file name, `ls -l` style line, attributes. */
export type DirectoryEntry = [filename: string, longname: string, attrs: FileAttributes];

/** An open directory: entries one at a time (a sync or async iterator), then `close`. */
export interface ISFTPDirectory {
  next(): Awaitable<IteratorResult<DirectoryEntry, unknown>>;
  /** Up to `max` entries at once (optional; faster than `next` per entry). An empty list is the end. */
  readBatch?(max: number): Awaitable<DirectoryEntry[]>;
  close(): Awaitable<void>;
}

/** `statvfs@openssh.com` reply fields (OpenSSH PROTOCOL §4.4), as statvfs(3) gives them. */
export interface StatVFS {
  bsize: bigint;
  frsize: bigint;
  blocks: bigint;
  bfree: bigint;
  bavail: bigint;
  files: bigint;
  ffree: bigint;
  favail: bigint;
  fsid: bigint;
  flag: bigint;
  namemax: bigint;
}

/** `ISFTPFile`: an open file. */
export interface ISFTPFile {
  close(): Awaitable<void>;
  /**
   * Up to `length` bytes at `offset`. Fewer bytes is a short read; an empty result, or an
   * SFTPError(FX_EOF), is the end of the file.
   */
  readChunk(offset: number, length: number): Awaitable<Uint8Array>;
  /**
   * Optional: reads up to `into.length` bytes at `offset` into `into` and returns how many (0 at
   * the end of the file). No Twisted counterpart: where it is there, the server reads straight
   * into the DATA reply it sends, saving a buffer and a copy per READ.
   */
  readChunkInto?(offset: number, into: Uint8Array): Awaitable<number>;
  writeChunk(offset: number, data: Uint8Array): Awaitable<void>;
  /**
   * Optional: as `writeChunk`, but `data` is only lent: nothing may keep it once the call has
   * settled. No Twisted counterpart: where it is there, the server reuses the memory of each
   * WRITE it queued for the next ones, instead of fresh memory per request.
   */
  writeChunkFrom?(offset: number, data: Uint8Array): Awaitable<void>;
  getAttrs(): Awaitable<FileAttributes>;
  setAttrs(attrs: FileAttributes): Awaitable<void>;
  /** `fsync@openssh.com`. */
  sync?(): Awaitable<void>;
  /** `fstatvfs@openssh.com`. */
  statVFS?(): Awaitable<StatVFS>;
}

/**
 * `ISFTPServer`: the filesystem of one SFTP session. The optional methods are OpenSSH's
 * extensions; FileTransferServer advertises each in VERSION only when it is there.
 */
export interface ISFTPServer {
  /** The client's INIT: returns extensions to add to VERSION (name → data). */
  gotVersion(otherVersion: number, extData: Record<string, Uint8Array>): Record<string, Uint8Array>;
  /** `flags` are `FXF_*`; `attrs` apply to a file it creates. */
  openFile(filename: string, flags: number, attrs: FileAttributes): Awaitable<ISFTPFile>;
  removeFile(filename: string): Awaitable<void>;
  /** SFTP v3 rename: fails when `newpath` exists (use `posixRename` to replace). */
  renameFile(oldpath: string, newpath: string): Awaitable<void>;
  makeDirectory(path: string, attrs: FileAttributes): Awaitable<void>;
  removeDirectory(path: string): Awaitable<void>;
  openDirectory(path: string): Awaitable<ISFTPDirectory>;
  getAttrs(path: string, followLinks: boolean): Awaitable<FileAttributes>;
  setAttrs(path: string, attrs: FileAttributes): Awaitable<void>;
  readLink(path: string): Awaitable<string>;
  /** Makes a symbolic link at `linkPath` pointing to `targetPath`. */
  makeLink(linkPath: string, targetPath: string): Awaitable<void>;
  /** The canonical absolute form of `path` ("." is the session's start directory). */
  realPath(path: string): Awaitable<string>;
  /** Any other EXTENDED request: the EXTENDED_REPLY data (throw SFTPError(FX_OP_UNSUPPORTED) to refuse). */
  extendedRequest(extendedName: string, extendedData: Uint8Array): Awaitable<Uint8Array>;
  /** `posix-rename@openssh.com`: rename(2), replacing `newpath`. */
  posixRename?(oldpath: string, newpath: string): Awaitable<void>;
  /** `statvfs@openssh.com`. */
  statVFS?(path: string): Awaitable<StatVFS>;
  /** `hardlink@openssh.com`: link(2) `newpath` to `oldpath`. */
  hardLink?(oldpath: string, newpath: string): Awaitable<void>;
  /** `lsetstat@openssh.com`: setAttrs without following a final symlink. */
  lsetAttrs?(path: string, attrs: FileAttributes): Awaitable<void>;
  /** `expand-path@openssh.com`: realPath with `~` and `~user` expanded. */
  expandPath?(path: string): Awaitable<string>;
  /** Which file extensions its ISFTPFiles implement (`fsync@openssh.com`, `fstatvfs@openssh.com`). */
  readonly filesSupport?: { readonly sync?: boolean; readonly statVFS?: boolean };
  /** `home-directory`: the home directory of `username` ("" for this session's user). */
  homeDirectory?(username: string): Awaitable<string>;
}
