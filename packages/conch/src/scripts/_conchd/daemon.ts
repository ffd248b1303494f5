/**
 * One conchd process serving: load the config and host keys, listen, reload on SIGHUP, and on
 * SIGTERM stop listening and let running sessions finish within ShutdownGraceTime.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { serverFromString } from "@twisted-ts/internet/endpoints";
import type { IListeningPort } from "@twisted-ts/internet/interfaces";
import { Logger } from "@twisted-ts/internet/log";
import { reactor } from "@twisted-ts/internet/reactor";
import { type ConchdConfig, type ConfigLine, ConfigError, parseConfig, tokenize, type ParsedConfig } from "./config.js";
import { HOST_KEY_FILES, type HostKeys, defaultHostKeyDirectory, generateMissingHostKeys, loadHostKeys } from "./hostkeys.js";
import { startConchdLogging, type LogContext } from "./logging.js";
import { ConchdFactory, findPasswordMechanism } from "./server.js";

const log = new Logger("twisted-ts.conchd");

/** What the command line says, before the config file is read. */
export interface ConchdOptions {
  /** `-f FILE`; undefined for no file (every keyword at its default). */
  readonly configFile: string | undefined;
  /** `-o`, `-d`, `--workers`, … as config lines; they come first, so they win. */
  readonly overrides: readonly ConfigLine[];
  /** `-p` endpoints; when given, Port, ListenAddress and ListenEndpoint are ignored. */
  readonly listen: readonly string[];
}

/** Reads the options' config file (if any) after their overrides; throws {@link ConfigError}. */
export function loadConfig(options: ConchdOptions): ParsedConfig {
  let fileLines: ConfigLine[] = [];
  if (options.configFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(options.configFile, "utf8");
    } catch (e) {
      throw new ConfigError(options.configFile, 0, `cannot read the config file: ${(e as Error).message}`);
    }
    fileLines = tokenize(text, options.configFile);
  }
  return parseConfig([...options.overrides, ...fileLines], { hostKeyDirectory: defaultHostKeyDirectory() }, options.listen);
}

/**
 * The host keys of a config: its HostKey files, or the keys of HostKeyDirectory, the missing ones
 * generated first when `generate` (returning what was made in `generated`).
 */
export function hostKeysOf(config: ConchdConfig, generate: boolean, generated: string[] = []): HostKeys {
  if (config.hostKey.length === 0 && generate) generated.push(...generateMissingHostKeys(config.hostKeyDirectory));
  return loadHostKeys(config.hostKey, config.hostKeyDirectory, config.hostCertificate);
}

/** True when HostKeyDirectory still lacks one of the keys conchd generates. */
export function hostKeysMissing(config: ConchdConfig): boolean {
  return config.hostKey.length === 0 && HOST_KEY_FILES.some((f) => !existsSync(join(config.hostKeyDirectory, f.file)));
}

/** The serving process. */
export class ConchdDaemon {
  readonly factory = new ConchdFactory();
  private ports: IListeningPort[] = [];
  private stopLogging: () => void = () => undefined;
  private stopping = false;
  private graceTimer: NodeJS.Timeout | undefined = undefined;
  private finished: (() => void) | undefined = undefined;

  constructor(
    readonly options: ConchdOptions,
    /** Extra fields on every log line (`worker`). */
    readonly logContext: LogContext = {},
    /** Whether this process makes missing host keys (a cluster's primary already has). */
    readonly generateKeys = true,
  ) {
    if (logContext["worker"] !== undefined) this.factory.idPrefix = `w${String(logContext["worker"])}`;
  }

  /** Loads everything and starts logging; throws on a bad config or host key. */
  configure(): ConchdConfig {
    const { config, warnings } = loadConfig(this.options);
    const generated: string[] = [];
    const keys = hostKeysOf(config, this.generateKeys, generated);
    this.factory.configure(config, keys, findPasswordMechanism());
    this.stopLogging();
    this.stopLogging = startConchdLogging(process.stdout, config.logLevel, config.logFormat, this.logContext);
    for (const w of warnings) log.warn("{warning}", { warning: w });
    for (const path of generated) log.info("generated host key {path}", { path });
    for (const [type, key] of Object.entries(keys.privateKeys)) log.info("host key {type} {fingerprint}", { type, fingerprint: key.fingerprint("sha256") });
    return config;
  }

