/**
 * `twisted.conch.ssh.agent`: the SSH agent protocol (draft-miller-ssh-agent, OpenSSH's
 * PROTOCOL.agent).
 *
 * - {@link SSHAgentClient} speaks to an agent (as `ssh-add` does) over any transport: list, sign
 *   (with the RSA SHA-2 flags), add (with lifetime / confirm constraints), remove, lock, unlock.
 * - {@link SSHAgentServer} is an agent (as `ssh-agent`), backed by an in-memory
 *   {@link AgentKeyring}; {@link SSHAgentFactory} serves one keyring to every connection and
 *   {@link listenAgentSocket} listens on a private UNIX socket for it.
 *
 * Messages are `uint32 length, byte type, payload`; both sides refuse a message over
 * {@link MAX_AGENT_MESSAGE} (256 KiB, as OpenSSH) by closing the connection. See
 * `client/agent` for connecting to `SSH_AUTH_SOCK` and for agent forwarding.
 */
export * from "./_agent/common.js";
export { SSHAgentClient, packConstraints, type AgentConstraints, type AgentIdentity } from "./_agent/client.js";
export { AgentKeyring, type AgentKeyEntry } from "./_agent/keyring.js";
export {
  MAX_AGENT_QUEUED_REQUESTS,
  MAX_UNLOCK_FAILURE_DELAY,
  SSHAgentFactory,
  SSHAgentServer,
  UNLOCK_FAILURE_DELAY,
  type AgentConfirm,
  type AgentReply,
  type SSHAgentFactoryOptions,
} from "./_agent/server.js";
export { MAX_UNIX_SOCKET_PATH, listenAgentSocket, type AgentSocket, type AgentSocketOptions } from "./_agent/socket.js";
export { SSHAgentForwardedChannel, SSHAgentForwardingFactory, type IAgentForwardingAvatar } from "./_agent/forwarding.js";
