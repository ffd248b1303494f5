/**
 * Twisted's `FileTransferBase`: the framing both ends share. Bytes come in through
 * `dataReceived` (any pieces), whole packets go to `packetReceived`, packets go out through
 * `sendPacket` to the transport (a session channel, or stdout for the sftp-server bin).
 */
import type { ITransport } from "@twisted-ts/internet/interfaces";
import { Protocol } from "@twisted-ts/internet/protocol";
import type { Failure } from "@twisted-ts/internet/failure";
import { SSHWriter } from "../common.js";
import { MAX_PACKET_LENGTH, SFTP_VERSION } from "./constants.js";
import { PacketFramer, buildPacket, type SFTPFramingError } from "./wire.js";

export class FileTransferBase extends Protocol<ITransport> {
  /** Protocol versions spoken (Twisted's `versions`). */
  versions: readonly number[] = [SFTP_VERSION];
  /** The peer's version, once INIT or VERSION came. */
  otherVersion: number | undefined = undefined;
  /** The framer of incoming bytes; its `maxPacketLength` is the packet limit. */
  protected readonly framer: PacketFramer;

  constructor(maxPacketLength: number = MAX_PACKET_LENGTH) {
    super();
    this.framer = new PacketFramer(
      (type, body, owned) => this.packetReceived(type, body, owned),
      (e) => this.framingError(e),
      maxPacketLength,
    );
  }

  /** The largest incoming packet accepted (the length field's value). */
  get maxPacketLength(): number {
    return this.framer.maxPacketLength;
  }
  set maxPacketLength(n: number) {
    this.framer.maxPacketLength = n;
  }

  /** Twisted's `sendPacket(kind, data)`: `data` is the body after the type byte (request id first). */
  sendPacket(kind: number, data: Uint8Array): void {
    this.transport.write(buildPacket(kind, (w) => w.raw(data), data.length));
  }

  /** Sends a packet whose body `fill` writes (no intermediate copy). */
  protected send(kind: number, fill: (w: SSHWriter) => void, sizeHint?: number): void {
    if (!this.connected) return;
    this.transport.write(buildPacket(kind, fill, sizeHint));
  }

  /**
   * Sends a packet whose body is what `fill` writes followed by `tail` (WRITE's data): the two go
   * to the transport as a sequence, so the data is never copied into the packet.
   */
  protected sendWithTail(kind: number, fill: (w: SSHWriter) => void, tail: Uint8Array): void {
    if (!this.connected) return;
    this.transport.writeSequence([buildPacket(kind, fill, 64, tail.length), tail]);
  }

  override dataReceived(data: Uint8Array): void {
    if (!this.framer.stopped) this.framer.feed(data);
  }

  /**
   * A whole packet: `type`, then its body (a view valid only during the call, unless `owned`:
   * then nothing else holds it and it may be kept as it is).
   */
  protected packetReceived(_type: number, _body: Uint8Array, _owned = false): void {}

  /** The stream cannot be framed any more (a length of 0, or over the limit): the subclass ends it. */
  protected framingError(_e: SFTPFramingError): void {
    this.transport.loseConnection();
  }

  override connectionLost(reason: Failure): void {
    super.connectionLost(reason);
  }
}
