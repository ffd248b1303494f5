/**
 * The client's session channel for SFTP: it asks for the `sftp` subsystem (as Twisted's `cftp`
 * does in `channelOpen`) and then runs a {@link FileTransferClient} over itself.
 */
import { Deferred } from "@twisted-ts/internet/defer";
import { ConnectionDone } from "@twisted-ts/internet/error";
import { Failure } from "@twisted-ts/internet/failure";
import { SSHChannel, type SSHChannelOptions } from "../channel.js";
import { NS } from "../common.js";
import type { SSHConnection } from "../connection.js";
import { FileTransferClient } from "./client.js";

/** A session channel carrying the `sftp` subsystem for {@link client}. */
export class SFTPClientChannel extends SSHChannel {
  override name = "session";
  /** Fires with the client once the server's VERSION came. */
  readonly ready = new Deferred<FileTransferClient>();

  constructor(
    readonly client: FileTransferClient = new FileTransferClient(),
    options: SSHChannelOptions = {},
  ) {
    super(options);
  }

  override channelOpen(_specificData: Uint8Array): void {
    this.conn.sendRequest(this, "subsystem", NS("sftp"), true).addCallbacks(
      () => {
        this.client.makeConnection(this);
        this.client.whenReady.addCallbacks(
          () => this.ready.callback(this.client),
          (f: Failure) => void (this.ready.called || this.ready.errback(f)),
        );
      },
      (f: Failure) => {
        if (!this.ready.called) this.ready.errback(f);
        this.loseConnection();
      },
    );
  }

  override openFailed(reason: Error): void {
    if (!this.ready.called) this.ready.errback(reason);
  }

  override dataReceived(data: Uint8Array): void {
    this.client.dataReceived(data);
  }

  override eofReceived(): void {
    this.loseConnection();
  }

  override closed(): void {
    if (this.client.connected) this.client.connectionLost(new Failure(new ConnectionDone("the SFTP channel closed")));
    if (!this.ready.called) this.ready.errback(new ConnectionDone("the SFTP channel closed before the session started"));
  }
}

/**
 * Opens a session channel on `conn`, starts the `sftp` subsystem and fires with the
 * {@link FileTransferClient} once the server has answered INIT.
 */
export function openSFTPChannel(conn: SSHConnection, client: FileTransferClient = new FileTransferClient(), options: SSHChannelOptions = {}): Deferred<FileTransferClient> {
  const ch = new SFTPClientChannel(client, options);
  conn.openChannel(ch);
  return ch.ready;
}
