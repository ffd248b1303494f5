/**
 * `ckeygen -s`: certificate signing with ssh-keygen's spellings. The validity interval (`-V`), the
 * certificate options (`-O`) and the signing itself; ckeygen.ts wires them to its arguments.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { CERT_VALID_FOREVER, Certificate, DEFAULT_USER_EXTENSIONS, Key, type CertificateTerms } from "../ssh/keys.js";

/** A bad `-V` or `-O` value; ckeygen prints it and exits 1. */
export class CertArgumentError extends Error {}

const UNIT_SECONDS: Readonly<Record<string, number>> = { "": 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** ssh-keygen's interval: `1w2d`, `90m`, `3600` (seconds when no unit). */
function parseInterval(s: string, what: string): bigint {
  const parts = [...s.matchAll(/(\d+)([smhdwSMHDW]?)/g)];
  if (s === "" || parts.map((p) => p[0]).join("") !== s) throw new CertArgumentError(`invalid interval ${JSON.stringify(s)} in ${what}`);
  return parts.reduce((sum, p) => sum + BigInt(p[1]!) * BigInt(UNIT_SECONDS[p[2]!.toLowerCase()]!), 0n);
}

/** `YYYYMMDD[HHMM[SS]]`, local time unless it ends in `Z` (UTC), as ssh-keygen. */
function parseAbsolute(s: string, what: string): bigint {
  const m = /^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?(Z?)$/.exec(s);
  if (m === null) throw new CertArgumentError(`invalid time ${JSON.stringify(s)} in ${what}: use YYYYMMDD[HHMM[SS]][Z], a relative time or 0x seconds`);
  const [y, mo, d, h = "0", mi = "0", sec = "0"] = m.slice(1, 7).map((v) => v ?? "0") as string[];
  const fields = [Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec)] as const;
  const ms = m[7] === "Z" ? Date.UTC(...fields) : new Date(...fields).getTime();
  if (!Number.isFinite(ms)) throw new CertArgumentError(`invalid time ${JSON.stringify(s)} in ${what}`);
  return BigInt(Math.floor(ms / 1000));
}

function parseTime(s: string, now: bigint, end: boolean, what: string): bigint {
  if (!end && s === "always") return 0n;
  if (end && s === "forever") return CERT_VALID_FOREVER;
  if (/^0x[0-9a-fA-F]+$/.test(s)) return BigInt(s);
  if (s.startsWith("+")) return now + parseInterval(s.slice(1), what);
  if (s.startsWith("-")) return now - parseInterval(s.slice(1), what);
  return parseAbsolute(s, what);
}

/**
 * ssh-keygen's `-V` validity interval: `start:end` (`always`, `forever`, `-1d`, `+52w`,
 * `20250101`, `202501011200Z`, `0x…`), or one time, the end, valid from now. `now` is Unix seconds.
 */
export function parseValidity(spec: string, now: number): { validAfter: bigint; validBefore: bigint } {
  const t = BigInt(Math.floor(now));
  const at = spec.indexOf(":");
  const validAfter = at < 0 ? t : parseTime(spec.slice(0, at), t, false, "-V");
  const validBefore = parseTime(at < 0 ? spec : spec.slice(at + 1), t, true, "-V");
  if (validBefore <= validAfter) throw new CertArgumentError(`empty certificate validity interval ${JSON.stringify(spec)}`);
  return { validAfter, validBefore };
}

const FLAG_EXTENSIONS: Readonly<Record<string, string>> = Object.fromEntries(
  ["X11-forwarding", "agent-forwarding", "port-forwarding", "pty", "user-rc"].map((n) => [n.toLowerCase(), `permit-${n}`]),
);

/**
 * Applies ssh-keygen's `-O` options in order to a user certificate's critical options and
 * extensions: `clear`, `no-*` / `permit-*`, `force-command=`, `source-address=`, `verify-required`,
 * `no-touch-required`, `critical:name[=value]`, `extension:name[=value]`.
 */
export function applyCertOptions(options: readonly string[]): { criticalOptions: Record<string, string>; extensions: Record<string, string> } {
  const critical: Record<string, string> = {};
  const ext: Record<string, string> = Object.fromEntries(DEFAULT_USER_EXTENSIONS.map((e) => [e, ""]));
  for (const opt of options) {
    const eq = opt.indexOf("=");
    const name = eq < 0 ? opt : opt.slice(0, eq);
    const value = eq < 0 ? "" : opt.slice(eq + 1);
    const lower = name.toLowerCase();
    if (lower === "clear") for (const k of Object.keys(ext)) delete ext[k];
    else if (lower.startsWith("no-") && FLAG_EXTENSIONS[lower.slice(3)] !== undefined) delete ext[FLAG_EXTENSIONS[lower.slice(3)]!];
    else if (lower.startsWith("permit-") && FLAG_EXTENSIONS[lower.slice(7)] !== undefined) ext[FLAG_EXTENSIONS[lower.slice(7)]!] = "";
    else if (lower === "no-touch-required") ext["no-touch-required"] = "";
    else if (lower === "verify-required") critical["verify-required"] = "";
    else if ((lower === "force-command" || lower === "source-address") && value !== "") critical[lower] = value;
    else if (lower.startsWith("critical:") && name.length > 9) critical[name.slice(9)] = value;
    else if (lower.startsWith("extension:") && name.length > 10) ext[name.slice(10)] = value;
    else throw new CertArgumentError(`unsupported certificate option ${JSON.stringify(opt)}`);
  }
  return { criticalOptions: critical, extensions: ext };
}

