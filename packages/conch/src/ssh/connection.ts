/**
 * `twisted.conch.ssh.connection`: the `ssh-connection` service (RFC 4254), which multiplexes
 * channels and carries global requests over one SSH transport.
 *
 * Sans-IO: messages come in through `packetReceived` (dispatched to `ssh_<MESSAGE>` handlers) and
 * go out through `transport.sendPacket`; no sockets, and timers (keepalive) only on the transport's clock.
 *
 * Where Twisted would crash on a bad message, this module decides as the RFC says: a channel
 * number we never allocated, or a truncated message, is a protocol error (DISCONNECT); a message
 * for a channel that has already closed is ignored; channel opens past {@link MAX_OPEN_CHANNELS}
 * are refused with OPEN_RESOURCE_SHORTAGE; an exception from a channel's hook is logged and
 * closes that channel only.
 */
import { Deferred, fail, maybeDeferred, succeed } from "@twisted-ts/internet/defer";
import { ConnectionLost } from "@twisted-ts/internet/error";
import type { Failure } from "@twisted-ts/internet/failure";
import { Logger } from "@twisted-ts/internet/log";
import {
  ChannelClosedError,
  ChannelOpenError,
  ChannelRequestFailedError,
  ConchError,
  ConnectionStoppedError,
  DISCONNECT_PROTOCOL_ERROR,
  GlobalRequestFailedError,
  MalformedFieldError,
  NotPermittedError,
  OPEN_ADMINISTRATIVELY_PROHIBITED,
  OPEN_RESOURCE_SHORTAGE,
  OPEN_UNKNOWN_CHANNEL_TYPE,
  ShortReadError,
  UnknownChannelError,
} from "../error.js";
import { type AuthOptions, channelOpenRefusal, describePeer, globalRequestRefusal } from "./authopt.js";
import type { SSHChannel } from "./channel.js";
import { NS, SSHReader, concatBytes, toBytes } from "./common.js";
import { SSHService, type MessageTable } from "./service.js";
import { type Keepalive, startKeepalive } from "./_connection/keepalive.js";
import { OrderedReplies } from "./_connection/replies.js";
import { checkForwardingChannel, forwardingRequestRefusal } from "./_forwarding/policy.js";
import {
  MSG_GLOBAL_REQUEST, MSG_REQUEST_SUCCESS, MSG_REQUEST_FAILURE,
  MSG_CHANNEL_OPEN, MSG_CHANNEL_OPEN_CONFIRMATION, MSG_CHANNEL_OPEN_FAILURE,
  MSG_CHANNEL_WINDOW_ADJUST, MSG_CHANNEL_DATA, MSG_CHANNEL_EXTENDED_DATA, MSG_CHANNEL_EOF, MSG_CHANNEL_CLOSE,
  MSG_CHANNEL_REQUEST, MSG_CHANNEL_SUCCESS, MSG_CHANNEL_FAILURE,
  DEFAULT_MAX_SESSIONS, MAX_OPEN_CHANNELS, messages,
} from "./_connection/messages.js";
import { EMPTY, globalOk, isConchUser, isThenable, latin1, openFailureOf, openFailurePayload, sendParts, u32, whenReadyToConfirm } from "./_connection/util.js";
import { stopLocalForwards } from "./_forwarding/client.js";
import { forwardedTCPIPChannel } from "./_forwarding/remote.js";

export { OPEN_ADMINISTRATIVELY_PROHIBITED, OPEN_CONNECT_FAILED, OPEN_RESOURCE_SHORTAGE, OPEN_UNKNOWN_CHANNEL_TYPE } from "../error.js";
export * from "./_connection/messages.js";

/**
 * What `gotGlobalRequest` / `global_<name>` return: true (success), false (failure), or
 * `[true, data]` (success with reply data, e.g. the port of a `tcpip-forward` to port 0); or a
 * Deferred/Promise of one.
 */
export type GlobalRequestResult = boolean | number | readonly [unknown, Uint8Array] | PromiseLike<boolean | number | readonly [unknown, Uint8Array]>;

/** A client-side `channel_<type>(windowSize, maxPacket, data)` factory. */
export type ChannelFactoryMethod = (windowSize: number, maxPacket: number, data: Uint8Array) => SSHChannel | undefined;

/** Twisted's `SSHConnection`: the `ssh-connection` service. */
export class SSHConnection extends SSHService {
  override name = "ssh-connection";
  override protocolMessages: MessageTable = messages;

