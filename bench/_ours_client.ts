/**
 * Our SSH client as the benchmarks drive it (bench/_ssh_client.ts, bench/_load_client.ts): one
 * connection logged in by key, and session channels that count what they receive.
 */
import { Deferred, succeed } from "@twisted-ts/internet/defer";
import type { Failure } from "@twisted-ts/internet/failure";
import { ClientFactory } from "@twisted-ts/internet/protocol";
import { reactor } from "@twisted-ts/internet/reactor";
import { common, connection, keys, session, transport, userauth } from "@twisted-ts/conch/ssh";

/** Where and how {@link oursConnect} logs in. */
export interface ConnectOptions {
  port: number;
  user: string;
  /** The private key file's text and the public key line. */
  privateKey: string;
  publicLine: string;
  kex: string;
  /** Cipher and MAC to insist on; undefined keeps the client's defaults. */
  cipher?: string;
  mac?: string;
  /** Local address to connect from (default: the system's choice). */
  bindHost?: string;
}

/** A session channel that reports each chunk of data it receives. */
export class BenchChannel extends session.SSHSessionClientChannel {
  readonly opened = new Deferred<BenchChannel>();
  onData: (n: number) => void = () => undefined;
  override channelOpen(): void {
    this.opened.callback(this);
  }
  override openFailed(reason: Error): void {
    this.opened.errback(reason);
  }
  override dataReceived(data: Uint8Array): void {
    this.onData(data.length);
  }
}

/** Connects to 127.0.0.1:port and logs in by key; resolves once ssh-connection has started. */
export function oursConnect(o: ConnectOptions): Promise<{ conn: connection.SSHConnection; close: () => void }> {
  return new Promise((resolve, reject) => {
    class Conn extends connection.SSHConnection {
      override serviceStarted(): void {
        super.serviceStarted();
        resolve({ conn: this, close: () => (this.transport as transport.SSHClientTransport).loseConnection() });
      }
    }
    class Auth extends userauth.SSHUserAuthClient {
      override preferredOrder = ["publickey"];
      private offered = false;
      override getPublicKey() {
        if (this.offered) return undefined;
        this.offered = true;
        return keys.getPublicKeyString({ data: o.publicLine });
      }
      override getPrivateKey() {
        return succeed(keys.getPrivateKeyObject({ data: o.privateKey }));
      }
      override getPassword() {
        return undefined;
      }
    }
    class Transport extends transport.SSHClientTransport {
      override supportedKeyExchanges = [o.kex];
      constructor() {
        super();
        if (o.cipher !== undefined) this.supportedCiphers = [o.cipher];
        if (o.mac !== undefined) this.supportedMACs = [o.mac];
      }
      override verifyHostKey() {
        return succeed(true);
      }
      override connectionSecure(): void {
        const auth = new Auth(o.user, new Conn());
        auth.whenDone().addErrback((f: Failure) => reject(f.value as Error));
        this.requestService(auth);
      }
      override connectionLost(reason: Failure): void {
        super.connectionLost(reason);
        reject(reason.value as Error);
      }
    }
    const f = new ClientFactory();
    f.protocol = Transport;
    f.clientConnectionFailed = (_c, r) => reject(r.value as Error);
    reactor.connectTCP("127.0.0.1", o.port, f, 30, o.bindHost === undefined ? null : { host: o.bindHost, port: 0 });
  });
}

/** Opens a session channel and sends `exec command`; resolves once the channel is open. */
export async function oursOpen(conn: connection.SSHConnection, command: string, window = 0, maxPacket = 0): Promise<BenchChannel> {
  const ch = new BenchChannel({ localWindow: window, localMaxPacket: maxPacket });
  conn.openChannel(ch);
  await ch.opened.asPromise();
  void conn.sendRequest(ch, "exec", common.NS(command), false);
  return ch;
}
