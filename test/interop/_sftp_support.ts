/**
 * Shared by the `sftp_*` interop tests: our server's options for serving the `sftp` subsystem in
 * process (FileTransferServer over FilesystemSFTPServer in the user's home, or confined).
 */
import * as ft from "@twisted-ts/conch/ssh/filetransfer";
import type { ServerOptions } from "./_server_support.js";

/** Our server with the sftp subsystem in process over the user's home (options from `fs`). */
export function sftpServerOptions(
  fs: (home: string) => ft.FilesystemSFTPServerOptions = (home) => ({ home }),
  protocol: ft.FileTransferServerOptions = {},
): ServerOptions {
  return {
    configureAvatar: (avatar, home) => {
      avatar.subsystemLookup["sftp"] = () => new ft.FileTransferServer(new ft.FilesystemSFTPServer(fs(home)), protocol);
    },
  };
}