  /** The next local channel number. */
  localChannelID = 0;
  /** Local channel number → channel, for channels open or opening. */
  readonly channels = new Map<number, SSHChannel>();
  /** Local channel number → the peer's number for it (open channels only). */
  readonly localToRemoteChannel = new Map<number, number>();
  /** Channel → the peer's number for it (open channels only). */
  readonly channelsToRemoteChannel = new Map<SSHChannel, number>();
  /** Local channel number → Deferreds of our requests waiting for the peer's reply, oldest first. */
  readonly deferreds = new Map<number, Deferred<string>[]>();
  /** Deferreds of our global requests waiting for the peer's reply, oldest first. */
  readonly globalDeferreds: Deferred<Uint8Array>[] = [];
  /** Channels (open or opening) past which incoming opens are refused. */
  maxOpenChannels = MAX_OPEN_CHANNELS;
  /** Server side: session channels open at once past which another is refused (`MaxSessions`). */
  maxSessions = DEFAULT_MAX_SESSIONS;
  /** Server side: the open session channels that count against `maxSessions`. */
  private readonly sessionChannels = new Set<SSHChannel>();
  /** Channels the peer opened that are not confirmed yet (see `readyToConfirm`). */
  private readonly pendingOpens = new Set<SSHChannel>();
  /** True while the transport holds our output back; channels' producers stay paused meanwhile. */
  outputIsHeld = false;
  /** Keepalive seconds (ServerAliveInterval; 0 off; undefined: a server factory's clientAliveInterval, else off). */
  keepaliveInterval: number | undefined = undefined;
  /** Unanswered keepalives before the connection is dropped (`ServerAliveCountMax`, default 3). */
  keepaliveCountMax: number | undefined = undefined;
  /** The running keepalive, if any. */
  keepalive: Keepalive | undefined = undefined;

  protected readonly log = new Logger("twisted-ts.conch.ssh.connection", this);
  private readonly channelReplies = new Map<SSHChannel, OrderedReplies>();
  private readonly globalReplies = new OrderedReplies();

  override logPrefix(): string {
    return `SSHConnection on ${this.transport?.constructor.name ?? "no transport"}`;
  }

  /** The transport holds our output back (or lets it go): every channel's producer follows. */
  override outputHeld(held: boolean): void {
    this.outputIsHeld = held;
    for (const channel of this.channels.values()) channel._outputHeld(held);
  }

  /** Links the avatar (server side) to this connection, as Twisted does. */
  override serviceStarted(): void {
    const avatar = this.transport?.avatar;
    if (typeof avatar === "object" && avatar !== null) (avatar as { conn?: SSHConnection }).conn = this;
    this.keepalive = startKeepalive(this, this.keepaliveInterval, this.keepaliveCountMax);
  }

  /**
   * The transport is gone: open channels are closed (`closed()`), channels still opening get
   * `openFailed(ConnectionLost)`, pending global requests errback, and local forwarding listeners stop.
   */
  override serviceStopped(): void {
    this.keepalive?.stop();
    stopLocalForwards(this);
    for (const channel of [...this.channelsToRemoteChannel.keys()]) this.channelClosed(channel);
    const opening = [...this.channels.values()];
    this.channels.clear();
    this.pendingOpens.clear();
    for (const channel of opening) this.callHook(channel, "openFailed", () => channel.openFailed(new ConnectionLost()));
    for (const d of this.globalDeferreds.splice(0)) d.errback(new ConnectionStoppedError());
  }

  /** Decodes and dispatches; a malformed message or an unknown channel number ends the connection. */
  override packetReceived(messageNum: number, packet: Uint8Array): void {
    this.keepalive?.packetReceived();
    try {
      super.packetReceived(messageNum, packet);
    } catch (e) {
      if (e instanceof ShortReadError || e instanceof MalformedFieldError || e instanceof UnknownChannelError) {
        this.protocolError(`${this.protocolMessages[messageNum] ?? messageNum}: ${e.message}`);
        return;
      }
      throw e;
    }
  }

  /** Logs and disconnects with DISCONNECT_PROTOCOL_ERROR. */
  protected protocolError(description: string): void {
    this.log.error("protocol error: {description}", { description });
    this.transport?.sendDisconnect(DISCONNECT_PROTOCOL_ERROR, description);
  }

  // ---- incoming messages ----------------------------------------------------------------------

