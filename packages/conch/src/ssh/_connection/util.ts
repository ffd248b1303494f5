/** Small wire and type helpers the connection service's handlers share (internal). */
import type { IConchUser } from "../../avatar.js";
import { ConchError, OPEN_CONNECT_FAILED } from "../../error.js";
import type { SSHChannel } from "../channel.js";
import { NS } from "../common.js";
import type { SSHServiceTransport } from "../service.js";

export const EMPTY = new Uint8Array(0);

/** Channel types and request names are US-ASCII on the wire (RFC 4250 §4.6.1); keep every byte. */
export function latin1(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString("latin1");
}

export function u32(...values: number[]): Uint8Array {
  const out = new Uint8Array(4 * values.length);
  const v = new DataView(out.buffer);
  values.forEach((n, i) => v.setUint32(4 * i, n >>> 0));
  return out;
}

export function isConchUser(avatar: unknown): avatar is IConchUser {
  return typeof avatar === "object" && avatar !== null && typeof (avatar as IConchUser).lookupChannel === "function";
}

export function isThenable(x: unknown): x is PromiseLike<unknown> {
  return (typeof x === "object" || typeof x === "function") && x !== null && typeof (x as PromiseLike<unknown>).then === "function";
}

/** A request result is success when truthy (Twisted's `if result:`); `[ok, data]` by its `ok`. */
export function globalOk(result: unknown): [boolean, Uint8Array] {
  if (Array.isArray(result)) return [Boolean(result[0]), result[1] instanceof Uint8Array ? result[1] : EMPTY];
  return [Boolean(result), EMPTY];
}

/** A transport that can seal a message from two parts without joining them (`SSHTransportBase`). */
interface PartsTransport extends SSHServiceTransport {
  sendPacketParts?(messageType: number, head: Uint8Array, body: Uint8Array): void;
}

/**
 * Sends `messageType || head || body`: through `sendPacketParts` where the transport has it (the
 * data goes straight into the wire buffer), otherwise as one joined payload.
 */
export function sendParts(transport: PartsTransport, messageType: number, head: Uint8Array, body: Uint8Array): void {
  if (transport.sendPacketParts !== undefined) {
    transport.sendPacketParts(messageType, head, body);
    return;
  }
  // Not zero-filled: every byte is written just below.
  const payload = Buffer.allocUnsafe(head.length + body.length);
  payload.set(head, 0);
  payload.set(body, head.length);
  transport.sendPacket(messageType, payload);
}

/**
 * The CHANNEL_OPEN_FAILURE reason and description for an error from `getChannel`: a ConchError
 * carries them (in either order: some code raises ConchError(code, text), Twisted #3657, #3071);
 * anything else is OPEN_CONNECT_FAILED "unknown failure".
 */
export function openFailureOf(e: unknown): [reason: number, description: string] {
  if (!(e instanceof ConchError)) return [OPEN_CONNECT_FAILED, "unknown failure"];
  let value: unknown = e.value;
  let code: unknown = e.data;
  if (typeof value === "number") [value, code] = [code, value];
  return [typeof code === "number" ? code : OPEN_CONNECT_FAILED, String(value)];
}

/** CHANNEL_OPEN_FAILURE's payload (RFC 4254 §5.1), with an empty language tag. */
export function openFailurePayload(senderChannel: number, reason: number, description: string): Uint8Array {
  const desc = NS(description);
  const out = new Uint8Array(8 + desc.length + 4);
  out.set(u32(senderChannel, reason));
  out.set(desc, 8);
  return out;
}

/**
 * A channel the peer opened that must do something before it is confirmed, as sshd connects a
 * `direct-tcpip` channel before it answers: `readyToConfirm()` fulfils to confirm the open, or
 * rejects (a ConchError carries the CHANNEL_OPEN_FAILURE reason) to refuse it.
 */
export interface ConfirmsWhenReady {
  readyToConfirm(): PromiseLike<unknown>;
}

/**
 * Confirms the peer's open of `channel` at once, or once its `readyToConfirm()` fulfils (`fail`
 * when it rejects); either only while `stillPending()` (the connection may be gone by then).
 */
export function whenReadyToConfirm(channel: SSHChannel, stillPending: () => boolean, confirm: () => void, fail: (e: unknown) => void): void {
  const hook = (channel as Partial<ConfirmsWhenReady>).readyToConfirm;
  if (typeof hook !== "function") {
    stillPending();
    confirm();
    return;
  }
  let ready: PromiseLike<unknown>;
  try {
    ready = hook.call(channel);
  } catch (e) {
    ready = Promise.reject(e);
  }
  ready.then(
    () => void (stillPending() && confirm()),
    (e: unknown) => void (stillPending() && fail(e)),
  );
}