/** What `ckeygen -s` was asked to do. */
export interface SignRequest {
  ca: Key;
  keyId: string;
  principals: readonly string[];
  host: boolean;
  serial: bigint;
  validity?: string;
  options: readonly string[];
  signatureAlgorithm?: string;
  /** Unix seconds. */
  now: number;
}

function certPath(pubPath: string): string {
  return (pubPath.endsWith(".pub") ? pubPath.slice(0, -4) : pubPath) + "-cert.pub";
}

/** Signs the public key file `pubPath`, writes `<base>-cert.pub` beside it, returns its path and the certificate. */
export function signKeyFile(pubPath: string, req: SignRequest): { path: string; cert: Certificate } {
  const subject = Key.fromString(readFileSync(pubPath));
  if (req.host && req.options.length > 0) throw new CertArgumentError("certificate options (-O) apply to user certificates only");
  const terms: CertificateTerms = {
    type: req.host ? "host" : "user",
    keyId: req.keyId,
    principals: req.principals,
    serial: req.serial,
    ...(req.validity !== undefined ? parseValidity(req.validity, req.now) : {}),
    ...(req.host ? {} : applyCertOptions(req.options)),
    ...(req.signatureAlgorithm !== undefined ? { signatureAlgorithm: req.signatureAlgorithm } : {}),
    ...(subject.comment !== undefined ? { comment: subject.comment } : {}),
  };
  const cert = req.ca.signCertificate(subject.public(), terms);
  const path = certPath(pubPath);
  writeFileSync(path, cert.toString() + "\n", { mode: 0o644 });
  return { path, cert };
}

/** ssh-keygen's summary line: `Signed user key k-cert.pub: id "x" serial 0 for alice valid forever`. */
export function signedLine(path: string, cert: Certificate): string {
  const fmt = (t: bigint): string => new Date(Number(t) * 1000).toISOString().replace(/\.000Z$/, "");
  const valid =
    cert.validAfter === 0n && cert.validBefore === CERT_VALID_FOREVER
      ? "forever"
      : cert.validBefore === CERT_VALID_FOREVER
        ? `after ${fmt(cert.validAfter)}`
        : `from ${fmt(cert.validAfter)} to ${fmt(cert.validBefore)}`;
  const who = cert.principals.length > 0 ? ` for ${cert.principals.join(",")}` : "";
  return `Signed ${cert.type} key ${path}: id ${JSON.stringify(cert.keyId)} serial ${cert.serial}${who} valid ${valid}`;
}

const KIND_LABEL: Readonly<Record<string, string>> = { RSA: "RSA", DSA: "DSA", EC: "ECDSA", Ed25519: "ED25519" };
const FLAG_EXTENSION_NAMES: readonly string[] = [...Object.values(FLAG_EXTENSIONS), "no-touch-required"];

/** `YYYY-MM-DDTHH:MM:SS` in local time, as ssh-keygen prints validity times. */
function localTime(t: bigint): string {
  const d = new Date(Number(t) * 1000);
  if (Number.isNaN(d.getTime())) return String(t);
  const p = (n: number): string => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** One option line of `ssh-keygen -L`, marking what it does not know as it does. */
function optionLine(name: string, value: string, data: Uint8Array, critical: boolean): string {
  if (critical && (name === "force-command" || name === "source-address")) return `${name} ${value}`;
  if (critical ? name === "verify-required" : FLAG_EXTENSION_NAMES.includes(name)) return name;
  if (data.length === 0) return `${name} UNKNOWN FLAG OPTION`;
  return `${name} UNKNOWN OPTION: ${Buffer.from(data).toString("hex")} (len ${data.length})`;
}

/** What `ssh-keygen -L -f path` prints for `cert`, line for line (times in local time). */
export function listCertificate(path: string, cert: Certificate): string {
  const valid =
    cert.validAfter === 0n && cert.validBefore === CERT_VALID_FOREVER
      ? "forever"
      : cert.validAfter === 0n
        ? `before ${localTime(cert.validBefore)}`
        : cert.validBefore === CERT_VALID_FOREVER
          ? `after ${localTime(cert.validAfter)}`
          : `from ${localTime(cert.validAfter)} to ${localTime(cert.validBefore)}`;
  const list = (title: string, items: string[]): string[] =>
    items.length === 0 ? [`        ${title}: (none)`] : [`        ${title}: `, ...items.map((i) => `                ${i}`)];
  const options = (values: ReadonlyMap<string, string>, data: ReadonlyMap<string, Uint8Array>, critical: boolean): string[] =>
    [...values].map(([name, value]) => optionLine(name, value, data.get(name) ?? new Uint8Array(0), critical));
  return [
    `${path}:`,
    `        Type: ${cert.certType} ${cert.type} certificate`,
    `        Public key: ${KIND_LABEL[cert.key.type()]}-CERT ${cert.fingerprint()}`,
    `        Signing CA: ${KIND_LABEL[cert.signatureKey.type()]} ${cert.signatureKey.fingerprint("sha256")} (using ${cert.signatureAlgorithm})`,
    `        Key ID: "${cert.keyId}"`,
    `        Serial: ${cert.serial}`,
    `        Valid: ${valid}`,
    ...list("Principals", [...cert.principals]),
    ...list("Critical Options", options(cert.criticalOptions, cert.criticalOptionData, true)),
    ...list("Extensions", options(cert.extensions, cert.extensionData, false)),
    "",
  ].join("\n");
}
