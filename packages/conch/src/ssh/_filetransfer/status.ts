/**
 * Errors to SFTP statuses. v3 clients know only codes 0–8, so errno values map as OpenSSH's
 * sftp-server maps them (`errno_to_portable`); Twisted's EEXIST → FX_FILE_ALREADY_EXISTS (11)
 * is not used, since OpenSSH's sftp prints an unknown code as "Unknown status".
 */
import { MalformedFieldError, ShortReadError } from "../../error.js";
import {
  FX_BAD_MESSAGE,
  FX_EOF,
  FX_FAILURE,
  FX_NO_SUCH_FILE,
  FX_OK,
  FX_OP_UNSUPPORTED,
  FX_PERMISSION_DENIED,
} from "./constants.js";
import { SFTPError } from "./wire.js";

/** The message sent with each status when the error has none of its own (OpenSSH's words). */
export const STATUS_MESSAGES: Readonly<Record<number, string>> = {
  [FX_OK]: "Success",
  [FX_EOF]: "End of file",
  [FX_NO_SUCH_FILE]: "No such file",
  [FX_PERMISSION_DENIED]: "Permission denied",
  [FX_FAILURE]: "Failure",
  [FX_BAD_MESSAGE]: "Bad message",
  [FX_OP_UNSUPPORTED]: "Operation unsupported",
};

const ERRNO_STATUS: Readonly<Record<string, number>> = {
  ENOENT: FX_NO_SUCH_FILE,
  ENOTDIR: FX_NO_SUCH_FILE,
  EBADF: FX_NO_SUCH_FILE,
  ELOOP: FX_NO_SUCH_FILE,
  EPERM: FX_PERMISSION_DENIED,
  EACCES: FX_PERMISSION_DENIED,
  EFAULT: FX_PERMISSION_DENIED,
  EROFS: FX_PERMISSION_DENIED,
  ENAMETOOLONG: FX_BAD_MESSAGE,
  EINVAL: FX_BAD_MESSAGE,
  ENOSYS: FX_OP_UNSUPPORTED,
  ENOTSUP: FX_OP_UNSUPPORTED,
  EOPNOTSUPP: FX_OP_UNSUPPORTED,
};

/** Words for errno values a client should see (never the server's own paths, which Node's messages hold). */
const ERRNO_MESSAGES: Readonly<Record<string, string>> = {
  ENOENT: "No such file or directory",
  ENOTDIR: "Not a directory",
  EISDIR: "Is a directory",
  EEXIST: "File exists",
  ENOTEMPTY: "Directory not empty",
  EACCES: "Permission denied",
  EPERM: "Operation not permitted",
  ELOOP: "Too many levels of symbolic links",
  EROFS: "Read-only file system",
  ENOSPC: "No space left on device",
  EDQUOT: "Disk quota exceeded",
  EXDEV: "Invalid cross-device link",
  EBUSY: "Device or resource busy",
  EMFILE: "Too many open files",
  EFBIG: "File too large",
  ENAMETOOLONG: "File name too long",
  EINVAL: "Invalid argument",
};

/** The status, message and whether the error was an expected one (the others are logged as failures). */
export function statusForError(e: unknown): { code: number; message: string; expected: boolean } {
  if (e instanceof SFTPError) return { code: e.code, message: e.message, expected: true };
  if (e instanceof ShortReadError || e instanceof MalformedFieldError) {
    return { code: FX_BAD_MESSAGE, message: `Bad message: ${e.message}`, expected: true };
  }
  const errno = (e as { code?: unknown } | null)?.code;
  if (typeof errno === "string" && /^E[A-Z0-9]+$/.test(errno)) {
    const code = ERRNO_STATUS[errno] ?? FX_FAILURE;
    return { code, message: ERRNO_MESSAGES[errno] ?? STATUS_MESSAGES[code] ?? "Failure", expected: true };
  }
  return { code: FX_FAILURE, message: "Failure", expected: false };
}
