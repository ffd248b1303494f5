/**
 * Transports for the filetransfer tests: a plain ITransport that cannot be paused (what a
 * protocol gets when its transport has no `pauseProducing`), which the in-memory pipe builds on.
 */
import type { IAddress, ITransport } from "@twisted-ts/internet/interfaces";
import { StringTransport } from "@twisted-ts/internet/testing";

/** Keeps what is written in `out`; has no pauseProducing. */
export class UnpausableTransport implements ITransport {
  readonly out: Uint8Array[] = [];
  disconnecting = false;
  write(data: Uint8Array | string): void {
    this.out.push(Buffer.from(data));
  }
  writeSequence(seq: Iterable<Uint8Array | string>): void {
    for (const d of seq) this.write(d);
  }
  loseConnection(): void {
    this.disconnecting = true;
  }
  abortConnection(): void {
    this.loseConnection();
  }
  getPeer(): IAddress {
    return new StringTransport().getPeer();
  }
  getHost(): IAddress {
    return new StringTransport().getHost();
  }
  registerProducer(): void {}
  unregisterProducer(): void {}
}
