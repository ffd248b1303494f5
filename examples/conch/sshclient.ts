/**
 * "Writing a client with Twisted.Conch", ported class for class: ClientTransport (checks the
 * server's MD5 fingerprint), ClientUserAuth (public key only), ClientConnection (opens one
 * channel) and CatChannel (runs `cat`, sends a line, reads it back).
 *
 *     node examples/dist/conch/sshclient.js HOST PORT USER KEYFILE FINGERPRINT
 *
 * FINGERPRINT is the server host key's MD5 fingerprint as `ssh-keygen -l -E md5` prints it,
 * without the "MD5:" prefix (e.g. `b1:94:6a:c9:24:92:d2:34:7c:62:35:b4:d2:61:11:84`).
 */
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { fail, succeed, type Deferred } from "@twisted-ts/internet/defer";
import type { Failure } from "@twisted-ts/internet/failure";
import { ClientFactory } from "@twisted-ts/internet/protocol";
import { reactor } from "@twisted-ts/internet/reactor";
import { error } from "@twisted-ts/conch";
import { channel, common, connection, keys, transport, userauth } from "@twisted-ts/conch/ssh";

/** What the client needs to know; the howto hard-codes these. */
export interface HowtoOptions {
  user: string;
  /** The private key (OpenSSH or PEM text); its public half is derived from it. */
  privateKey: string;
  /** The host key's MD5 fingerprint, colon-separated hex. */
  fingerprint: string;
  /** Called with what cat sent back (the default prints the howto's line and stops the reactor). */
  onResult?: (catData: string) => void;
  /** Called when the connection ends without a result (the default prints it and stops the reactor). */
  onFailure?: (reason: Error) => void;
}

/** Builds the howto's four classes around `options` and returns the ClientFactory. */
export function howtoFactory(options: HowtoOptions): ClientFactory {
  const publicKey = keys.Key.fromString(options.privateKey).public().toString("openssh");
  const privateKey = options.privateKey;
  let finished = false;
  const stop = (): void => {
    if (reactor.running) reactor.stop();
  };
  const defaultFailure = (err: Error): void => {
    console.error(`connection failed: ${err.message}`);
    process.exitCode = 1;
    stop();
  };
  const onResult = (catData: string): void => {
    finished = true;
    if (options.onResult !== undefined) options.onResult(catData);
    else {
      console.log('We got this from "cat":', catData);
      stop();
    }
  };

  class ClientTransport extends transport.SSHClientTransport {
    override verifyHostKey(_pubKey: Uint8Array, fingerprint: string): Deferred<number> {
      if (fingerprint !== options.fingerprint) return fail(new error.ConchError("bad key"));
      return succeed(1);
    }

    override connectionSecure(): void {
      this.requestService(new ClientUserAuth(options.user, new ClientConnection()));
    }

    /** Not in the howto (whose reactor never stops): report a failed connection and stop. */
    override connectionLost(reason: Failure): void {
      super.connectionLost(reason);
      if (!finished) {
        finished = true;
        (options.onFailure ?? defaultFailure)(reason.value);
      }
    }
  }

  class ClientUserAuth extends userauth.SSHUserAuthClient {
    override getPassword(_prompt?: string): undefined {
      return undefined;
      // this says we won't do password authentication
    }

    override getPublicKey(): Uint8Array {
      return keys.getPublicKeyString({ data: publicKey });
    }

    override getPrivateKey(): Deferred<keys.Key> {
      return succeed(keys.getPrivateKeyObject({ data: privateKey }));
    }
  }

  class ClientConnection extends connection.SSHConnection {
    override serviceStarted(): void {
      this.openChannel(new CatChannel({ conn: this }));
    }
  }

  class CatChannel extends channel.SSHChannel {
    override name = "session";
    catData = "";

    override channelOpen(_data: Uint8Array): void {
      const d = this.conn.sendRequest(this, "exec", common.NS("cat"), true);
      d.addCallback(() => this._cbSendRequest());
      this.catData = "";
    }

    _cbSendRequest(): void {
      this.write('This data will be echoed back to us by "cat."\r\n');
      this.conn.sendEOF(this);
      this.loseConnection();
    }

    override dataReceived(data: Uint8Array): void {
      this.catData += new TextDecoder().decode(data);
    }

    override closed(): void {
      onResult(this.catData);
    }
  }

  const factory = new ClientFactory();
  factory.protocol = ClientTransport;
  return factory;
}

/** `sshclient HOST PORT USER KEYFILE FINGERPRINT`: connect, run cat, print what came back. */
export async function main(argv: readonly string[]): Promise<void> {
  const [host, port, user, keyFile, fingerprint] = argv;
  if (host === undefined || port === undefined || user === undefined || keyFile === undefined || fingerprint === undefined) {
    console.error("usage: sshclient HOST PORT USER KEYFILE MD5-FINGERPRINT");
    process.exitCode = 2;
    return;
  }
  const factory = howtoFactory({ user, privateKey: readFileSync(keyFile, "utf8"), fingerprint });
  reactor.connectTCP(host, Number(port), factory);
  await reactor.run();
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(process.argv.slice(2));
}
