/**
 * How a session's process comes to run as its user, as under sshd: uid, primary gid and the
 * supplementary groups initgroups(3) gives, argv[0] as sshd sets it, and `SSH_TTY` on a terminal.
 *
 * Node can set a child's uid and gid but not its supplementary groups (libuv even clears them with
 * `setgroups(0, NULL)`), and node-pty sets none at all. So a server running as root starts every
 * session process through util-linux's `setpriv --reuid=UID --regid=GID --init-groups --`, the
 * standard tool for this (Essential on Debian). It is safe because it only ever drops privileges:
 * it calls initgroups(3) for the account of UID (the same call sshd makes), then setresgid and
 * setresuid so that the real, effective and saved ids all become the user's (no way back to root),
 * then execs its remaining arguments as given. No shell ever parses anything: every piece is a
 * separate argv element, and the paths are absolute, never looked up on PATH.
 *
 * setpriv execs with argv[0] equal to the program's path, but sshd gives `bash` (`-bash` for a
 * login shell), a terminal session needs `SSH_TTY`, known only once the terminal exists, and the
 * home directory must be entered as the user, not as root. For those a fixed Perl program
 * ({@link EXEC_HELPER}, Perl being Essential on Debian too) runs after setpriv, as the user: it sets
 * `SSH_TTY` from ttyname(0) when asked, enters the home directory, and execs the program with the
 * argv[0] sshd would give. The program text is a constant; its inputs arrive as arguments, never as
 * code. Running after the privilege drop, it can do nothing the user could not.
 */
import { accessSync, constants as fsConstants } from "node:fs";
import { basename } from "node:path";
import type { PasswdEntry } from "./users.js";

/** util-linux's setpriv, which sets a child's uid, gid and supplementary groups. */
export const SETPRIV_PATH = "/usr/bin/setpriv";

/** Perl, which runs {@link EXEC_HELPER}. */
export const PERL_PATH = "/usr/bin/perl";

/**
 * sshd's default `PATH` for users (Debian builds it with
 * `--with-default-path=/usr/local/bin:/usr/bin:/bin:/usr/games`).
 */
export const DEFAULT_USER_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/games";

/** sshd's `PATH` for root (Debian's `--with-superuser-path`). */
export const SUPERUSER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Where `MAIL` points: `<MAIL_SPOOL>/<user>`, as sshd's `_PATH_MAILDIR`. */
export const MAIL_SPOOL = "/var/mail";

/**
 * Perl run as `perl -e EXEC_HELPER -- TTY DIR PROGRAM ARGV0 ARGS...`: with TTY "1" it sets
 * `SSH_TTY` to the terminal on its stdin; it enters DIR, or says on stderr that it could not, as
 * sshd does, and stays where it was started; then it execs PROGRAM with argv `ARGV0 ARGS...`. If
 * the exec fails it says why on stderr and exits 127, as a shell does for a command it cannot run.
 */
export const EXEC_HELPER =
  'my ($tty, $dir, $path, @argv) = @ARGV; if ($tty) { require POSIX; my $t = POSIX::ttyname(0); $ENV{SSH_TTY} = $t if defined $t } ' +
  'chdir $dir or print STDERR "Could not chdir to home directory $dir: $!\\n"; ' +
  'exec { $path } @argv; print STDERR "$path: $!\\n"; exit 127;';

/** A session process cannot be started as its user here: refused rather than run as someone else. */
export class RunAsUnavailable extends Error {
  readonly code = "ERR_CONCH_RUN_AS_UNAVAILABLE";
  constructor(message: string) {
    super(message);
    this.name = "RunAsUnavailable";
  }
}

/** What to start: `file` with `argv` (argv[0] first, as Twisted's `spawnProcess` takes it), in `cwd`. */
export interface UserCommand {
  file: string;
  argv: string[];
  cwd: string;
}

/** Where the run-as tools are and who the server runs as. */
export interface RunAsSettings {
  /** The server's uid (`process.getuid()`); 0 means sessions go through setpriv. */
  serverUid: number | undefined;
  /** Absolute path of setpriv (default {@link SETPRIV_PATH}). */
  setpriv?: string;
  /** Absolute path of perl (default {@link PERL_PATH}). */
  perl?: string;
  /** Whether a path can be executed (default: access(2) with X_OK). */
  isExecutable?: (path: string) => boolean;
}

/** True when this process may execute `path`. */
export function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function tool(path: string, what: string, settings: RunAsSettings, user: PasswdEntry): string {
  if (!path.startsWith("/")) throw new RunAsUnavailable(`${what} must be an absolute path, not ${JSON.stringify(path)}`);
  if (!(settings.isExecutable ?? isExecutable)(path)) {
    throw new RunAsUnavailable(`cannot run a session for ${user.name}: ${path} is missing (${what})`);
  }
  return path;
}

/** What the process is for: a terminal, and the directory it should start in. */
export interface SessionPlace {
  /** The process runs on a terminal: `SSH_TTY` names it. */
  tty: boolean;
  /** The directory to start in, entered as the user (the home directory). */
  home: string;
}

/**
 * The command that runs `program` with `argv` as `user` in `place.home`, as sshd would. As root:
 * setpriv, then {@link EXEC_HELPER}, which enters the home directory as the user (sshd's "Could not
 * chdir to home directory" on stderr and "/" when it cannot, as sshd) and sets argv[0] and
 * `SSH_TTY`; the process is spawned in "/". Not root: the program itself in the home directory
 * (or "/"), through the helper only for a terminal, where node-pty cannot choose argv[0] or know
 * the terminal's name in advance. Throws {@link RunAsUnavailable} (fail closed) when a tool it
 * needs is missing, or when a server that is not root is asked to run another user's process.
 */
export function commandAsUser(user: PasswdEntry, program: string, argv: readonly string[], place: SessionPlace, settings: RunAsSettings): UserCommand {
  const root = settings.serverUid === 0;
  if (!root && settings.serverUid !== undefined && user.uid !== settings.serverUid) {
    throw new RunAsUnavailable(`the server is not root (uid ${settings.serverUid}) and cannot run a process as ${user.name} (uid ${user.uid})`);
  }
  const argv0 = argv[0] ?? program;
  const home = place.home || "/";
  // Without root the spawn's own chdir happens as the user already, so it may pick the directory.
  const ownCwd = (): string => ((settings.isExecutable ?? isExecutable)(home) ? home : "/");
  if (!root && !place.tty) return { file: program, argv: [argv0, ...argv.slice(1)], cwd: ownCwd() };
  const perl = tool(settings.perl ?? PERL_PATH, "perl runs the exec helper", settings, user);
  const helper = [perl, "-e", EXEC_HELPER, "--", place.tty ? "1" : "0", home, program, argv0, ...argv.slice(1)];
  if (!root) return { file: perl, argv: helper, cwd: ownCwd() };
  const setpriv = tool(settings.setpriv ?? SETPRIV_PATH, "util-linux's setpriv sets the user's uid, gid and groups", settings, user);
  // The spawn would chdir as root, into a directory the user may not enter: start in "/" and let
  // the helper enter the home directory after the privilege drop.
  return { file: setpriv, argv: [setpriv, `--reuid=${user.uid}`, `--regid=${user.gid}`, "--init-groups", "--", ...helper], cwd: "/" };
}

/** sshd's argv for a command: `shell -c command`, argv[0] the shell's base name. */
export function execArgv(shell: string, command: string): string[] {
  return [basename(shell), "-c", command];
}

/** sshd's argv for an interactive login shell: argv[0] is `-` and the shell's base name. */
export function loginShellArgv(shell: string): string[] {
  return [`-${basename(shell)}`];
}