  /** Listens on every endpoint of the config; resolves when all listen. */
  async listen(config: ConchdConfig): Promise<void> {
    for (const description of config.listen) {
      let port: IListeningPort;
      try {
        port = await serverFromString(reactor, description).listen(this.factory).asPromise();
      } catch (e) {
        throw new Error(`cannot listen on ${description}: ${(e as Error).message}`);
      }
      this.ports.push(port);
      const a = port.getHost() as { host?: string; port?: number; name?: string | null };
      const address = a.port !== undefined && a.host !== undefined ? (a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`) : `unix:${a.name ?? description}`;
      log.info("listening on {address} ({endpoint})", { address, endpoint: description });
    }
  }

  /**
   * SIGHUP: reads the config and host keys again; new connections use them, running ones keep
   * theirs. A bad config is logged and the old one kept. Listening addresses are not changed.
   */
  reload(): void {
    if (this.stopping) return;
    const before = this.factory.config?.listen.join(" ");
    try {
      const config = this.configure();
      if (config.listen.join(" ") !== before) log.warn("the listening addresses changed; they take effect on restart", {});
      log.info("reloaded the configuration and host keys", {});
    } catch (e) {
      log.error("reload failed, keeping the running configuration: {error}", { error: (e as Error).message });
    }
  }

  /**
   * SIGTERM: stops listening (new connections are refused) and waits for the open ones to end,
   * for ShutdownGraceTime at most; a second call, or the end of the grace, closes them. Resolves
   * once no connection is left.
   */
  shutdown(): Promise<void> {
    if (this.stopping) {
      this.closeAll("a second signal");
      return Promise.resolve();
    }
    this.stopping = true;
    const grace = this.factory.config?.shutdownGraceTime ?? 0;
    const done = new Promise<void>((resolve) => {
      this.finished = resolve;
    });
    for (const p of this.ports) void p.stopListening();
    this.ports = [];
    log.info("shutting down: no new connections; {count} open ones get {grace}s to finish", { count: this.factory.connections.size, grace });
    this.factory.onConnectionClosed = () => this.checkDone();
    this.graceTimer = setTimeout(() => this.closeAll("the shutdown grace time"), grace * 1000);
    this.checkDone();
    return done;
  }

  private closeAll(why: string): void {
    if (this.factory.connections.size > 0) log.info("closing {count} connections after {why}", { count: this.factory.connections.size, why });
    for (const t of [...this.factory.connections]) t.loseConnection();
    // A peer that never answers our DISCONNECT is cut off after a moment.
    setTimeout(() => {
      for (const t of [...this.factory.connections]) t.transport.abortConnection?.();
      this.factory.connections.clear();
      this.checkDone();
    }, 2000).unref();
  }

  private checkDone(): void {
    if (this.factory.connections.size > 0 || this.finished === undefined) return;
    if (this.graceTimer !== undefined) clearTimeout(this.graceTimer);
    log.info("all connections closed; exiting", {});
    const f = this.finished;
    this.finished = undefined;
    f();
  }
}

/**
 * Runs one serving process until SIGTERM/SIGINT has let its connections go; exits 0 then, 1 on a
 * bad config (with the error on stderr).
 */
export async function serve(options: ConchdOptions, logContext: LogContext = {}, generateKeys = true): Promise<void> {
  const worker = logContext["worker"] !== undefined;
  const cannotServe = (e: unknown): never => {
    process.stderr.write(`conchd: ${(e as Error).message}\n`);
    process.exit(worker ? EXIT_CANNOT_SERVE : 1);
  };
  const daemon = new ConchdDaemon(options, logContext, generateKeys);
  let config: ConchdConfig;
  try {
    config = daemon.configure();
  } catch (e) {
    return cannotServe(e);
  }
  const running = reactor.run({ installSignalHandlers: false });
  try {
    await daemon.listen(config);
  } catch (e) {
    cannotServe(e);
  }
  process.on("SIGHUP", () => daemon.reload());
  const stop = (): void => {
    void daemon.shutdown().then(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  // A worker takes its orders from the primary: Ctrl-C reaches the whole process group, and the
  // primary passes it on as one SIGTERM (a second would close the sessions at once).
  process.on("SIGINT", worker ? () => undefined : stop);
  await running;
}

/** A worker's exit status when it cannot load its config or listen (sysexits' EX_CONFIG): the primary stops rather than restart it. */
export const EXIT_CANNOT_SERVE = 78;
