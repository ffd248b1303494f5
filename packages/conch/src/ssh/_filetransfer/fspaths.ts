/**
 * Path resolution for the filesystem SFTP server: plain (the client's paths are the server's,
 * relative ones from the start directory) or confined to a root folder.
 *
 * Confined, the client sees the root as "/" and nothing outside it. Paths are walked one
 * component at a time from the root: `..` never climbs above it, and every symbolic link met is
 * read and followed *inside* the root (an absolute target starts again at the root, as in a
 * chroot), so neither a link the client made during the session nor one that was there gets out.
 *
 * The check-then-use race (a directory on the walked path swapped for a link after the walk) is
 * closed like this: the parent directory of the final component is opened, and the real path of
 * that open descriptor (`/proc/self/fd/N`, which names the directory actually opened) must lie
 * under the root; the operation then goes through `/proc/self/fd/N/<name>`, so the kernel never
 * walks the checked path again. The final component itself is never followed by the kernel (the
 * walk has already resolved it): opens use O_NOFOLLOW, attribute changes use the `l*` calls or a
 * descriptor. Linux only (it needs /proc/self/fd).
 */
import { constants, existsSync, promises as fsp, realpathSync } from "node:fs";
import { posix } from "node:path";
import { SFTPError } from "./wire.js";
import { FX_PERMISSION_DENIED } from "./constants.js";

/** Symbolic links followed in one path before giving up with ELOOP (Linux's MAXSYMLINKS). */
export const MAX_SYMLINK_FOLLOWS = 40;

/** Where an operation should act. */
export interface Target {
  /** The path to give to `fs` calls. */
  readonly opPath: string;
  /** The path as the client sees it (absolute). */
  readonly virtual: string;
  /** True when `fs` calls on `opPath` may follow a final link; false means use the no-follow forms. */
  readonly follow: boolean;
  /** True when this is the root of a confined tree (never removed or renamed). */
  readonly isRoot: boolean;
  release(): Promise<void>;
}

export interface PathResolver {
  /** Where the client starts ("." and relative paths), as the client sees it. */
  readonly home: string;
  resolve(path: string, followFinal: boolean): Promise<Target>;
  /** The canonical client-side form of `path`. */
  realPath(path: string): Promise<string>;
}

function errno(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** The client's paths are the server's. */
export class PlainResolver implements PathResolver {
  constructor(readonly home: string) {}

  resolve(path: string, followFinal: boolean): Promise<Target> {
    const p = posix.resolve(this.home, path);
    return Promise.resolve({ opPath: p, virtual: p, follow: followFinal, isRoot: false, release: () => Promise.resolve() });
  }

  async realPath(path: string): Promise<string> {
    const p = posix.resolve(this.home, path);
    try {
      return await fsp.realpath(p);
    } catch (e) {
      // OpenSSH's client asks for the real path of names it is about to create.
      if ((e as { code?: string }).code === "ENOENT") return p;
      throw e;
    }
  }
}

/** Confined to a root folder; see the module comment. */
export class ConfinedResolver implements PathResolver {
  /** The root's real path (links in the configured root itself are the administrator's). */
  readonly rootReal: string;
  readonly home: string;

  constructor(root: string, home = "/") {
    if (!existsSync("/proc/self/fd")) throw new Error("confining SFTP to a root folder needs /proc/self/fd (Linux)");
    // Once, synchronously, at set-up: a session cannot start without knowing its root.
    this.rootReal = realpathSync(root);
    this.home = posix.resolve("/", home);
  }

  /**
   * Walks `path` inside the root: the resolved parent directories (real names under the root) and
   * the final name ("" for the root itself).
   */
  private async walk(path: string, followFinal: boolean): Promise<{ stack: string[]; name: string }> {
    let todo = posix.resolve(this.home, path).split("/");
    let stack: string[] = [];
    let links = 0;
    while (todo.length > 0) {
      const c = todo.shift()!;
      if (c === "" || c === ".") continue;
      if (c === "..") {
        stack.pop();
        continue;
      }
      const last = todo.every((x) => x === "" || x === ".");
      if (last && !followFinal) return { stack, name: c };
      const real = posix.join(this.rootReal, ...stack, c);
      let st;
      try {
        st = await fsp.lstat(real);
      } catch (e) {
        if (last && (e as { code?: string }).code === "ENOENT") return { stack, name: c };
        throw e;
      }
      if (st.isSymbolicLink()) {
        if (++links > MAX_SYMLINK_FOLLOWS) throw errno("ELOOP", "too many levels of symbolic links");
        const target = await fsp.readlink(real);
        if (target.startsWith("/")) stack = [];
        todo = [...target.split("/"), ...todo];
        continue;
      }
      if (last) return { stack, name: c };
      stack.push(c);
    }
    if (stack.length === 0) return { stack, name: "" };
    const name = stack.pop()!;
    return { stack, name };
  }

  async resolve(path: string, followFinal: boolean): Promise<Target> {
    const { stack, name } = await this.walk(path, followFinal);
    const dir = await fsp.open(posix.join(this.rootReal, ...stack), constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      const real = await fsp.realpath(`/proc/self/fd/${dir.fd}`);
      if (real !== this.rootReal && !real.startsWith(this.rootReal + "/")) {
        throw new SFTPError(FX_PERMISSION_DENIED, "Permission denied: the path leads out of the root folder");
      }
    } catch (e) {
      await dir.close();
      throw e;
    }
    const fdPath = `/proc/self/fd/${dir.fd}`;
    const virtual = "/" + [...stack, name].filter((x) => x !== "").join("/");
    return {
      opPath: name === "" ? fdPath : `${fdPath}/${name}`,
      virtual,
      // /proc/self/fd/N itself is a link to the checked directory: following it is the point.
      follow: name === "",
      isRoot: name === "",
      release: () => dir.close(),
    };
  }

  async realPath(path: string): Promise<string> {
    const t = await this.resolve(path, true);
    await t.release();
    return t.virtual;
  }
}
