/**
 * Fuzz targets for the file and line formats: `Key.fromString` in every format (public blobs and
 * lines, OpenSSH, PEM, PuTTY, RFC 4716, LSH, agent), known_hosts lines and authorized_keys lines.
 * Armoured formats are damaged both as text and inside their base64 (decoded, mutated, encoded
 * again), so the damage reaches the binary and ASN.1 parsers behind the armour.
 *
 * Encrypted OpenSSH keys are fed without a passphrase: their bcrypt rounds come from the file,
 * and a damaged file may ask for billions (a cost bounded elsewhere, not a parser fault).
 */
import fc from "fast-check";
import { checkers } from "@twisted-ts/conch";
import { knownhosts } from "@twisted-ts/conch/client";
import { keys } from "@twisted-ts/conch/ssh";
import { TWISTED } from "../conch/ssh/keys_twisted_data.js";
import { FuzzFinding, applyMutation, fuzzBytes, mutation, target, typedOrValue, type FuzzTarget } from "./fuzz.js";

const { Key } = keys;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const b64 = (b: Uint8Array): string => Buffer.from(b).toString("base64");

/** A key sample: its bytes, and for armoured text, how to wrap a (mutated) binary body again. */
interface Sample {
  name: string;
  data: Uint8Array;
  passphrase?: string;
  body?: { binary: Uint8Array; wrap: (b: Uint8Array) => Uint8Array };
}

/** Splits PEM-style armour into its header/footer and the decoded body. */
function armoured(name: string, text: string, passphrase?: string): Sample {
  const lines = text.trim().split("\n");
  const bodyLines = lines.filter((l) => /^[A-Za-z0-9+/=]+$/.test(l));
  const first = lines.indexOf(bodyLines[0]!);
  const head = lines.slice(0, first).join("\n");
  const tail = lines.slice(first + bodyLines.length).join("\n");
  const binary = new Uint8Array(Buffer.from(bodyLines.join(""), "base64"));
  const wrap = (b: Uint8Array): Uint8Array => enc(`${head}\n${(b64(b).match(/.{1,64}/g) ?? []).join("\n")}\n${tail}\n`);
  return passphrase === undefined ? { name, data: enc(text), body: { binary, wrap } } : { name, data: enc(text), passphrase, body: { binary, wrap } };
}

function publicLine(name: string, key: keys.Key): Sample {
  const blob = key.public().blob();
  return { name, data: enc(key.public().toString("openssh", { comment: "user@host" })), body: { binary: blob, wrap: (b) => enc(`${key.sshType()} ${b64(b)} user@host`) } };
}

function samples(): Sample[] {
  const ed = Key.fromString(TWISTED["privateEd25519_openssh_new"]!);
  const ec = Key.fromString(TWISTED["privateECDSA_openssh"]!);
  const rsa = Key.fromString(TWISTED["privateRSA_openssh"]!);
  const dsa = Key.fromString(TWISTED["privateDSA_openssh"]!);
  return [
    ...[ed, ec, rsa, dsa].map((k) => ({ name: `${k.sshType()} blob`, data: k.public().blob() })),
    ...[ed, ec, rsa].map((k) => publicLine(`${k.sshType()} public line`, k)),
    { name: "private blob", data: ec.privateBlob() },
    { name: "agentv3", data: rsa.toBytes("agentv3") },
    armoured("openssh-key-v1 ed25519", TWISTED["privateEd25519_openssh_new"]!),
    armoured("openssh-key-v1 rsa", TWISTED["privateRSA_openssh_new"]!),
    armoured("openssh-key-v1 ecdsa", TWISTED["privateECDSA_openssh_new"]!),
    armoured("openssh-key-v1 encrypted (no passphrase)", TWISTED["privateRSA_openssh_encrypted_new"]!),
    armoured("PEM RSA", TWISTED["privateRSA_openssh"]!),
    armoured("PEM EC", TWISTED["privateECDSA_openssh"]!),
    armoured("PEM DSA", TWISTED["privateDSA_openssh"]!),
    armoured("PEM PKCS#8", ed.toString("pem")),
    armoured("PEM encrypted", TWISTED["privateRSA_openssh_encrypted_aes"]!, "testxp"),
    { name: "PuTTY v3", data: enc(ed.toString("putty", { comment: "c" })) },
    { name: "PuTTY v2 encrypted", data: enc(ec.toString("putty", { passphrase: "pw", subtype: "v2" })), passphrase: "pw" },
    armoured("RFC 4716", ec.public().toString("rfc4716", { comment: "c" })),
    { name: "LSH private", data: rsa.toBytes("lsh") },
    { name: "LSH public", data: dsa.public().toBytes("lsh") },
  ];
}

/** Damaged keys: a sample's bytes mutated, or its armoured body mutated and wrapped again. */
function damagedKey(): fc.Arbitrary<{ data: Uint8Array; passphrase: string | undefined; name: string }> {
  const all = samples();
  return fc.tuple(fc.nat(all.length - 1), fc.boolean(), fc.array(mutation, { minLength: 0, maxLength: 4 })).map(([i, inside, ms]) => {
    const s = all[i]!;
    const data = inside && s.body !== undefined ? s.body.wrap(ms.reduce(applyMutation, s.body.binary)) : ms.reduce(applyMutation, s.data);
    return { data, passphrase: s.passphrase, name: s.name };
  });
}

