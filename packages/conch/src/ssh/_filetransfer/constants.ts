/**
 * SFTP version 3 numbers (draft-ietf-secsh-filexfer-02) with Twisted's names, and the limits
 * this implementation keeps.
 */

/** Packet types (draft-02 §3). */
export const FXP_INIT = 1;
export const FXP_VERSION = 2;
export const FXP_OPEN = 3;
export const FXP_CLOSE = 4;
export const FXP_READ = 5;
export const FXP_WRITE = 6;
export const FXP_LSTAT = 7;
export const FXP_FSTAT = 8;
export const FXP_SETSTAT = 9;
export const FXP_FSETSTAT = 10;
export const FXP_OPENDIR = 11;
export const FXP_READDIR = 12;
export const FXP_REMOVE = 13;
export const FXP_MKDIR = 14;
export const FXP_RMDIR = 15;
export const FXP_REALPATH = 16;
export const FXP_STAT = 17;
export const FXP_RENAME = 18;
export const FXP_READLINK = 19;
export const FXP_SYMLINK = 20;
export const FXP_STATUS = 101;
export const FXP_HANDLE = 102;
export const FXP_DATA = 103;
export const FXP_NAME = 104;
export const FXP_ATTRS = 105;
export const FXP_EXTENDED = 200;
export const FXP_EXTENDED_REPLY = 201;

/** Packet number → name, for dispatch (`packet_<NAME>`) and log lines. */
export const packetTypes: Readonly<Record<number, string>> = {
  [FXP_INIT]: "INIT",
  [FXP_VERSION]: "VERSION",
  [FXP_OPEN]: "OPEN",
  [FXP_CLOSE]: "CLOSE",
  [FXP_READ]: "READ",
  [FXP_WRITE]: "WRITE",
  [FXP_LSTAT]: "LSTAT",
  [FXP_FSTAT]: "FSTAT",
  [FXP_SETSTAT]: "SETSTAT",
  [FXP_FSETSTAT]: "FSETSTAT",
  [FXP_OPENDIR]: "OPENDIR",
  [FXP_READDIR]: "READDIR",
  [FXP_REMOVE]: "REMOVE",
  [FXP_MKDIR]: "MKDIR",
  [FXP_RMDIR]: "RMDIR",
  [FXP_REALPATH]: "REALPATH",
  [FXP_STAT]: "STAT",
  [FXP_RENAME]: "RENAME",
  [FXP_READLINK]: "READLINK",
  [FXP_SYMLINK]: "SYMLINK",
  [FXP_STATUS]: "STATUS",
  [FXP_HANDLE]: "HANDLE",
  [FXP_DATA]: "DATA",
  [FXP_NAME]: "NAME",
  [FXP_ATTRS]: "ATTRS",
  [FXP_EXTENDED]: "EXTENDED",
  [FXP_EXTENDED_REPLY]: "EXTENDED_REPLY",
};

/** Attribute flags (draft-02 §5). */
export const FILEXFER_ATTR_SIZE = 0x00000001;
export const FILEXFER_ATTR_UIDGID = 0x00000002;
export const FILEXFER_ATTR_OWNERGROUP = FILEXFER_ATTR_UIDGID;
export const FILEXFER_ATTR_PERMISSIONS = 0x00000004;
export const FILEXFER_ATTR_ACMODTIME = 0x00000008;
export const FILEXFER_ATTR_EXTENDED = 0x80000000;

export const FILEXFER_TYPE_REGULAR = 1;
export const FILEXFER_TYPE_DIRECTORY = 2;
export const FILEXFER_TYPE_SYMLINK = 3;
export const FILEXFER_TYPE_SPECIAL = 4;
export const FILEXFER_TYPE_UNKNOWN = 5;

/** Open flags (draft-02 §6.3). */
export const FXF_READ = 0x00000001;
export const FXF_WRITE = 0x00000002;
export const FXF_APPEND = 0x00000004;
export const FXF_CREAT = 0x00000008;
export const FXF_TRUNC = 0x00000010;
export const FXF_EXCL = 0x00000020;
export const FXF_TEXT = 0x00000040;

/** Status codes (draft-02 §7). */
export const FX_OK = 0;
export const FX_EOF = 1;
export const FX_NO_SUCH_FILE = 2;
export const FX_PERMISSION_DENIED = 3;
export const FX_FAILURE = 4;
export const FX_BAD_MESSAGE = 5;
export const FX_NO_CONNECTION = 6;
export const FX_CONNECTION_LOST = 7;
export const FX_OP_UNSUPPORTED = 8;
/** From later drafts; OpenSSH's clients print it as a failure, Twisted defines it. */
export const FX_FILE_ALREADY_EXISTS = 11;
/** Later drafts' codes, sent as FX_FAILURE as OpenSSH and Twisted do. */
export const FX_NOT_A_DIRECTORY = FX_FAILURE;
export const FX_FILE_IS_A_DIRECTORY = FX_FAILURE;

/** The protocol version spoken. */
export const SFTP_VERSION = 3;

/**
 * The largest packet accepted (length field value), as OpenSSH's sftp-server
 * (`SFTP_MAX_MSG_LENGTH`, 256 KiB). A bigger length is a protocol error that ends the session.
 */
export const MAX_PACKET_LENGTH = 256 * 1024;

/** The most data one READ answers, and the most one WRITE may carry (OpenSSH's 255 KiB less headers). */
export const MAX_READ_LENGTH = 255 * 1024;

/**
 * Requests received and not yet answered, per session. At this count the server stops reading
 * (the channel gives no more window); a peer that sends more anyway gets FX_FAILURE for them.
 */
export const MAX_OUTSTANDING_REQUESTS = 128;

/**
 * Read-only requests (READ, STAT, LSTAT, FSTAT, REALPATH, READLINK) a session answers at once
 * when they come in a row; anything else waits until they are done, and is answered alone.
 */
export const MAX_CONCURRENT_READS = 16;

/** Open file and directory handles per session (OpenSSH's sftp-server allows 512). */
export const MAX_OPEN_HANDLES = 512;

/** Names sent in one READDIR reply (OpenSSH's sftp-server sends up to 100). */
export const READDIR_BATCH = 100;
