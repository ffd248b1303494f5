/**
 * The Unix realm's UNIX-socket forwarding (OpenSSH PROTOCOL §2.4), server side:
 * `direct-streamlocal@openssh.com` channels connect to a socket path as the user, and
 * `streamlocal-forward@openssh.com` listens on one as the user, opening a
 * `forwarded-streamlocal@openssh.com` channel back per connection. The user's rights come from
 * {@link UserSockets}; the policy (AllowStreamLocalForwarding, authorized_keys options) was checked
 * by the connection before these run.
 */
import { Deferred } from "@twisted-ts/internet/defer";
import { Logger } from "@twisted-ts/internet/log";
import type { SSHChannel, SSHChannelOptions } from "../ssh/channel.js";
import type { GlobalRequestResult } from "../ssh/connection.js";
import {
  SSHListenStreamForwardingFactory,
  connectStreamLocalChannel,
  packOpen_forwarded_streamlocal,
  unpackGlobal_streamlocal_forward,
  unpackOpen_direct_streamlocal,
} from "../ssh/_forwarding/streamlocal.js";
import type { UnixConchUser } from "../unix.js";

const log = new Logger("twisted-ts.conch.unix.streamlocal");

/** The `direct-streamlocal@openssh.com` entry of the avatar's `channelLookup`. */
export function openStreamLocalForUser(
  avatar: UnixConchUser,
  options: Required<Pick<SSHChannelOptions, "remoteWindow" | "remoteMaxPacket" | "data" | "avatar">>,
): SSHChannel {
  const path = unpackOpen_direct_streamlocal(options.data);
  return connectStreamLocalChannel(
    path,
    (build) => {
      const d = avatar.userSockets().then((sockets) => sockets.connect(path, build));
      return Deferred.fromPromise(d);
    },
    { remoteWindow: options.remoteWindow, remoteMaxPacket: options.remoteMaxPacket, avatar: options.avatar },
  );
}

/** `streamlocal-forward@openssh.com` for `avatar`. */
export function streamLocalForward(avatar: UnixConchUser, data: Uint8Array): GlobalRequestResult {
  const conn = avatar.conn;
  if (conn === undefined) return false;
  const path = unpackGlobal_streamlocal_forward(data);
  if (avatar.streamListeners.has(path)) {
    log.info("streamlocal-forward {path} refused: already forwarded", { path });
    return false;
  }
  const policy = avatar.getForwardingPolicy();
  const factory = new SSHListenStreamForwardingFactory(conn, "forwarded-streamlocal@openssh.com", () => packOpen_forwarded_streamlocal(path));
  return avatar
    .userSockets()
    .then((sockets) => sockets.listen(path, factory, policy.streamLocalBindUnlink, policy.streamLocalBindMask))
    .then(
      (listener) => {
        avatar.streamListeners.set(path, listener);
        log.info("streamlocal-forward: listening on {path} for {user}", { path, user: avatar.pwd.name });
        return true;
      },
      (e: unknown) => {
        log.warn("streamlocal-forward {path} for {user} failed: {reason}", { path, user: avatar.pwd.name, reason: e instanceof Error ? e.message : String(e) });
        return false;
      },
    );
}

/** `cancel-streamlocal-forward@openssh.com` for `avatar`: stops listening and removes the socket file. */
export function cancelStreamLocalForward(avatar: UnixConchUser, data: Uint8Array): GlobalRequestResult {
  const path = unpackGlobal_streamlocal_forward(data);
  const listener = avatar.streamListeners.get(path);
  if (listener === undefined) return false;
  avatar.streamListeners.delete(path);
  listener.stop();
  return true;
}
