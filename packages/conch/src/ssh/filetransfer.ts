/**
 * `twisted.conch.ssh.filetransfer`: SFTP version 3 (draft-ietf-secsh-filexfer-02), with the
 * OpenSSH extensions, client and server, with Twisted's names.
 *
 * Client: connect a {@link FileTransferClient} to a session channel on which the `sftp`
 * subsystem was requested (or use {@link openSFTPChannel}); each call returns a Deferred:
 *
 * ```ts
 * const sftp = await filetransfer.openSFTPChannel(conn);
 * const f = await sftp.openFile("notes.txt", filetransfer.FXF_READ);
 * const data = await f.readChunk(0, 32768);
 * await f.close();
 * ```
 *
 * Server: put a factory in the avatar's `subsystemLookup`:
 *
 * ```ts
 * avatar.subsystemLookup.sftp = () =>
 *   new filetransfer.FileTransferServer(new filetransfer.FilesystemSFTPServer({ root: "/srv/files" }));
 * ```
 *
 * Requests are length-framed packets of at most {@link MAX_PACKET_LENGTH} bytes; the server
 * answers them in order, keeps at most {@link MAX_OPEN_HANDLES} handles open and pauses its input
 * at {@link MAX_OUTSTANDING_REQUESTS} requests, so its memory is bounded whatever the client
 * pipelines. Failures are {@link SFTPError}s carrying the status code (`FX_*`).
 */
import { fileURLToPath } from "node:url";
import { FilesystemSFTPServer, type FilesystemSFTPServerOptions } from "./_filetransfer/fsserver.js";
import type { ISFTPServer } from "./_filetransfer/interfaces.js";
import { FileTransferServer, type FileTransferServerOptions } from "./_filetransfer/server.js";

export * from "./_filetransfer/constants.js";
export {
  SFTPError,
  SFTPFramingError,
  PacketFramer,
  readAttrs,
  writeAttrs,
  statusName,
  peerSSHVersion,
  TARGET_FIRST_CLIENTS,
  TARGET_FIRST_SERVERS,
  type FileAttributes,
} from "./_filetransfer/wire.js";
export { FileTransferBase } from "./_filetransfer/base.js";
export { FileTransferClient, ClientFile, ClientDirectory, type PathLike, type StatusReply } from "./_filetransfer/client.js";
export { FileTransferServer, type FileTransferServerOptions } from "./_filetransfer/server.js";
export type { DirectoryEntry, ISFTPDirectory, ISFTPFile, ISFTPServer, StatVFS } from "./_filetransfer/interfaces.js";
export { statusForError, STATUS_MESSAGES } from "./_filetransfer/status.js";
export { MAX_SYMLINK_FOLLOWS } from "./_filetransfer/fspaths.js";
export {
  FilesystemSFTPServer,
  FilesystemFile,
  attrsFromStats,
  longName,
  type FilesystemSFTPServerOptions,
} from "./_filetransfer/fsserver.js";
export { openSFTPChannel, SFTPClientChannel } from "./_filetransfer/channel.js";
export { createReadStream, createWriteStream, type RemoteReadStreamOptions, type RemoteWriteStreamOptions } from "./_filetransfer/streams.js";
export {
  getFile,
  putFile,
  getTree,
  putTree,
  type TreeResult,
  TRANSFER_CHUNK_SIZE,
  TRANSFER_MAX_CHUNK_SIZE,
  TRANSFER_REQUESTS,
  TRANSFER_WINDOW,
  type TransferOptions,
} from "./_filetransfer/transfer.js";

/**
 * The path of the `sftp-server` bin's script (run it with `process.execPath`): what a realm runs,
 * as the logged-in user, for the `sftp` subsystem.
 */
export const SFTP_SERVER_SCRIPT: string = fileURLToPath(new URL("../scripts/sftp-server.js", import.meta.url));

/** True when `x` has the methods of an {@link ISFTPServer}. */
export function providesSFTPServer(x: unknown): x is ISFTPServer {
  if (typeof x !== "object" || x === null) return false;
  const o = x as Record<string, unknown>;
  return ["gotVersion", "openFile", "removeFile", "renameFile", "makeDirectory", "removeDirectory", "openDirectory", "getAttrs", "setAttrs", "readLink", "makeLink", "realPath", "extendedRequest"].every(
    (m) => typeof o[m] === "function",
  );
}

/**
 * Twisted's `ISFTPServer(avatar)` adaptation, as a subsystem factory for an avatar's
 * `subsystemLookup.sftp`: the avatar itself when it is an ISFTPServer, its `sftpServer()` when it
 * has one, else a {@link FilesystemSFTPServer} starting in its `getHomeDir()` (with `fs` options,
 * e.g. a `root`). That last one runs *in the server's process, with the server's permissions*: for
 * a server running as root with the Unix realm, run the {@link SFTP_SERVER_SCRIPT} bin as the user
 * instead.
 */
export function sftpSubsystem(
  fs: FilesystemSFTPServerOptions = {},
  protocol: FileTransferServerOptions = {},
): (data: Uint8Array, avatar: unknown) => FileTransferServer {
  return (_data, avatar) => {
    const a = avatar as { sftpServer?: () => ISFTPServer; getHomeDir?: () => string };
    let server: ISFTPServer;
    if (providesSFTPServer(avatar)) server = avatar;
    else if (typeof a.sftpServer === "function") server = a.sftpServer();
    else {
      const home = typeof a.getHomeDir === "function" ? a.getHomeDir() : undefined;
      server = new FilesystemSFTPServer({ ...(home !== undefined && fs.root === undefined ? { home } : {}), ...fs });
    }
    return new FileTransferServer(server, protocol);
  };
}
