#!/usr/bin/env node
/**
 * `cftp`, Twisted Conch's SFTP client:
 *
 *     cftp [-P port] [-i key] [-b batchfile] [-B buffersize] [-R requests] [-o option=value]
 *          user@host[:path]
 *
 * Host keys are checked against `~/.ssh/known_hosts` (`-o UserKnownHostsFile=…`,
 * `-o StrictHostKeyChecking=yes|accept-new|ask`); the agent's keys come first (`SSH_AUTH_SOCK`,
 * `-o IdentityAgent=path|none`), then the user's keys (`-i` or `~/.ssh/id_*`), then password and
 * keyboard-interactive on a terminal (the default client, `client/default`).
 * With `-b` it runs the batch file (`-` for stdin) as OpenSSH's `sftp -b` does: each command is
 * echoed, a failing one ends the run with status 1 unless it starts with `-`. Without it, an
 * interactive prompt (readline, with history). {@link main} takes its arguments and an IO, so
 * tests run it in process.
 */
import { readFileSync } from "node:fs";
import { homedir, userInfo } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Writable, type Readable } from "node:stream";
import { TCP4ClientEndpoint, UNIXClientEndpoint } from "@twisted-ts/internet/endpoints";
import type { Failure } from "@twisted-ts/internet/failure";
import { reactor } from "@twisted-ts/internet/reactor";
import { isMainModule, walkArgs } from "./_bin.js";
import { CftpCommands, type Output } from "./_cftp_commands.js";
import { defaultIdentities, terminalUI } from "../client/default.js";
import { connect as directConnect, type ConnectOptions } from "../client/direct.js";
import type { HostKeyPolicy } from "../client/knownhosts.js";
import { openSFTPChannel } from "../ssh/_filetransfer/channel.js";
import type { FileTransferClient } from "../ssh/_filetransfer/client.js";

export { splitWords, CftpCommands } from "./_cftp_commands.js";

/** Where cftp reads and writes. */
export interface IO extends Output {
  stdin: Readable;
}

export interface CftpOptions {
  port: number;
  user: string;
  host: string;
  path: string | undefined;
  identities: string[];
  batch: string | undefined;
  chunkSize: number | undefined;
  requests: number | undefined;
  knownHosts: string;
  policy: HostKeyPolicy;
  /** The agent's socket (`SSH_AUTH_SOCK`, `-o IdentityAgent=…`); undefined for none. */
  identityAgent: string | undefined;
}

const USAGE = "usage: cftp [-P port] [-i key] [-b batchfile] [-B buffersize] [-R requests] [-o option=value] [user@]host[:path]\n";