const keyFromString = target("ssh/keys: Key.fromString in every format", 400, damagedKey, ({ data, passphrase, name }) => {
  const key = typedOrValue(`Key.fromString (${name})`, () => Key.fromString(data, undefined, passphrase));
  // What parses must be usable: its blob parses back to the same public key.
  if (key !== undefined) {
    const again = typedOrValue(`Key.fromString of a parsed key's blob (${name})`, () => Key.fromString(key.public().blob(), "blob"));
    if (again === undefined || !again.equals(key.public())) throw new FuzzFinding(`${name}: a parsed key's blob does not parse back to it`);
  }
});

function knownHostsLines(): Uint8Array[] {
  const ed = Key.fromString(TWISTED["privateEd25519_openssh_new"]!).public();
  const ec = Key.fromString(TWISTED["privateECDSA_openssh"]!).public();
  const hashed = knownhosts.hashHostname(new Uint8Array(20).fill(7), "example.com");
  return [
    enc(`example.com,192.0.2.1 ${ed.toString("openssh")}`),
    enc(`[example.com]:2222 ${ec.toString("openssh")} comment here`),
    enc(`|1|${b64(new Uint8Array(20).fill(7))}|${b64(hashed)} ${ed.toString("openssh")}`),
    enc(`@cert-authority *.example.com ${ed.toString("openssh")}`),
    enc(`@revoked * ${ec.toString("openssh")}`),
    enc("# a comment"),
    enc("!bad.example.com,*.example.com,?x.example.org ssh-ed25519 AAAA"),
  ];
}

const knownHosts = target("client/known_hosts lines", 400, () => fuzzBytes(knownHostsLines(), 120), (line) => {
  const text = Buffer.from(line).toString("latin1");
  const entry = typedOrValue("known_hosts parseEntry", () => knownhosts.parseEntry(text));
  if (entry !== undefined) {
    typedOrValue("known_hosts matchesHost", () => entry.matchesHost("example.com"));
    typedOrValue("known_hosts toString", () => entry.toString());
  }
});

function authorizedKeysLines(): Uint8Array[] {
  const ed = Key.fromString(TWISTED["privateEd25519_openssh_new"]!).public().toString("openssh", { comment: "alice@laptop" });
  return [
    enc(ed),
    enc(`command="echo forced",no-pty,no-port-forwarding ${ed}`),
    enc(`restrict,pty,permitopen="127.0.0.1:80",permitlisten="localhost:8080" ${ed}`),
    enc(`from="10.0.0.?,*.example.com,!192.0.2.1",expiry-time="20301231",environment="A=b" ${ed}`),
    enc(`principals="alice,bob",no-agent-forwarding,no-X11-forwarding,no-user-rc,tunnel="0",cert-authority ${ed}`),
    enc(`command="say \\"hi\\"" ${ed}`),
  ];
}

const authorizedKeys = target("checkers/authorized_keys lines", 400, () => fuzzBytes(authorizedKeysLines(), 120), (line) => {
  const text = Buffer.from(line).toString("latin1");
  typedOrValue("parseAuthorizedKeyLine", () => checkers.parseAuthorizedKeyLine(text));
  // readAuthorizedKeyFile logs and skips what it cannot read: it must never throw.
  checkers.readAuthorizedKeyFile(`${text}\n${text}`);
});

/** Certificates signed by Ed25519, ECDSA and RSA CAs, with options, extensions and principals. */
function certificateBlobs(): Uint8Array[] {
  const subject = Key.fromString(TWISTED["privateECDSA_openssh"]!).public();
  const cas = [Key.fromString(TWISTED["privateEd25519_openssh_new"]!), Key.fromString(TWISTED["privateECDSA_openssh"]!), Key.fromString(TWISTED["privateRSA_openssh"]!)];
  return cas.map((ca, i) =>
    ca
      .signCertificate(subject, {
        type: i === 1 ? "host" : "user",
        keyId: `fuzz-${i}`,
        principals: ["alice", "bob"],
        serial: BigInt(i),
        validAfter: 10n,
        validBefore: 20n,
        criticalOptions: i === 1 ? {} : { "force-command": "true", "source-address": "10.0.0.0/8", "verify-required": "" },
        nonce: new Uint8Array(32).fill(i),
      })
      .blob(),
  );
}

const certificate = target("ssh/keys: Certificate.fromBlob and check", 300, () => fuzzBytes(certificateBlobs(), 64), (blob) => {
  const cert = typedOrValue("Certificate.fromBlob", () => keys.Certificate.fromBlob(blob));
  if (cert === undefined) return;
  // Everything but the signature is signed, so what parses is a certificate its CA made.
  if (!keys.Certificate.fromBlob(cert.blob()).signatureKey.equals(cert.signatureKey)) throw new FuzzFinding("a parsed certificate does not parse back");
  for (const type of ["user", "host"] as const) typedOrValue("Certificate.check", () => cert.check({ type, principal: "alice", now: 15 }));
});

export const FORMAT_TARGETS: readonly FuzzTarget[] = [keyFromString, knownHosts, authorizedKeys, certificate];