  /**
   * RFC 4254 §4. Payload:
   *
   *     string  request name
   *     boolean want reply
   *     ....    request-specific data
   *
   * Dispatched to `gotGlobalRequest`; replies go out in request order.
   */
  ssh_GLOBAL_REQUEST(packet: Uint8Array): void {
    const r = new SSHReader(packet);
    const requestType = latin1(r.string());
    const wantReply = r.boolean();
    const data = r.rest();
    let result: unknown;
    try {
      result = this.gotGlobalRequest(requestType, data);
    } catch (e) {
      this.log.failure("global request {requestType} failed", e, "error", { requestType });
      result = false;
    }
    if (!wantReply) return;
    const reply = this.globalReplies.reserve();
    const send = (value: unknown): void =>
      reply(() => {
        const [ok, replyData] = globalOk(value);
        this.transport?.sendPacket(ok ? MSG_REQUEST_SUCCESS : MSG_REQUEST_FAILURE, ok ? replyData : EMPTY);
      });
    if (!isThenable(result)) {
      send(result);
      return;
    }
    maybeDeferred(() => result as PromiseLike<unknown>).addCallbacks(
      (v: unknown) => send(v),
      (f: Failure) => {
        this.log.failure("global request {requestType} failed", f, "error", { requestType });
        send(false);
      },
    );
  }

  /**
   * RFC 4254 §4. Payload: request-specific data (for `tcpip-forward` to port 0, the port).
   * Fires the oldest pending global request Deferred with the payload.
   */
  ssh_REQUEST_SUCCESS(packet: Uint8Array): void {
    const d = this.globalDeferreds.shift();
    if (d === undefined) {
      this.log.warn("REQUEST_SUCCESS with no global request pending: ignored");
      return;
    }
    d.callback(packet);
  }

  /** RFC 4254 §4. No payload. Errbacks the oldest pending global request. */
  ssh_REQUEST_FAILURE(packet: Uint8Array): void {
    const d = this.globalDeferreds.shift();
    if (d === undefined) {
      this.log.warn("REQUEST_FAILURE with no global request pending: ignored");
      return;
    }
    d.errback(new GlobalRequestFailedError(packet));
  }

  /**
   * RFC 4254 §5.1. Payload:
   *
   *     string  channel type
   *     uint32  sender channel
   *     uint32  initial window size
   *     uint32  maximum packet size
   *     ....    channel type specific data
   *
   * The channel comes from `getChannel` (the avatar's `lookupChannel` on a server); we confirm
   * with our number, window and maximum packet, then call `channelOpen(data)`.
   */
  ssh_CHANNEL_OPEN(packet: Uint8Array): void {
    const r = new SSHReader(packet);
    const channelType = latin1(r.string());
    const senderChannel = r.uint32();
    const windowSize = r.uint32();
    const maxPacket = r.uint32();
    const data = r.rest();
    if (this.channels.size >= this.maxOpenChannels) {
      this.log.warn("refusing {channelType} channel: {count} channels already open", { channelType, count: this.channels.size });
      this.sendOpenFailure(senderChannel, OPEN_RESOURCE_SHORTAGE, "too many channels open");
      return;
    }
    const isSession = channelType === "session" && isConchUser(this.transport?.avatar);
    if (isSession && this.sessionChannels.size >= this.maxSessions) {
      this.log.info("refusing a session channel: {count} sessions already open (maxSessions)", { count: this.sessionChannels.size });
      this.sendOpenFailure(senderChannel, OPEN_ADMINISTRATIVELY_PROHIBITED, "too many sessions open");
      return;
    }
    let channel: SSHChannel;
    try {
      channel = this.getChannel(channelType, windowSize, maxPacket, data);
    } catch (e) {
      if (!(e instanceof NotPermittedError)) this.log.failure("channel open failed", e, "error");
      this.sendOpenFailure(senderChannel, ...openFailureOf(e));
      return;
    }
    const localChannel = this.localChannelID++;
    channel.id = localChannel;
    channel.conn = this;
    channel.remoteWindowLeft = windowSize;
    channel.remoteMaxPacket = maxPacket;
    this.channels.set(localChannel, channel);
    if (isSession) this.sessionChannels.add(channel);
    // A channel with `readyToConfirm` (direct-tcpip) is confirmed once connected, or refused.
    this.pendingOpens.add(channel);
    whenReadyToConfirm(channel, () => this.pendingOpens.delete(channel) && this.channels.get(localChannel) === channel, () => {
      this.channelsToRemoteChannel.set(channel, senderChannel);
      this.localToRemoteChannel.set(localChannel, senderChannel);
      this.transport?.sendPacket(MSG_CHANNEL_OPEN_CONFIRMATION, concatBytes(u32(senderChannel, localChannel, channel.localWindowSize, channel.localMaxPacket), channel.specificData));
      this.callHook(channel, "channelOpen", () => channel.channelOpen(data));
    }, (e) => {
      this.channels.delete(localChannel);
      this.sendOpenFailure(senderChannel, ...openFailureOf(e));
    });
  }

