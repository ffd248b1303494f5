#!/usr/bin/env node
/**
 * `conchd`: an SSH server for real accounts, as `twistd conch` with sshd's settings. Serves the
 * Unix realm (processes run as the user, SFTP), public keys from authorized_keys, and passwords
 * through PAM when Debian's pamtester is installed. docs/server.md is the manual.
 *
 *     conchd [-f config] [-p endpoint]... [-i interface] [-d dir] [-o Keyword=value]...
 *            [--workers N] [--log-format text|json] [--log-level LEVEL] [-t | -T]
 *
 * Options on the command line win over the config file (as sshd's `-o`).
 */
import cluster from "node:cluster";
import { isMainModule, walkArgs } from "./_bin.js";
import { ConfigError, type ConfigLine, dumpConfig } from "./_conchd/config.js";
import { splitWords } from "./_cftp_commands.js";
import { hostKeysMissing, hostKeysOf, loadConfig, serve, type ConchdOptions } from "./_conchd/daemon.js";
import { checkersFor, findPasswordMechanism, realmFor } from "./_conchd/server.js";
import { runPrimary, workerSlot } from "./_conchd/workers.js";

export { ConfigError, dumpConfig, listenEndpoints, parseConfig, tokenize, type ConchdConfig, type ConfigLine, type ParsedConfig } from "./_conchd/config.js";
export { KEYWORDS, expandTokens, parseSize, parseTime } from "./_conchd/keywords.js";
export { AuthorizedKeysFiles, PamtesterChecker, RootLoginChecker, unsafePath } from "./_conchd/auth.js";
export { defaultHostKeyDirectory, generateMissingHostKeys, loadHostKeys, HOST_KEY_FILES } from "./_conchd/hostkeys.js";
export { connectionOf, lineFields, minimumLevel } from "./_conchd/logging.js";
export { ConchdFactory, ConchdServerTransport, readCAKeys } from "./_conchd/server.js";
export { forwardingPolicyOf, parseExemptList, parseMaxStartups, parseNetBlockSize, parsePenalties, parsePerSourceMaxStartups, showPenalties, startupLimitsOf } from "./_conchd/policy.js";
export { restartDelay } from "./_conchd/workers.js";
export { loadConfig, type ConchdOptions } from "./_conchd/daemon.js";

const USAGE = `usage: conchd [-f config] [-p endpoint]... [-i interface] [-d dir] [-o Keyword=value]...
              [--workers N] [--log-format text|json] [--log-level LEVEL] [-t | -T]

  -f, --config FILE     sshd_config-style file (docs/server.md lists every keyword)
  -p, --port ENDPOINT   listen here (repeatable): a port number, tcp:2222:interface=127.0.0.1,
                        haproxy:tcp:2223, unix:/run/conchd.sock; replaces Port/ListenAddress
  -i, --interface ADDR  the address bare port numbers listen on
  -d, --data DIR        host key folder (HostKeyDirectory); missing keys are generated there
  --moduli DIR          read DIR/moduli for group exchange (ModuliFile)
  -o Keyword=value      any config keyword; wins over the file
  --workers N           N processes share the ports (Workers)
  --log-format FORMAT   text or json (LogFormat)
  --log-level LEVEL     QUIET, FATAL, ERROR, INFO, VERBOSE or DEBUG (LogLevel)
  -t                    check the config and host keys, then exit
  -T                    check, then print the effective config and exit
  -h, --help            this text
`;

/** What the command line asks for. */
export interface ConchdCommandLine extends ConchdOptions {
  readonly mode: "serve" | "test" | "dump" | "help";
}

/**
 * Reads conchd's arguments. Options that are settings become config lines that come before the
 * file's (so they win); `-p` replaces Port, ListenAddress and ListenEndpoint, `-i` applies to bare port numbers.
 */
