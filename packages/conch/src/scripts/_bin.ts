/**
 * What every bin of this package shares: whether a module is the program being run.
 */
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * True when the module at `moduleUrl` (its `import.meta.url`) is the program node was asked to
 * run. npm runs a bin through a symlink in `node_modules/.bin`: `process.argv[1]` is the link
 * while `import.meta.url` is the file it points to, so both are compared as real paths.
 */
export function isMainModule(moduleUrl: string): boolean {
  const argv1 = process.argv[1];
  if (argv1 === undefined) return false;
  try {
    return realpathSync(fileURLToPath(moduleUrl)) === realpathSync(argv1);
  } catch {
    return false;
  }
}