  private sendOpenFailure(senderChannel: number, reason: number, description: string): void {
    this.transport?.sendPacket(MSG_CHANNEL_OPEN_FAILURE, openFailurePayload(senderChannel, reason, description));
  }

  /**
   * RFC 4254 §5.1. Payload:
   *
   *     uint32  recipient channel
   *     uint32  sender channel
   *     uint32  initial window size
   *     uint32  maximum packet size
   *     ....    channel type specific data
   *
   * Our open was accepted: record the peer's number, window and packet size; `channelOpen`.
   */
  ssh_CHANNEL_OPEN_CONFIRMATION(packet: Uint8Array): void {
    const r = new SSHReader(packet);
    const localChannel = r.uint32();
    const remoteChannel = r.uint32();
    const windowSize = r.uint32();
    const maxPacket = r.uint32();
    const specificData = r.rest();
    const channel = this.openingChannel(localChannel, "CHANNEL_OPEN_CONFIRMATION");
    channel.conn = this;
    this.localToRemoteChannel.set(localChannel, remoteChannel);
    this.channelsToRemoteChannel.set(channel, remoteChannel);
    channel.remoteMaxPacket = maxPacket;
    if (channel.bufferedAmount > 0) {
      // Data written before the open completed goes out now.
      channel.remoteWindowLeft = 0;
      channel.addWindowBytes(windowSize);
    } else channel.remoteWindowLeft = windowSize;
    if (channel.closing) {
      // loseConnection() was called while opening: close as soon as we may.
      channel.loseConnection();
      return;
    }
    this.callHook(channel, "channelOpen", () => channel.channelOpen(specificData));
  }

  /**
   * RFC 4254 §5.1. Payload:
   *
   *     uint32  recipient channel
   *     uint32  reason code
   *     string  description (ISO-10646 UTF-8)
   *     string  language tag
   *
   * `openFailed(reason)` with `reason.value` the description and `reason.data` the code.
   */
  ssh_CHANNEL_OPEN_FAILURE(packet: Uint8Array): void {
    const r = new SSHReader(packet);
    const localChannel = r.uint32();
    const reasonCode = r.uint32();
    // Some peers omit the description or the language tag; be lenient here.
    const description = r.remaining >= 4 ? Buffer.from(r.string()).toString("utf8") : "";
    const channel = this.openingChannel(localChannel, "CHANNEL_OPEN_FAILURE");
    this.channels.delete(localChannel);
    channel.conn = this;
    this.callHook(channel, "openFailed", () => channel.openFailed(new ChannelOpenError(description, reasonCode)));
  }

  /**
   * RFC 4254 §5.2. Payload:
   *
   *     uint32  recipient channel
   *     uint32  bytes to add
   */
  ssh_CHANNEL_WINDOW_ADJUST(packet: Uint8Array): void {
    const r = new SSHReader(packet);
    const channel = this.openChannel_(r.uint32(), "CHANNEL_WINDOW_ADJUST");
    const bytesToAdd = r.uint32();
    if (channel === undefined) return;
    this.callHook(channel, "addWindowBytes", () => channel.addWindowBytes(bytesToAdd));
  }

  /**
   * RFC 4254 §5.2. Payload:
   *
   *     uint32  recipient channel
   *     string  data
   *
   * More than the window or the maximum packet closes the channel. The window is given back
   * (WINDOW_ADJUST) once less than half is left — before `dataReceived`, unless paused.
   */
  ssh_CHANNEL_DATA(packet: Uint8Array): void {
    const r = new SSHReader(packet);
    const channel = this.openChannel_(r.uint32(), "CHANNEL_DATA");
    const data = r.string();
    if (channel === undefined || !this.acceptData(channel, data.length, "data")) return;
    this.callHook(channel, "dataReceived", () => channel.dataReceived(data));
  }

  /**
   * RFC 4254 §5.2. Payload:
   *
   *     uint32  recipient channel
   *     uint32  data_type_code (1 = stderr)
   *     string  data
   */
  ssh_CHANNEL_EXTENDED_DATA(packet: Uint8Array): void {
    const r = new SSHReader(packet);
    const channel = this.openChannel_(r.uint32(), "CHANNEL_EXTENDED_DATA");
    const typeCode = r.uint32();
    const data = r.string();
    if (channel === undefined || !this.acceptData(channel, data.length, "extended data")) return;
    this.callHook(channel, "extReceived", () => channel.extReceived(typeCode, data));
  }

