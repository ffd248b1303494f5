/**
 * OpenSSH certificates against ssh-keygen, both ways: certificates `ssh-keygen -s` makes for every
 * key type (Ed25519, ECDSA P-256/384/521 and RSA CAs, RSA CAs with rsa-sha2-256 and -512) parse and
 * verify here with the fields `ssh-keygen -L` prints; certificates made here are read back by
 * `ssh-keygen -L` with the same fields, and `ckeygen -L` prints byte for byte what `ssh-keygen -L`
 * prints for all of them.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { main as ckeygen } from "@twisted-ts/conch/scripts/ckeygen";
import { common as keys_common, keys } from "@twisted-ts/conch/ssh";
import { requirePeer, runCommand, tempDir } from "../_support/peers.js";

const { Key, Certificate } = keys;

/** Every key type a certificate is made for, as ssh-keygen -t/-b arguments. */
const TYPES: [string, string[]][] = [
  ["ed25519", ["-t", "ed25519"]],
  ...[256, 384, 521].map((bits): [string, string[]] => [`ecdsa${bits}`, ["-t", "ecdsa", "-b", String(bits)]]),
  ["rsa", ["-t", "rsa", "-b", "1024"]],
];

async function keygen(args: string[]): Promise<string> {
  // TZ=UTC so ssh-keygen -L prints validity times as the UTC times compared below.
  const r = await runCommand("ssh-keygen", args, { env: { ...process.env, TZ: "UTC" } });
  if (r.code !== 0) throw new Error(`ssh-keygen ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout.toString();
}

/** `ckeygen -L -f path` and `ssh-keygen -L -f path` (both in this process's time zone): they must print the same bytes. */
async function assertListsAlike(path: string): Promise<void> {
  const r = await runCommand("ssh-keygen", ["-L", "-f", path]);
  assert.equal(r.code, 0, r.stderr);
  const io = { out: "", stdout: (s: string) => void (io.out += s), stderr: (s: string) => assert.fail(s), prompt: () => Promise.reject(new Error("no prompt")) };
  assert.equal(await ckeygen(["-L", "-f", path], io), 0);
  assert.equal(io.out, r.stdout.toString());
}

function setup(t: TestContext): string | undefined {
  if (requirePeer(t, "ssh-keygen", "openssh-client") === undefined) return undefined;
  return tempDir(t, "twisted-ts-certs-");
}

/** The fields of `ssh-keygen -L`, as one record. */
interface Listing {
  type: string;
  publicKey: string;
  signingCA: string;
  keyId: string;
  serial: string;
  valid: string;
  principals: string[];
  criticalOptions: string[];
  extensions: string[];
}

function parseListing(out: string): Listing {
  const lines = out.split("\n").slice(1);
  const field = (name: string): string => {
    const line = lines.find((l) => l.trim().startsWith(`${name}:`));
    assert.ok(line !== undefined, `ssh-keygen -L printed no ${name}: ${out}`);
    return line.trim().slice(name.length + 1).trim();
  };
  const list = (name: string): string[] => {
    const at = lines.findIndex((l) => l.trim().startsWith(`${name}:`));
    if (field(name) === "(none)") return [];
    const items: string[] = [];
    for (const l of lines.slice(at + 1)) {
      if (!/^\s{9,}\S/.test(l)) break;
      items.push(l.trim());
    }
    return items;
  };
  return {
    type: field("Type"),
    publicKey: field("Public key"),
    signingCA: field("Signing CA"),
    keyId: field("Key ID"),
    serial: field("Serial"),
    valid: field("Valid"),
    principals: list("Principals"),
    criticalOptions: list("Critical Options"),
    extensions: list("Extensions"),
  };
}

const KIND: Record<string, string> = { Ed25519: "ED25519", EC: "ECDSA", RSA: "RSA" };

function time(t: bigint): string {
  return new Date(Number(t) * 1000).toISOString().replace(/\.000Z$/, "");
}

/** What ssh-keygen -L would print for `cert`, from our reading of it. */
function listingOf(cert: keys.Certificate): Listing {
  const valid =
    cert.validAfter === 0n && cert.validBefore === keys.CERT_VALID_FOREVER ? "forever" : `from ${time(cert.validAfter)} to ${time(cert.validBefore)}`;
  // ssh-keygen -L marks flags it does not know.
  const known = [...keys.KNOWN_CRITICAL_OPTIONS, ...keys.DEFAULT_USER_EXTENSIONS, "no-touch-required"];
  const opt = ([name, value]: [string, string]): string =>
    known.includes(name)
      ? value !== "" ? `${name} ${value}` : name
      : value !== "" ? `${name} UNKNOWN OPTION: ${Buffer.from(new keys_common.SSHWriter().string(value).finish()).toString("hex")} (len ${value.length + 4})` : `${name} UNKNOWN FLAG OPTION`;
  return {
    type: `${cert.certType} ${cert.type} certificate`,
    publicKey: `${KIND[cert.key.type()]}-CERT ${cert.fingerprint()}`,
    signingCA: `${KIND[cert.signatureKey.type()]} ${cert.signatureKey.fingerprint("sha256")} (using ${cert.signatureAlgorithm})`,
    keyId: JSON.stringify(cert.keyId),
    serial: String(cert.serial),
    valid,
    principals: [...cert.principals],
    criticalOptions: [...cert.criticalOptions].map(opt),
    extensions: [...cert.extensions].map(opt),
  };
}

const CAS: [string, string[], string[]][] = [
  ["ed25519", ["-t", "ed25519"], []],
  ["ecdsa384", ["-t", "ecdsa", "-b", "384"], []],
  ["rsa/rsa-sha2-512", ["-t", "rsa", "-b", "1024"], []],
  ["rsa/rsa-sha2-256", ["-t", "rsa", "-b", "1024"], ["-t", "rsa-sha2-256"]],
];

for (const [caName, caArgs, signArgs] of CAS) {
  test(`ssh-keygen -s (${caName} CA): user and host certificates of every key type parse, verify and list as ssh-keygen -L does`, async (t) => {
    const dir = setup(t);
    if (dir === undefined) return;
    const caPath = join(dir, "ca");
    await keygen(["-q", ...caArgs, "-N", "", "-f", caPath]);
    const ca = Key.fromFile(caPath);
    for (const [name, typeArgs] of TYPES) {
      const base = join(dir, name);
      await keygen(["-q", ...typeArgs, "-N", "", "-C", `${name} key`, "-f", base]);
      for (const kind of ["user", "host"] as const) {
        const args = ["-q", "-s", caPath, ...signArgs, "-I", `${name} ${kind}`, "-n", "alice,bob", "-z", "42", "-V", "20200101000000:20300101000000"];
        if (kind === "host") args.push("-h");
        else args.push("-O", "force-command=/bin/true", "-O", "source-address=127.0.0.1/32", "-O", "no-pty", "-O", "extension:unknown@example.com", "-O", "extension:data@example.com=xyz");
        await keygen([...args, `${base}.pub`]);
        const cert = Certificate.fromString(readFileSync(`${base}-cert.pub`, "utf8"));
        assert.ok(cert.key.equals(Key.fromFile(`${base}.pub`)), `${name} ${kind}: the certified key`);
        assert.ok(cert.signatureKey.equals(ca.public()));
        assert.deepEqual(listingOf(cert), parseListing(await keygen(["-L", "-f", `${base}-cert.pub`])), `${name} ${kind}`);
        await assertListsAlike(`${base}-cert.pub`);
        cert.check({ type: kind, principal: "bob", trustedCAs: [ca.public()], now: Date.UTC(2025, 0, 1) / 1000 });
      }
    }
  });
}

for (const [caName, caArgs, signArgs] of CAS) {
  test(`signCertificate (${caName} CA): certificates made here are read by ssh-keygen -L with the same fields`, async (t) => {
    const dir = setup(t);
    if (dir === undefined) return;
    const ca = Key.fromFile(await (async () => {
      await keygen(["-q", ...caArgs, "-N", "", "-f", join(dir, "ca")]);
      return join(dir, "ca");
    })());
    const signatureAlgorithm = signArgs[1] ?? (ca.type() === "RSA" ? "rsa-sha2-512" : ca.sshType());
    const subjects = [Key.generate("ed25519"), Key.generate("ecdsa", { bits: 256 }), Key.generate("ecdsa", { bits: 384 }), Key.generate("ecdsa", { bits: 521 }), Key.generate("rsa", { bits: 1024 })];
    for (const subject of subjects) {
      for (const type of ["user", "host"] as const) {
        const cert = ca.signCertificate(subject.public(), {
          type,
          keyId: `ours ${subject.sshType()}`,
          principals: type === "user" ? ["alice"] : ["host.example", "127.0.0.1"],
          serial: 7n,
          validAfter: BigInt(Date.UTC(2021, 5, 1) / 1000),
          validBefore: BigInt(Date.UTC(2031, 5, 1) / 1000),
          ...(type === "user" ? { criticalOptions: { "force-command": "echo hi", "verify-required": "" } } : {}),
          signatureAlgorithm,
        });
        const path = join(dir, `${subject.sshType()}-${type}-cert.pub`);
        writeFileSync(path, cert.toString() + "\n");
        assert.deepEqual(parseListing(await keygen(["-L", "-f", path])), listingOf(cert));
        await assertListsAlike(path);
      }
    }
  });
}

test("ckeygen -s: ssh-keygen -L reads its certificate with the options given in ssh-keygen's spellings", async (t) => {
  const dir = setup(t);
  if (dir === undefined) return;
  await keygen(["-q", "-t", "rsa", "-b", "1024", "-N", "", "-f", join(dir, "ca")]);
  await keygen(["-q", "-t", "ed25519", "-N", "", "-C", "user key", "-f", join(dir, "id")]);
  const io = { out: "", err: "", stdout: (s: string) => void (io.out += s), stderr: (s: string) => void (io.err += s), prompt: () => Promise.reject(new Error("no prompt")) };
  const args = ["-s", join(dir, "ca"), "-t", "rsa-sha2-256", "-I", "ckeygen id", "-n", "alice", "-z", "5", "-V", "20240101Z:20340101Z", "-O", "clear", "-O", "permit-pty", "-O", "source-address=127.0.0.1/32,::1/128", join(dir, "id.pub")];
  assert.equal(await ckeygen(args, io), 0, io.err);
  const listing = parseListing(await keygen(["-L", "-f", join(dir, "id-cert.pub")]));
  assert.equal(listing.signingCA.endsWith("(using rsa-sha2-256)"), true);
  assert.equal(listing.keyId, '"ckeygen id"');
  assert.equal(listing.serial, "5");
  assert.equal(listing.valid, "from 2024-01-01T00:00:00 to 2034-01-01T00:00:00");
  assert.deepEqual(listing.principals, ["alice"]);
  assert.deepEqual(listing.criticalOptions, ["source-address 127.0.0.1/32,::1/128"]);
  assert.deepEqual(listing.extensions, ["permit-pty"]);
  assert.deepEqual(listingOf(Certificate.fromString(readFileSync(join(dir, "id-cert.pub"), "utf8"))), listing);
  await assertListsAlike(join(dir, "id-cert.pub"));
});
