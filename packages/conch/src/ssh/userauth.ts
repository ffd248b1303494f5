/**
 * `twisted.conch.ssh.userauth`: the `ssh-userauth` service (RFC 4252), client and server, with
 * the publickey (RFC 4252 §7, RFC 8332 SHA-2 RSA signatures), password (§8) and
 * keyboard-interactive (RFC 4256) methods.
 *
 * The server checks credentials through a cred `Portal` (the factory's `portal`): the methods it
 * offers follow the credentials interfaces the portal has checkers for.
 */
export {
  DEFAULT_MAX_AUTH_TRIES,
  IConchUserToken,
  MAX_INFO_PROMPTS,
  MAX_QUEUED_REQUESTS,
  MAX_USERNAME_LENGTH,
  METHOD_MESSAGES,
  MSG_USERAUTH_BANNER,
  MSG_USERAUTH_FAILURE,
  MSG_USERAUTH_INFO_REQUEST,
  MSG_USERAUTH_INFO_RESPONSE,
  MSG_USERAUTH_PASSWD_CHANGEREQ,
  MSG_USERAUTH_PK_OK,
  MSG_USERAUTH_REQUEST,
  MSG_USERAUTH_SUCCESS,
  messages,
  methodMessageName,
  type UserAuthMind,
} from "./_userauth/common.js";
export { SSHUserAuthServer } from "./_userauth/server.js";
export { SSHUserAuthClient, type PublicKeyLike } from "./_userauth/client.js";
