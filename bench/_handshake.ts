/**
 * One SSH handshake by our client (bench/transport.ts, bench/cold_kex.ts): connect, key exchange
 * with `kex`, host key accepted unchecked, resolved once the keys are in use, then aborted. Fails
 * when the connection is lost or refused first (a server's penalty, say) rather than hanging.
 */
import { reactor } from "@twisted-ts/internet";
import { succeed } from "@twisted-ts/internet/defer";
import type { Failure } from "@twisted-ts/internet/failure";
import { ClientFactory } from "@twisted-ts/internet/protocol";
import { transport } from "@twisted-ts/conch/ssh";

export interface HandshakeOptions {
  kex: string;
  cipher?: string;
  /** Called when the server's KEXINIT arrives. */
  onKexinit?: () => void;
}

export function handshakeOnce(port: number, { kex, cipher = "aes128-gcm@openssh.com", onKexinit }: HandshakeOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    class Client extends transport.SSHClientTransport {
      override supportedKeyExchanges = [kex];
      override supportedCiphers = [cipher];
      override supportedPublicKeys = ["ssh-ed25519"];
      override verifyHostKey(): unknown {
        return succeed(true);
      }
      override ssh_KEXINIT(packet: Uint8Array): void {
        onKexinit?.();
        super.ssh_KEXINIT(packet);
      }
      override connectionSecure(): void {
        resolve();
        this.transport.abortConnection();
      }
      override connectionLost(reason: Failure): void {
        super.connectionLost(reason);
        // Lost before the keys were in use (refused, reset): the handshake failed.
        reject(this.disconnectReason ?? reason.value);
      }
    }
    const f = new ClientFactory();
    f.protocol = Client;
    f.clientConnectionFailed = (_c, r) => reject(r.value);
    reactor.connectTCP("127.0.0.1", port, f);
  });
}
