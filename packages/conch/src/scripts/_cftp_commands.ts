/**
 * The commands of `cftp` (Twisted's `StdioClient`), over a connected FileTransferClient: each
 * takes its argument words and writes what it shows; a failure throws and the caller reports it.
 */
import { promises as fsp, statSync } from "node:fs";
import { posix, resolve as resolveLocal } from "node:path";
import type { FileTransferClient } from "../ssh/_filetransfer/client.js";
import type { TransferOptions } from "../ssh/_filetransfer/transfer.js";
import { NS, SSHReader } from "../ssh/common.js";

/** Where cftp writes. */
export interface Output {
  stdout(text: string): void;
  stderr(text: string): void;
  /** True when stdout is a terminal (a progress bar is drawn). */
  isTTY: boolean;
}

/** Words of a command line: spaces separate, double or single quotes group, `\` escapes. */
export function splitWords(line: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quote: string | undefined;
  let any = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else if (c === "\\" && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      any = true;
    } else if (c === "\\" && i + 1 < line.length) {
      cur += line[++i];
      any = true;
    } else if (c === " " || c === "\t") {
      if (any || cur !== "") out.push(cur);
      cur = "";
      any = false;
    } else cur += c;
  }
  if (quote !== undefined) throw new Error("unterminated quote");
  if (any || cur !== "") out.push(cur);
  return out;
}