export function parseArgs(argv: readonly string[]): ConchdCommandLine {
  let mode: ConchdCommandLine["mode"] = "serve";
  let configFile: string | undefined;
  let iface: string | undefined;
  const ports: string[] = [];
  const lines: Array<[string, string]> = [];
  walkArgs(argv, (arg, value) => {
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const [name, inline] = eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
    const v = (): string => inline ?? value();
    switch (name) {
      case "-f":
      case "--config":
        configFile = v();
        break;
      case "-p":
      case "--port":
        ports.push(v());
        break;
      case "-i":
      case "--interface":
        iface = v();
        break;
      case "-d":
      case "--data":
        lines.push(["HostKeyDirectory", v()]);
        break;
      case "--moduli":
        lines.push(["ModuliFile", `${v()}/moduli`]);
        break;
      case "-o": {
        const o = v();
        const m = /^([A-Za-z0-9]+)\s*[= ]\s*(.*)$/.exec(o);
        if (m === null) throw new Error(`-o ${JSON.stringify(o)}: expected Keyword=value`);
        lines.push([m[1]!, m[2]!]);
        break;
      }
      case "--workers":
        lines.push(["Workers", v()]);
        break;
      case "--log-format":
        lines.push(["LogFormat", v()]);
        break;
      case "--log-level":
        lines.push(["LogLevel", v()]);
        break;
      case "-t":
        mode = "test";
        break;
      case "-T":
        mode = "dump";
        break;
      case "-h":
      case "--help":
        mode = "help";
        break;
      default:
        throw new Error(`unknown option ${JSON.stringify(arg)}\n${USAGE}`);
    }
  });
  if (iface !== undefined && ports.length === 0) lines.push(["ListenAddress", iface.includes(":") ? `[${iface}]` : iface]);
  const listen = ports.map((p) =>
    /^\d+$/.test(p) ? (iface === undefined ? `tcp:${p}` : iface.includes(":") ? `tcp6:${p}:interface=${iface.replace(/:/g, "\\:")}` : `tcp:${p}:interface=${iface}`) : p,
  );
  const overrides: ConfigLine[] = lines.map(([keyword, value]) => {
    const args = keyword === "HostKeyDirectory" || keyword === "ModuliFile" ? [value] : splitWords(value);
    if (args.length === 0) throw new Error(`${keyword} needs a value`);
    return { source: "command line", line: 0, keyword, args, override: true };
  });
  return { mode, configFile, overrides, listen };
}

/** `-t`/`-T`: everything serving would check, without listening or generating keys. */
function check(options: ConchdOptions, dump: boolean): void {
  const { config, warnings } = loadConfig(options);
  for (const w of warnings) process.stderr.write(`conchd: ${w}\n`);
  checkersFor(config, findPasswordMechanism(), (m) => process.stderr.write(`conchd: ${m}\n`));
  realmFor(config);
  if (hostKeysMissing(config)) process.stderr.write(`conchd: host keys missing in ${config.hostKeyDirectory} are generated on the first start\n`);
  else hostKeysOf(config, false);
  if (dump) process.stdout.write(dumpConfig(config));
}

/** The program. */
export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  let cmd: ConchdCommandLine;
  try {
    cmd = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`conchd: ${(e as Error).message}\n`);
    process.exit(2);
  }
  if (cmd.mode === "help") {
    process.stdout.write(USAGE);
    return;
  }
  const slot = workerSlot();
  if (slot !== undefined) {
    await serve(cmd, { worker: slot }, false);
    return;
  }
  try {
    if (cmd.mode !== "serve") {
      check(cmd, cmd.mode === "dump");
      return;
    }
    const { config } = loadConfig(cmd);
    if (config.workers > 1 && cluster.isPrimary) {
      // Checked and keys made once here, so the workers do not race to write them.
      hostKeysOf(config, true);
      check(cmd, false);
      runPrimary(config);
      return;
    }
  } catch (e) {
    process.stderr.write(`conchd: ${e instanceof ConfigError ? e.message : (e as Error).message}\n`);
    process.exit(1);
  }
  await serve(cmd);
}

if (isMainModule(import.meta.url)) await main();