/** Parses cftp's command line (throws with a message on a bad one). */
export function parseArgs(argv: readonly string[]): CftpOptions {
  const home = process.env["HOME"] ?? homedir();
  const o: CftpOptions = {
    port: 22,
    user: userInfo().username,
    host: "",
    path: undefined,
    identities: [],
    batch: undefined,
    chunkSize: undefined,
    requests: undefined,
    knownHosts: join(home, ".ssh", "known_hosts"),
    policy: "ask",
    identityAgent: process.env["SSH_AUTH_SOCK"] || undefined,
  };
  let target: string | undefined;
  walkArgs(argv, (a, value) => {
    const int = (v: string): number => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${a} needs a positive whole number, got ${v}`);
      return n;
    };
    if (a === "-P" || a === "-p") o.port = int(value());
    else if (a === "-i") o.identities.push(value());
    else if (a === "-b") o.batch = value();
    else if (a === "-B") o.chunkSize = int(value());
    else if (a === "-R") o.requests = int(value());
    else if (a === "-o") {
      const [k, v] = value().split("=", 2) as [string, string | undefined];
      if (k.toLowerCase() === "userknownhostsfile" && v) o.knownHosts = v;
      else if (k.toLowerCase() === "stricthostkeychecking" && v) o.policy = v === "yes" ? "strict" : v === "accept-new" ? "accept-new" : "ask";
      else if (k.toLowerCase() === "identityagent" && v) o.identityAgent = v.toLowerCase() === "none" ? undefined : v === "SSH_AUTH_SOCK" ? process.env["SSH_AUTH_SOCK"] || undefined : v;
      else throw new Error(`unsupported option ${k}`);
    } else if (a.startsWith("-")) throw new Error(`unknown option ${a}`);
    else if (target === undefined) target = a;
    else throw new Error(`unexpected argument ${a}`);
  });
  if (target === undefined) throw new Error("no host given");
  const at = target.lastIndexOf("@");
  if (at >= 0) o.user = target.slice(0, at);
  const hostPath = target.slice(at + 1);
  const colon = hostPath.indexOf(":");
  o.host = colon >= 0 ? hostPath.slice(0, colon) : hostPath;
  if (colon >= 0 && colon < hostPath.length - 1) o.path = hostPath.slice(colon + 1);
  if (o.identities.length === 0) o.identities = defaultIdentities(home);
  return o;
}

/**
 * Connects and logs in with the default client (the agent's keys, then the user's own, then
 * password and keyboard-interactive on a terminal), then starts the sftp subsystem.
 */
export function connect(o: CftpOptions): Promise<{ sftp: FileTransferClient; close: () => void }> {
  const ui = terminalUI();
  const options: ConnectOptions = {
    user: o.user,
    hostname: o.host,
    port: o.port,
    knownHosts: o.knownHosts,
    policy: o.policy,
    identities: o.identities,
    ...(ui !== undefined ? { ui } : {}),
    // The agent's keys are offered first; an agent that cannot be reached is skipped.
    ...(o.identityAgent !== undefined ? { agentEndpoint: new UNIXClientEndpoint(reactor, o.identityAgent) } : {}),
  };
  return directConnect(new TCP4ClientEndpoint(reactor, o.host, o.port), options)
    .addCallback((conn) =>
      openSFTPChannel(conn).addCallbacks(
        (sftp) => ({ sftp, close: (): void => conn.transport?.loseConnection() }),
        (f: Failure): never => {
          conn.transport?.loseConnection();
          throw f.value;
        },
      ),
    )
    .asPromise();
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Runs batch lines as `sftp -b` does; returns the exit status. */
async function runBatch(c: CftpCommands, lines: string[], io: IO): Promise<number> {
  for (const raw of lines) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const tolerant = line.startsWith("-");
    const cmd = tolerant ? line.slice(1) : line;
    io.stdout(`cftp> ${line}\n`);
    try {
      if (!(await c.run(cmd))) return 0;
    } catch (e) {
      io.stderr(`${message(e)}\n`);
      if (!tolerant) return 1;
    }
  }
  return 0;
}

/** The interactive prompt: one command a line, until EOF or `exit`. */
async function runInteractive(c: CftpCommands, io: IO): Promise<number> {
  const output = new Writable({
    write(chunk: Buffer, _encoding, cb) {
      io.stdout(chunk.toString("utf8"));
      cb();
    },
  });
  const rl = createInterface({ input: io.stdin, output, terminal: io.isTTY, historySize: 1000, prompt: "cftp> " });
  rl.prompt();
  for await (const line of rl) {
    try {
      if (!(await c.run(line))) break;
    } catch (e) {
      io.stderr(`${message(e)}\n`);
    }
    rl.prompt();
  }
  rl.close();
  return 0;
}

async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** The whole program; returns the exit status. */
export async function main(argv: readonly string[], io: IO): Promise<number> {
  let o: CftpOptions;
  try {
    if (argv.includes("-h") || argv.includes("--help")) {
      io.stdout(USAGE);
      return 0;
    }
    o = parseArgs(argv);
  } catch (e) {
    io.stderr(`cftp: ${message(e)}\n${USAGE}`);
    return 2;
  }
  let session: { sftp: FileTransferClient; close: () => void };
  try {
    session = await connect(o);
  } catch (e) {
    io.stderr(`cftp: ${message(e)}\n`);
    return 255;
  }
  try {
    const c = new CftpCommands(session.sftp, io);
    if (o.chunkSize !== undefined) c.transfer.chunkSize = o.chunkSize;
    if (o.requests !== undefined) c.transfer.requests = o.requests;
    await c.init(o.path);
    if (o.batch === undefined) return await runInteractive(c, io);
    const text = o.batch === "-" ? await readAll(io.stdin) : readFileSync(o.batch, "utf8");
    return await runBatch(c, text.split("\n"), io);
  } catch (e) {
    io.stderr(`cftp: ${message(e)}\n`);
    return 1;
  } finally {
    session.close();
  }
}

if (isMainModule(import.meta.url)) {
  const io: IO = {
    stdin: process.stdin,
    stdout: (t) => void process.stdout.write(t),
    stderr: (t) => void process.stderr.write(t),
    isTTY: process.stdout.isTTY === true,
  };
  main(process.argv.slice(2), io).then(
    (code) => process.stdout.write("", () => process.exit(code)),
    (e: unknown) => {
      process.stderr.write(`cftp: ${(e as Error).stack ?? String(e)}\n`);
      process.exit(2);
    },
  );
}