function human(n: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)}${units[i]}`;
}

/** The session state and the commands. */
export class CftpCommands {
  /** The remote working directory. */
  cwd = "/";
  /** The local working directory. */
  lcwd = process.cwd();
  /** Settings for get/put (`-B` chunk size, `-R` requests). */
  transfer: TransferOptions = {};

  constructor(
    readonly sftp: FileTransferClient,
    readonly out: Output,
    /** The clock for rates and ETAs (milliseconds). */
    readonly now: () => number = () => Date.now(),
  ) {}

  /** Starts in `path` (or the server's start directory). */
  async init(path?: string): Promise<void> {
    this.cwd = await this.sftp.realPath(path ?? ".");
  }

  private remote(p: string | undefined): string {
    return p === undefined ? this.cwd : posix.resolve(this.cwd, p);
  }

  private local(p: string): string {
    return resolveLocal(this.lcwd, p);
  }

  /** Runs one command line; returns false for `exit`. */
  async run(line: string): Promise<boolean> {
    const words = splitWords(line.trim());
    const [cmd, ...args] = words;
    if (cmd === undefined || cmd.startsWith("#")) return true;
    const f = (this as unknown as Record<string, unknown>)[`cmd_${cmd.replace(/^!/, "shell_")}`];
    if (cmd === "exit" || cmd === "quit" || cmd === "bye") return false;
    if (typeof f !== "function") throw new Error(`unknown command: ${cmd} (try help)`);
    await (f as (args: string[]) => Promise<void>).call(this, args);
    return true;
  }

  async cmd_help(): Promise<void> {
    this.out.stdout(
      [
        "cd path                  change the remote directory",
        "chmod mode path          change a remote file's permissions",
        "df [path]                show the remote filesystem's space",
        "get [-r] remote [local]  download (-r: a whole directory)",
        "reget remote [local]     resume a download",
        "help                     this text",
        "lcd path                 change the local directory",
        "ln -s target link        make a remote symbolic link",
        "lpwd                     show the local directory",
        "ls [-l] [path]           list a remote directory",
        "mkdir path               make a remote directory",
        "put [-r] local [remote]  upload (-r: a whole directory)",
        "reput local [remote]     resume an upload",
        "pwd                      show the remote directory",
        "rename old new           rename a remote file",
        "rm path                  remove a remote file",
        "rmdir path               remove a remote directory",
        "exit, quit, bye          end the session",
        "",
      ].join("\n"),
    );
  }

  async cmd_pwd(): Promise<void> {
    this.out.stdout(`Remote working directory: ${this.cwd}\n`);
  }

  async cmd_lpwd(): Promise<void> {
    this.out.stdout(`Local working directory: ${this.lcwd}\n`);
  }

  async cmd_cd(args: string[]): Promise<void> {
    const target = await this.sftp.realPath(this.remote(args[0] ?? "."));
    const attrs = await this.sftp.getAttrs(target, true);
    if (((attrs.permissions ?? 0) & 0o170000) !== 0o040000) throw new Error(`${target} is not a directory`);
    this.cwd = target;
  }

  async cmd_lcd(args: string[]): Promise<void> {
    const target = this.local(args[0] ?? process.env["HOME"] ?? "/");
    if (!statSync(target).isDirectory()) throw new Error(`${target} is not a directory`);
    this.lcwd = target;
  }

  async cmd_ls(args: string[]): Promise<void> {
    const long = args.includes("-l");
    const path = this.remote(args.find((a) => !a.startsWith("-")));
    const entries = (await (await this.sftp.openDirectory(path)).readAll()).filter(([n]) => !n.startsWith("."));
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [name, longname] of entries) this.out.stdout(`${long ? longname : name}\n`);
  }

  async cmd_mkdir(args: string[]): Promise<void> {
    await this.sftp.makeDirectory(this.remote(this.need(args, 1, "mkdir path")[0]), {});
  }

  async cmd_rmdir(args: string[]): Promise<void> {
    await this.sftp.removeDirectory(this.remote(this.need(args, 1, "rmdir path")[0]));
  }

  async cmd_rm(args: string[]): Promise<void> {
    await this.sftp.removeFile(this.remote(this.need(args, 1, "rm path")[0]));
  }

  async cmd_rename(args: string[]): Promise<void> {
    const [a, b] = this.need(args, 2, "rename old new");
    await this.sftp.renameFile(this.remote(a), this.remote(b));
  }

  async cmd_ln(args: string[]): Promise<void> {
    const words = args.filter((a) => a !== "-s");
    const [target, link] = this.need(words, 2, "ln -s target link");
    await this.sftp.makeLink(this.remote(link), target!);
  }

  async cmd_chmod(args: string[]): Promise<void> {
    const [mode, path] = this.need(args, 2, "chmod mode path");
    if (!/^[0-7]{1,4}$/.test(mode!)) throw new Error(`bad mode: ${mode}`);
    await this.sftp.setAttrs(this.remote(path), { permissions: parseInt(mode!, 8) });
  }

  async cmd_df(args: string[]): Promise<void> {
    if (!this.sftp.hasExtension("statvfs@openssh.com")) throw new Error("the server does not support statvfs@openssh.com");
    const w = new SSHReader(await this.sftp.extendedRequest("statvfs@openssh.com", NS(this.remote(args[0]))));
    const [, frsize, blocks, bfree, bavail] = [w.uint64(), w.uint64(), w.uint64(), w.uint64(), w.uint64()];
    const k = (n: bigint): string => String((n * frsize) / 1024n);
    this.out.stdout(`${"Size".padStart(12)} ${"Used".padStart(12)} ${"Avail".padStart(12)} ${"(root)".padStart(12)}\n`);
    this.out.stdout(`${k(blocks).padStart(11)}K ${k(blocks - bfree).padStart(11)}K ${k(bavail).padStart(11)}K ${k(bfree).padStart(11)}K\n`);
  }

  async cmd_get(args: string[], resume = false): Promise<void> {
    const recursive = args.includes("-r") || args.includes("-R");
    const words = args.filter((a) => a !== "-r" && a !== "-R");
    const [src, dst] = this.need(words, 1, "get remote [local]");
    const remote = this.remote(src);
    const local = this.local(dst ?? posix.basename(remote));
    if (recursive) {
      const r = await this.sftp.getRecursive(remote, local, this.transfer);
      this.out.stdout(`Fetched ${r.files} files (${human(r.bytes)}) into ${local}\n`);
      return;
    }
    this.out.stdout(`Fetching ${remote} to ${local}\n`);
    await this.sftp.get(remote, local, this.options(resume, posix.basename(remote)));
    this.endProgress();
  }

  cmd_reget(args: string[]): Promise<void> {
    return this.cmd_get(args, true);
  }

  async cmd_put(args: string[], resume = false): Promise<void> {
    const recursive = args.includes("-r") || args.includes("-R");
    const words = args.filter((a) => a !== "-r" && a !== "-R");
    const [src, dst] = this.need(words, 1, "put local [remote]");
    const local = this.local(src!);
    const remote = this.remote(dst ?? posix.basename(local));
    if (recursive) {
      const r = await this.sftp.putRecursive(local, remote, this.transfer);
      this.out.stdout(`Uploaded ${r.files} files (${human(r.bytes)}) to ${remote}\n`);
      return;
    }
    await fsp.access(local);
    this.out.stdout(`Uploading ${local} to ${remote}\n`);
    await this.sftp.put(local, remote, this.options(resume, posix.basename(local)));
    this.endProgress();
  }

  cmd_reput(args: string[]): Promise<void> {
    return this.cmd_put(args, true);
  }

  private need(args: string[], n: number, usage: string): string[] {
    if (args.length < n) throw new Error(`usage: ${usage}`);
    return args;
  }

  private drawn = false;

  private options(resume: boolean, name: string): TransferOptions {
    const progress = this.progress(name);
    return { ...this.transfer, resume, ...(progress !== undefined ? { progress } : {}) };
  }

  /** A progress bar (name, percent, bytes, rate, ETA) when stdout is a terminal; nothing otherwise. */
  private progress(name: string): ((done: number, total: number | undefined) => void) | undefined {
    if (!this.out.isTTY) return undefined;
    const start = this.now();
    let last = 0;
    return (done, total) => {
      const t = this.now();
      if (t - last < 100 && done !== total) return;
      last = t;
      this.drawn = true;
      const secs = Math.max((t - start) / 1000, 0.001);
      const rate = done / secs;
      const pct = total ? Math.floor((done * 100) / total) : 0;
      const eta = total && rate > 0 ? Math.round((total - done) / rate) : 0;
      const etaText = `${String(Math.floor(eta / 60)).padStart(2, "0")}:${String(eta % 60).padStart(2, "0")}`;
      this.out.stdout(`\r${name.slice(0, 30).padEnd(30)} ${String(pct).padStart(3)}% ${human(done).padStart(8)} ${human(rate).padStart(8)}/s ${etaText} ETA`);
    };
  }

  private endProgress(): void {
    if (this.drawn) this.out.stdout("\n");
    this.drawn = false;
  }
}

