/**
 * An agent client and server wired together synchronously: what one writes reaches the other's
 * dataReceived at once, so Deferreds fire inside the call that caused them (usable inside an SSH
 * pump); `loseConnection` on either side ends both.
 */
import { ConnectionDone } from "@twisted-ts/internet/error";
import { Failure } from "@twisted-ts/internet/failure";
import type { IProtocol } from "@twisted-ts/internet/interfaces";
import { StringTransport } from "@twisted-ts/internet/testing";
import { Clock } from "@twisted-ts/internet/task";
import type { Deferred } from "@twisted-ts/internet/defer";
import { agent } from "@twisted-ts/conch/ssh";

export class WiredTransport extends StringTransport {
  peer: IProtocol | undefined = undefined;
  self: IProtocol | undefined = undefined;
  other: WiredTransport | undefined = undefined;
  lost = false;

  override write(data: Uint8Array | string): void {
    super.write(data);
    if (!this.lost) this.peer?.dataReceived(typeof data === "string" ? Buffer.from(data, "latin1") : data.slice());
  }

  override loseConnection(): void {
    super.loseConnection();
    if (this.lost) return;
    this.lost = true;
    if (this.other !== undefined) this.other.lost = true;
    this.self?.connectionLost(new Failure(new ConnectionDone()));
    this.peer?.connectionLost(new Failure(new ConnectionDone()));
  }
}

export interface WiredAgent {
  client: agent.SSHAgentClient;
  server: agent.SSHAgentServer;
  factory: agent.SSHAgentFactory;
  clock: Clock;
  clientTransport: WiredTransport;
  serverTransport: WiredTransport;
}

/** A client connected to a fresh agent whose keyring runs on a Clock. */
export function wiredAgent(options: { confirm?: agent.AgentConfirm; client?: agent.SSHAgentClient } = {}): WiredAgent {
  const clock = new Clock();
  const factory = new agent.SSHAgentFactory({ clock, ...(options.confirm !== undefined ? { confirm: options.confirm } : {}) });
  const server = factory.buildProtocol({ type: "UNIX", family: "UNIX", name: "agent", host: "" } as never)!;
  const client = options.client ?? new agent.SSHAgentClient();
  const clientTransport = new WiredTransport();
  const serverTransport = new WiredTransport();
  clientTransport.peer = server;
  clientTransport.self = client;
  clientTransport.other = serverTransport;
  serverTransport.peer = client;
  serverTransport.self = server;
  serverTransport.other = clientTransport;
  server.makeConnection(serverTransport);
  client.makeConnection(clientTransport);
  return { client, server, factory, clock, clientTransport, serverTransport };
}

/** The result a Deferred has already fired with; throws its error if it failed, fails if it has not fired. */
export function resultOf<T>(d: Deferred<T>): T {
  let done = false;
  let value: T | undefined;
  let error: unknown;
  d.addCallbacks(
    (v: T) => {
      done = true;
      value = v;
      return v;
    },
    (f: Failure) => {
      done = true;
      error = f.value;
      return undefined as T;
    },
  );
  if (!done) throw new Error("the Deferred has not fired");
  if (error !== undefined) throw error;
  return value as T;
}

/** The error a Deferred has already failed with. */
export function failureOf(d: Deferred<unknown>): Error {
  try {
    resultOf(d);
  } catch (e) {
    return e as Error;
  }
  throw new Error("the Deferred did not fail");
}
