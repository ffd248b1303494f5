/** What conchd's config tests share: a config parsed as `conchd -f` with `argv` before it. */
import { parseArgs, parseConfig, tokenize, type ConchdConfig } from "@twisted-ts/conch/scripts/conchd";

export const CTX = { hostKeyDirectory: "/var/lib/conchd-test" };

/** `text` as a config file, with `argv`'s command-line settings overriding it. */
export function parse(text: string, argv: string[] = []): ConchdConfig {
  const cmd = parseArgs(argv);
  return parseConfig([...cmd.overrides, ...tokenize(text, "conchd.conf")], CTX, cmd.listen).config;
}
