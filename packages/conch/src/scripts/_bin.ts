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

/**
 * Walks a bin's arguments: `each(arg, value)` for every word, where `value()` takes the next word
 * as that option's value (throwing "<arg> needs a value" when there is none).
 */
export function walkArgs(argv: readonly string[], each: (arg: string, value: () => string) => void): void {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    each(a, () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    });
  }
}