  private acceptData(channel: SSHChannel, length: number, what: string): boolean {
    if (channel.remoteClosed) {
      this.log.warn("{what} after CHANNEL_CLOSE on channel {id}: ignored", { what, id: channel.id });
      return false;
    }
    if (length > channel.localWindowLeft || length > channel.localMaxPacket) {
      this.log.error("too much {what} on channel {id}: {length} bytes, window {window}, max packet {maxPacket}", {
        what,
        id: channel.id,
        length,
        window: channel.localWindowLeft,
        maxPacket: channel.localMaxPacket,
      });
      this.sendClose(channel);
      return false;
    }
    channel.localWindowLeft -= length;
    if (!channel.paused && channel.localWindowLeft < Math.floor(channel.localWindowSize / 2)) {
      this.adjustWindow(channel, channel.localWindowSize - channel.localWindowLeft);
    }
    return true;
  }

  /**
   * RFC 4254 §5.3. Payload:
   *
   *     uint32  recipient channel
   */
  ssh_CHANNEL_EOF(packet: Uint8Array): void {
    const r = new SSHReader(packet);
    const channel = this.openChannel_(r.uint32(), "CHANNEL_EOF");
    if (channel === undefined) return;
    this.callHook(channel, "eofReceived", () => channel.eofReceived());
  }

  /**
   * RFC 4254 §5.3. Payload:
   *
   *     uint32  recipient channel
   *
   * `closeReceived()` (by default: `loseConnection`, which sends our CLOSE), then the channel is
   * remotely closed, and when both sides are, `channelClosed` (pending requests errback, then
   * `closed()`).
   */
  ssh_CHANNEL_CLOSE(packet: Uint8Array): void {
    const r = new SSHReader(packet);
    const channel = this.openChannel_(r.uint32(), "CHANNEL_CLOSE");
    if (channel === undefined || channel.remoteClosed) return;
    this.callHook(channel, "closeReceived", () => channel.closeReceived());
    channel.remoteClosed = true;
    if (channel.localClosed) this.channelClosed(channel);
    else if (channel.closing) channel.loseConnection();
  }

  /**
   * RFC 4254 §5.4. Payload:
   *
   *     uint32  recipient channel
   *     string  request type
   *     boolean want reply
   *     ....    type-specific data
   *
   * Dispatched to the channel's `requestReceived`; with want-reply, SUCCESS for a true (or
   * Deferred true) result and FAILURE otherwise, in request order.
   */
  ssh_CHANNEL_REQUEST(packet: Uint8Array): void {
    const r = new SSHReader(packet);
    const channel = this.openChannel_(r.uint32(), "CHANNEL_REQUEST");
    const requestType = latin1(r.string());
    const wantReply = r.boolean();
    const data = r.rest();
    if (channel === undefined) return;
    let result: unknown;
    try {
      result = channel.requestReceived(requestType, data);
    } catch (e) {
      this.log.failure("channel request {requestType} failed", e, "error", { requestType });
      result = false;
    }
    const done = (): void => this.callHook(channel, "requestDone", () => channel.requestDone(requestType));
    if (!wantReply) {
      if (isThenable(result)) {
        maybeDeferred(() => result as PromiseLike<unknown>).addCallbacks(done, (f: Failure) => {
          this.log.failure("channel request {requestType} failed", f, "error", { requestType });
          done();
        });
      } else done();
      return;
    }
    let replies = this.channelReplies.get(channel);
    if (replies === undefined) this.channelReplies.set(channel, (replies = new OrderedReplies()));
    const reply = replies.reserve();
    const send = (ok: boolean): void =>
      reply(() => {
        const remote = this.channelsToRemoteChannel.get(channel);
        if (remote !== undefined && !channel.localClosed) {
          this.transport?.sendPacket(ok ? MSG_CHANNEL_SUCCESS : MSG_CHANNEL_FAILURE, u32(remote));
        }
        done();
      });
    if (!isThenable(result)) {
      send(Boolean(result));
      return;
    }
    maybeDeferred(() => result as PromiseLike<unknown>).addCallbacks(
      (v: unknown) => send(Boolean(v)),
      (f: Failure) => {
        this.log.failure("channel request {requestType} failed", f, "error", { requestType });
        send(false);
      },
    );
  }

