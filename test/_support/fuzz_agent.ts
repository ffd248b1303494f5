/**
 * Fuzz targets for the agent protocol: SSHAgentServer fed damaged request streams (every request
 * type, keys of each kind, constraints, lock) in damaged reads, and SSHAgentClient with requests
 * pending fed damaged replies. Neither may throw out of dataReceived; the server's replies stay
 * well-framed; a pending request ends as a value or a typed error; nothing over the 256 KiB limit
 * is buffered.
 */
import fc from "fast-check";
import type { Deferred } from "@twisted-ts/internet/defer";
import type { Failure } from "@twisted-ts/internet/failure";
import { Clock } from "@twisted-ts/internet/task";
import { StringTransport } from "@twisted-ts/internet/testing";
import { agent, common, keys } from "@twisted-ts/conch/ssh";
import { TWISTED } from "../conch/ssh/keys_twisted_data.js";
import { FuzzFinding, bounded, chunking, chunksOf, fuzzBytes, requireTyped, target, type FuzzTarget } from "./fuzz.js";

const { Key } = keys;
const { NS } = common;
const cat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

function requestFrames(): Uint8Array[] {
  const ed = Key.fromString(TWISTED["privateEd25519_openssh_new"]!);
  const ec = Key.fromString(TWISTED["privateECDSA_openssh"]!);
  const rsa = Key.fromString(TWISTED["privateRSA_openssh"]!);
  const f = agent.frameMessage;
  const sign = (k: keys.Key, flags: number) => f(agent.AGENTC_SIGN_REQUEST, cat(NS(k.blob()), NS("data"), Uint8Array.of(0, 0, 0, flags)));
  return [
    f(agent.AGENTC_REQUEST_IDENTITIES, new Uint8Array(0)),
    f(agent.AGENTC_ADD_IDENTITY, cat(ed.privateBlob(), NS("ed"))),
    f(agent.AGENTC_ADD_IDENTITY, cat(ec.privateBlob(), NS("ec"))),
    f(agent.AGENTC_ADD_ID_CONSTRAINED, cat(rsa.privateBlob(), NS("rsa"), agent.packConstraints({ lifetime: 60, confirm: true }))),
    sign(ed, 0),
    sign(ec, 0),
    sign(rsa, agent.SSH_AGENT_RSA_SHA2_512),
    f(agent.AGENTC_REMOVE_IDENTITY, NS(ec.blob())),
    f(agent.AGENTC_LOCK, NS("pw")),
    f(agent.AGENTC_UNLOCK, NS("pw")),
    f(agent.AGENTC_REMOVE_ALL_IDENTITIES, new Uint8Array(0)),
    f(agent.AGENTC_EXTENSION, NS("session-bind@openssh.com")),
  ];
}

const server = target(
  "ssh/agent: SSHAgentServer fed damaged requests",
  150,
  () => fc.tuple(fc.array(fuzzBytes(requestFrames(), 64), { minLength: 1, maxLength: 6 }), chunking),
  ([frames, how]) => {
    const clock = new Clock();
    const t = new StringTransport();
    const s = new agent.SSHAgentServer(new agent.AgentKeyring(clock));
    s.makeConnection(t);
    for (const piece of chunksOf(cat(...frames), how)) {
      try {
        s.dataReceived(piece);
      } catch (e) {
        throw new FuzzFinding(`SSHAgentServer.dataReceived threw: ${String(e)}`);
      }
    }
    clock.advance(120);
    // Everything it wrote is whole frames with a reply type.
    const replies = new agent.AgentFrameParser().feed(t.value());
    for (const r of replies) {
      if (![agent.AGENT_FAILURE, agent.AGENT_SUCCESS, agent.AGENT_IDENTITIES_ANSWER, agent.AGENT_SIGN_RESPONSE, agent.AGENT_RSA_IDENTITIES_ANSWER].includes(r[0]!)) {
        throw new FuzzFinding(`the agent replied with type ${r[0]!}`);
      }
    }
    s.getKeyring()?.stop();
  },
);

function replyFrames(): Uint8Array[] {
  const f = agent.frameMessage;
  return [
    f(agent.AGENT_IDENTITIES_ANSWER, cat(Uint8Array.of(0, 0, 0, 2), NS("blob one"), NS("comment"), NS("blob two"), NS(""))),
    f(agent.AGENT_SIGN_RESPONSE, NS(cat(NS("ssh-ed25519"), NS(new Uint8Array(64))))),
    f(agent.AGENT_SUCCESS, new Uint8Array(0)),
    f(agent.AGENT_FAILURE, new Uint8Array(0)),
  ];
}

const client = target(
  "ssh/agent: SSHAgentClient fed damaged replies",
  300,
  () => fc.tuple(fc.array(fuzzBytes(replyFrames(), 64), { minLength: 1, maxLength: 6 }), chunking),
  ([frames, how]) => {
    const t = new StringTransport();
    const c = new agent.SSHAgentClient();
    c.makeConnection(t);
    const pending: Array<Deferred<unknown>> = [c.requestIdentities(), c.signData(new Uint8Array(3), "x"), c.removeAllIdentities(), c.lock("pw"), c.requestIdentities()];
    const outcomes: unknown[] = [];
    for (const d of pending) d.addErrback((f: Failure) => void outcomes.push(f.value));
    for (const piece of chunksOf(cat(...frames), how)) {
      try {
        c.dataReceived(piece);
      } catch (e) {
        throw new FuzzFinding(`SSHAgentClient.dataReceived threw: ${String(e)}`);
      }
    }
    for (const e of outcomes) requireTyped(e, "a failed agent request");
    bounded("SSHAgentClient held", Number((c as unknown as { parser?: { buffered: number } }).parser?.buffered ?? 0), agent.MAX_AGENT_MESSAGE + 4);
  },
);

export const AGENT_TARGETS: readonly FuzzTarget[] = [server, client];
