/**
 * russh's client (Rust; russh 0.63.3 through the npm package `russh` 0.1.38, Tabby's N-API
 * bindings, client side only) for the interop tests: the part of its API they use, typed here
 * (its own .d.ts needs rxjs's types), a publickey login to our server with the host key checked,
 * and a command run on a session channel.
 */
import type { TestContext } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { OurServer } from "./_server_support.js";

/** The part of russh's API (its own .d.ts needs rxjs types we do not import) these tests use. */
export interface Subscribable<T> {
  subscribe(next: (value: T) => void): unknown;
}
export interface RusshChannel {
  readonly data$: Subscribable<Uint8Array>;
  readonly closed$: Subscribable<void>;
  requestExec(command: string): Promise<void>;
  write(data: Uint8Array): Promise<void>;
  eof(): Promise<void>;
}
export interface RusshSftpFile {
  read(n: number): Promise<Uint8Array>;
  writeAll(data: Uint8Array): Promise<void>;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}
export interface RusshSftpMetadata {
  size: number;
  type: number;
  permissions?: number;
}
export interface RusshSftp {
  createDirectory(path: string): Promise<void>;
  removeDirectory(path: string): Promise<void>;
  removeFile(path: string): Promise<void>;
  readlink(path: string): Promise<string>;
  rename(src: string, dst: string): Promise<void>;
  stat(path: string): Promise<RusshSftpMetadata>;
  readDirectory(path: string): Promise<{ name: string; metadata: RusshSftpMetadata }[]>;
  chmod(path: string, mode: number): Promise<void>;
  open(path: string, mode: number): Promise<RusshSftpFile>;
  close(): Promise<void>;
}
export interface RusshAuthenticated {
  openSessionChannel(): Promise<unknown>;
  activateChannel(ch: unknown): Promise<RusshChannel>;
  activateSFTP(ch: unknown): Promise<RusshSftp>;
  disconnect(): Promise<void>;
}
export interface RusshPublicKey {
  algorithm(): string;
  base64(): string;
}
export interface RusshClient {
  authenticateWithKeyPair(user: string, key: unknown, hash: null): Promise<RusshAuthenticated | { remainingMethods: string[] }>;
  disconnect(): Promise<void>;
}
export interface Russh {
  SshTransport: { newSocket(address: string): Promise<unknown> };
  SSHClient: {
    connect(transport: unknown, serverKey: (key: RusshPublicKey) => Promise<boolean>, config?: { preferred?: Record<string, string[]> }): Promise<RusshClient>;
  };
  KeyPair: { parse(data: string): Promise<unknown> };
  getSupportedKexAlgorithms(): string[];
  OPEN_READ: number;
  OPEN_WRITE: number;
  OPEN_CREATE: number;
  OPEN_TRUNCATE: number;
  OPEN_APPEND: number;
}

const require = createRequire(import.meta.url);
export const russh = require("russh") as Russh;

export interface Session {
  client: RusshAuthenticated;
  hostKeyAlgorithm: string;
}

/** Connects and logs in with alice's key, checking the host key against the server's own. */
export async function login(t: TestContext, server: OurServer, preferred: Record<string, string[]> = {}): Promise<Session> {
  const hostBlob = Buffer.from(server.hostKeys["ssh-ed25519"]!.public().blob()).toString("base64");
  let hostKeyAlgorithm = "";
  const transport = await russh.SshTransport.newSocket(`127.0.0.1:${server.port}`);
  const client = await russh.SSHClient.connect(
    transport,
    async (key) => {
      hostKeyAlgorithm = key.algorithm();
      return key.base64() === hostBlob;
    },
    { preferred },
  );
  const auth = await client.authenticateWithKeyPair(server.user, await russh.KeyPair.parse(readFileSync(server.keyPath, "utf8")), null);
  if (!("openSessionChannel" in auth)) assert.fail(`publickey login refused; methods left: ${auth.remainingMethods.join(",")}`);
  t.after(() => auth.disconnect());
  return { client: auth, hostKeyAlgorithm };
}

/** Runs `command` with `input` on its stdin; resolves with its stdout once the channel closes. */
export async function run(session: Session, command: string, input?: Uint8Array): Promise<Buffer> {
  const ch = await session.client.activateChannel(await session.client.openSessionChannel());
  const out: Buffer[] = [];
  const closed = new Promise<void>((resolve) => ch.closed$.subscribe(() => resolve()));
  ch.data$.subscribe((d) => out.push(Buffer.from(d)));
  await ch.requestExec(command);
  if (input !== undefined) {
    for (let at = 0; at < input.length; at += 32 * 1024) await ch.write(input.subarray(at, at + 32 * 1024));
  }
  await ch.eof();
  await closed;
  return Buffer.concat(out);
}