  /**
   * RFC 4254 §5.4. Payload:
   *
   *     uint32  recipient channel
   *
   * Fires the channel's oldest pending request Deferred with "" (Twisted's empty str).
   */
  ssh_CHANNEL_SUCCESS(packet: Uint8Array): void {
    const r = new SSHReader(packet);
    const channel = this.openChannel_(r.uint32(), "CHANNEL_SUCCESS");
    if (channel === undefined) return;
    const d = this.deferreds.get(channel.id!)?.shift();
    if (d === undefined) this.log.warn("CHANNEL_SUCCESS with no request pending on channel {id}: ignored", { id: channel.id });
    else d.callback("");
  }

  /**
   * RFC 4254 §5.4. Payload:
   *
   *     uint32  recipient channel
   *
   * Errbacks the channel's oldest pending request with `ConchError("channel request failed")`.
   */
  ssh_CHANNEL_FAILURE(packet: Uint8Array): void {
    const r = new SSHReader(packet);
    const channel = this.openChannel_(r.uint32(), "CHANNEL_FAILURE");
    if (channel === undefined) return;
    const d = this.deferreds.get(channel.id!)?.shift();
    if (d === undefined) this.log.warn("CHANNEL_FAILURE with no request pending on channel {id}: ignored", { id: channel.id });
    else d.errback(new ChannelRequestFailedError());
  }

  /**
   * The open channel with local number `id`; undefined (message ignored) when that channel has
   * already closed; an UnknownChannelError (→ protocol error) when we never opened it or it is
   * still opening.
   */
  private openChannel_(id: number, what: string): SSHChannel | undefined {
    const channel = this.channels.get(id);
    if (channel !== undefined && this.channelsToRemoteChannel.has(channel)) return channel;
    if (channel === undefined && id < this.localChannelID) {
      this.log.info("{what} for closed channel {id}: ignored", { what, id });
      return undefined;
    }
    throw new UnknownChannelError(id, channel === undefined ? what : `${what} before the channel was confirmed`);
  }

  /** A channel we asked to open and the peer has not answered yet. */
  private openingChannel(id: number, what: string): SSHChannel {
    const channel = this.channels.get(id);
    if (channel !== undefined && !this.channelsToRemoteChannel.has(channel) && !this.pendingOpens.has(channel)) return channel;
    throw new UnknownChannelError(id, channel === undefined ? what : `${what} for a channel already open`);
  }

