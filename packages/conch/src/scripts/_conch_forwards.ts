/**
 * Where conch's forwards and agent forwarding are set up (internal): `-L`, `-R`, `-D` and `-A`
 * arrive parsed in {@link ForwardOptions}. The client forwarding functions (`ssh/forwarding`'s
 * localForward / remoteForward / dynamicForward) are being written beside this command (issue 13);
 * `-A` needs client/agent's `acceptAgentForwarding(connection)` here and
 * `requestAgentForwarding(channel)` on conch's session channel. Until they are wired, asking for
 * any of them fails with {@link ForwardingNotSupported} before the session starts.
 */
import { fail, succeed, type Deferred } from "@twisted-ts/internet/defer";
import { ConchError } from "../error.js";
import type { SSHConnection } from "../ssh/connection.js";
import type { ConchOptions } from "./_conch_args.js";

/** What of conch's options concerns forwarding. */
export type ForwardOptions = Pick<ConchOptions, "localForwards" | "remoteForwards" | "dynamicForwards" | "forwardAgent">;

/** A forward or agent forwarding was asked for and this build cannot do it yet. */
export class ForwardingNotSupported extends ConchError {
  override readonly code = "ERR_CONCH_FORWARDING_NOT_SUPPORTED";
  constructor(what: string) {
    super(`${what}: not supported yet`);
    this.name = "ForwardingNotSupported";
  }
}

/** True when the options ask for any forward or for agent forwarding. */
export function wantsForwards(o: ForwardOptions): boolean {
  return o.localForwards.length + o.remoteForwards.length + o.dynamicForwards.length > 0 || o.forwardAgent;
}

/**
 * Sets up every forward of `options` on `connection` (and agent forwarding for `-A`); fires when
 * they listen. For now any forward fails with {@link ForwardingNotSupported}.
 */
export function setUpForwards(_connection: SSHConnection, options: ForwardOptions): Deferred<void> {
  const asked = [
    ...(options.localForwards.length > 0 ? ["local forwarding (-L)"] : []),
    ...(options.remoteForwards.length > 0 ? ["remote forwarding (-R)"] : []),
    ...(options.dynamicForwards.length > 0 ? ["dynamic forwarding (-D)"] : []),
    ...(options.forwardAgent ? ["agent forwarding (-A)"] : []),
  ];
  if (asked.length === 0) return succeed(undefined);
  return fail(new ForwardingNotSupported(asked.join(", ")));
}
