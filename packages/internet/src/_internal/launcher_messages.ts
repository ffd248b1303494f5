/** The messages between a `ProcessLauncher` and its launcher process (Node IPC, JSON). */
import type { PtyRequest } from "./launcher_pty.js";

export type LauncherRequest =
  | {
      readonly t: "spawn";
      readonly id: number;
      readonly file: string;
      /** The whole argv, argv[0] included. */
      readonly argv: readonly string[];
      readonly env: Record<string, string>;
      readonly cwd?: string;
      readonly uid?: number;
      readonly gid?: number;
      /** The child's descriptors that get a socket (each arrives in its own `fd` message). */
      readonly fds: readonly number[];
      readonly maxFD: number;
    }
  /** A terminal (node-pty); its data travels over the socket of `fd` 0. */
  | ({ readonly t: "pty"; readonly id: number } & PtyRequest)
  | { readonly t: "resize"; readonly id: number; readonly cols: number; readonly rows: number }
  | { readonly t: "fd"; readonly id: number; readonly fd: number }
  | { readonly t: "kill"; readonly id: number; readonly signal: string };

export type LauncherReply =
  | { readonly t: "spawned"; readonly id: number; readonly pid: number }
  | { readonly t: "error"; readonly id: number; readonly message: string; readonly code?: string }
  | { readonly t: "exit"; readonly id: number; readonly code: number | null; readonly signal: string | null };