  /** Runs a channel hook; an exception is logged and closes that channel, not the connection. */
  private callHook(channel: SSHChannel, hook: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.log.failure("{hook} of channel {id} raised; closing the channel", e, "error", { hook, id: channel.id });
      if (this.channelsToRemoteChannel.has(channel) && !channel.localClosed) {
        try {
          channel.abortConnection();
        } catch (e2) {
          this.log.failure("closing channel {id} failed", e2, "error", { id: channel.id });
          this.sendClose(channel);
        }
      }
    }
  }

  // ---- methods for users of the connection ----------------------------------------------------

  /**
   * Sends a global request (RFC 4254 §4). With `wantReply`, the Deferred fires with the reply's
   * payload or fails with `GlobalRequestFailedError` (a ConchError whose `data` is the payload);
   * without, it fires at once with empty bytes.
   */
  sendGlobalRequest(request: string, data: Uint8Array | string = EMPTY, wantReply: boolean | number = false): Deferred<Uint8Array> {
    const name = NS(request);
    const body = toBytes(data);
    const payload = new Uint8Array(name.length + 1 + body.length);
    payload.set(name);
    payload[name.length] = wantReply ? 1 : 0;
    payload.set(body, name.length + 1);
    this.requireTransport().sendPacket(MSG_GLOBAL_REQUEST, payload);
    if (!wantReply) return succeed(EMPTY);
    const d = new Deferred<Uint8Array>();
    this.globalDeferreds.push(d);
    return d;
  }

  /**
   * Asks the peer to open `channel` (RFC 4254 §5.1); `extra` is the type-specific data.
   * `channelOpen` or `openFailed` follows.
   */
  openChannel(channel: SSHChannel, extra: Uint8Array = EMPTY): void {
    const id = this.localChannelID;
    this.log.info("opening channel {id} with {localWindowSize} {localMaxPacket}", {
      id,
      localWindowSize: channel.localWindowSize,
      localMaxPacket: channel.localMaxPacket,
    });
    const name = NS(channel.name);
    const payload = new Uint8Array(name.length + 12 + extra.length);
    payload.set(name);
    payload.set(u32(id, channel.localWindowSize, channel.localMaxPacket), name.length);
    payload.set(extra, name.length + 12);
    this.requireTransport().sendPacket(MSG_CHANNEL_OPEN, payload);
    channel.id = id;
    channel.conn = this;
    this.channels.set(id, channel);
    this.localChannelID++;
  }

  /**
   * Sends a channel request (RFC 4254 §5.4). Always a Deferred: with `wantReply` it fires with ""
   * on SUCCESS and fails with `ConchError("channel request failed")` on FAILURE or
   * `ConchError("Channel closed.")` if the channel closes first; without, it fires at once.
   * On a channel we already closed (or never opened) it is a failed Deferred.
   */
  sendRequest(channel: SSHChannel, requestType: string, data: Uint8Array | string, wantReply: boolean | number = false): Deferred<string> {
    if (channel.localClosed) return fail(new ChannelClosedError(`Channel closed: cannot send ${requestType} request`));
    const remote = this.channelsToRemoteChannel.get(channel);
    if (remote === undefined) return fail(new ConchError(`channel ${channel.id ?? "?"} is not open: cannot send ${requestType} request`));
    this.log.debug("sending request {requestType}", { requestType });
    const name = NS(requestType);
    const body = toBytes(data);
    const payload = new Uint8Array(4 + name.length + 1 + body.length);
    new DataView(payload.buffer).setUint32(0, remote);
    payload.set(name, 4);
    payload[4 + name.length] = wantReply ? 1 : 0;
    payload.set(body, 5 + name.length);
    this.requireTransport().sendPacket(MSG_CHANNEL_REQUEST, payload);
    if (!wantReply) return succeed("");
    const d = new Deferred<string>();
    const id = channel.id!;
    let list = this.deferreds.get(id);
    if (list === undefined) this.deferreds.set(id, (list = []));
    list.push(d);
    return d;
  }

  /**
   * Gives the peer `bytesToAdd` more window (RFC 4254 §5.2). Channels do this themselves; a no-op
   * once we closed the channel.
   */
  adjustWindow(channel: SSHChannel, bytesToAdd: number): void {
    if (channel.localClosed) return;
    const remote = this.channelsToRemoteChannel.get(channel);
    if (remote === undefined) return;
    this.requireTransport().sendPacket(MSG_CHANNEL_WINDOW_ADJUST, u32(remote, bytesToAdd));
    // No per-call debug log here: it runs for every other data packet received, and Logger has
    // no cheap level check, so its fields object would be built for nothing.
    channel.localWindowLeft += bytesToAdd;
  }

  /**
   * Sends one CHANNEL_DATA of `prefix || data` (`prefix` sealed with the head: no copy of `data`). Use
   * `channel.write`, which keeps to the peer's window and packet size; this does not. No-op once closed.
   */
  sendData(channel: SSHChannel, data: Uint8Array, prefix: Uint8Array = EMPTY): void {
    if (channel.localClosed) return;
    const remote = this.channelsToRemoteChannel.get(channel);
    if (remote === undefined) return;
    const head = Buffer.allocUnsafe(8 + prefix.length);
    head.writeUInt32BE(remote >>> 0, 0);
    head.writeUInt32BE(prefix.length + data.length, 4);
    head.set(prefix, 8);
    sendParts(this.requireTransport(), MSG_CHANNEL_DATA, head, data);
  }

  /** Sends one CHANNEL_EXTENDED_DATA message (use `channel.writeExtended`). No-op once closed. */
  sendExtendedData(channel: SSHChannel, dataType: number, data: Uint8Array): void {
    if (channel.localClosed) return;
    const remote = this.channelsToRemoteChannel.get(channel);
    if (remote === undefined) return;
    const head = Buffer.allocUnsafe(12);
    head.writeUInt32BE(remote >>> 0, 0);
    head.writeUInt32BE(dataType >>> 0, 4);
    head.writeUInt32BE(data.length, 8);
    sendParts(this.requireTransport(), MSG_CHANNEL_EXTENDED_DATA, head, data);
  }

  /**
   * Tells the peer we will send no more data on `channel` (CHANNEL_EOF). While written data is
   * still queued for the peer's window, the EOF waits behind it (data after EOF would break RFC
   * 4254 §5.3). No-op once closed.
   */
  sendEOF(channel: SSHChannel): void {
    if (channel.localClosed) return;
    const remote = this.channelsToRemoteChannel.get(channel);
    if (remote === undefined) return;
    if (channel.bufferedAmount > 0) {
      channel.eofPending = true;
      return;
    }
    this.log.debug("sending eof");
    this.requireTransport().sendPacket(MSG_CHANNEL_EOF, u32(remote));
  }

  /**
   * Sends CHANNEL_CLOSE (once); when the peer has closed too, `channelClosed`. On a channel still
   * opening, the close goes out as soon as the open is confirmed.
   */
  sendClose(channel: SSHChannel): void {
    if (channel.localClosed) return;
    const remote = this.channelsToRemoteChannel.get(channel);
    if (remote === undefined) {
      channel.closing = true;
      return;
    }
    this.log.info("sending close {id}", { id: channel.id });
    this.requireTransport().sendPacket(MSG_CHANNEL_CLOSE, u32(remote));
    channel.localClosed = true;
    if (channel.remoteClosed) this.channelClosed(channel);
  }

  // ---- methods to override --------------------------------------------------------------------

  /**
   * The peer asks for a channel. On a server (the transport has an avatar) the avatar's
   * `lookupChannel` decides; on a client, `channel_<type>(windowSize, maxPacket, data)` with
   * non-alphanumerics in the type as `_`, else a `forwarded-tcpip` matching a `remoteForward`.
   * Unknown types throw `ConchError("unknown channel", OPEN_UNKNOWN_CHANNEL_TYPE)`.
   */
  getChannel(channelType: string, windowSize: number, maxPacket: number, data: Uint8Array): SSHChannel {
    this.log.debug("got channel {channelType} request", { channelType });
    const avatar = this.transport?.avatar;
    let channel: SSHChannel | undefined | null;
    if (isConchUser(avatar)) {
      const refusal = this.refusal(`${channelType} channel`, (o) => channelOpenRefusal(o, channelType, data));
      if (refusal !== undefined) throw new NotPermittedError(refusal);
      checkForwardingChannel(this, avatar, channelType, data);
      channel = avatar.lookupChannel(channelType, windowSize, maxPacket, data);
      // Named by its type when its class is not (forwarded channels are counted by name).
      if (channel !== undefined && channel !== null && channel.name === "") channel.name = channelType;
    } else {
      const f = (this as unknown as Record<string, unknown>)[`channel_${channelType.replace(/[^A-Za-z0-9]/g, "_")}`];
      channel = typeof f === "function" ? (f as ChannelFactoryMethod).call(this, windowSize, maxPacket, data) : forwardedTCPIPChannel(this, channelType, windowSize, maxPacket, data);
    }
    if (channel === undefined || channel === null) throw new ConchError("unknown channel", OPEN_UNKNOWN_CHANNEL_TYPE);
    channel.conn = this;
    return channel;
  }

  /**
   * The peer made a global request. On a server the avatar's `gotGlobalRequest` decides; on a
   * client, `global_<type>(data)` with `-` as `_`. Unknown requests are refused (false).
   */
  gotGlobalRequest(requestType: string, data: Uint8Array): GlobalRequestResult {
    this.log.debug("got global {requestType} request", { requestType });
    const avatar = this.transport?.avatar;
    if (isConchUser(avatar)) {
      if (this.refusal(`${requestType} request`, (o) => globalRequestRefusal(o, requestType, data)) !== undefined) return false;
      if (forwardingRequestRefusal(this, avatar, requestType, data) !== undefined) return false;
      return avatar.gotGlobalRequest(requestType, data);
    }
    const f = (this as unknown as Record<string, unknown>)[`global_${requestType.replaceAll("-", "_")}`];
    if (typeof f !== "function") return false;
    return (f as (data: Uint8Array) => GlobalRequestResult).call(this, data);
  }

  /** Why the login's options refuse `what` (logged at info with the peer), or undefined. */
  private refusal(what: string, check: (options: AuthOptions) => string | undefined): string | undefined {
    const options = this.transport?.authOptions;
    const reason = options === undefined ? undefined : check(options);
    if (reason !== undefined) this.log.info("refused {what} from {peer}: {reason}", { what, peer: describePeer(() => this.requireTransport().getPeer()), reason });
    return reason;
  }

  /**
   * Both sides have closed `channel`: forget it, errback its pending requests with
   * `ConchError("Channel closed.")`, then call `channel.closed()`. Subclasses that override this
   * must call it.
   */
  channelClosed(channel: SSHChannel): void {
    if (!this.channelsToRemoteChannel.has(channel)) return;
    channel.localClosed = channel.remoteClosed = true;
    const id = channel.id!;
    this.localToRemoteChannel.delete(id);
    this.channels.delete(id);
    this.sessionChannels.delete(channel);
    this.channelsToRemoteChannel.delete(channel);
    this.channelReplies.delete(channel);
    const pending = this.deferreds.get(id) ?? [];
    this.deferreds.delete(id);
    for (const d of pending) d.errback(new ChannelClosedError());
    channel._connectionDone();
    this.callHook(channel, "closed", () => channel.closed());
  }
}
