/**
 * User certificates in publickey authentication, as sshd's `user_cert_trusted_ca` and the
 * `cert-authority` branch of its authorized_keys check: which CA may vouch for the user, which
 * principal names the certificate must carry, and the certificate's critical options and
 * extensions folded into the login's options so the session and forwarding layers enforce them.
 */
import { isIP } from "node:net";
import { CertificateError, type Certificate, type Key } from "./ssh/keys.js";
import { bytesEqual } from "./ssh/common.js";
import type { AuthorizedKeyOptions } from "./checkers.js";

/** The settings of `SSHPublicKeyChecker` that every certificate check reads. */
export interface UserCertificatePolicy {
  /** CA signature algorithms accepted (`CASignatureAlgorithms`). */
  readonly caSignatureAlgorithms: readonly string[] | undefined;
  /** Unix seconds now. */
  readonly now: () => number;
}

/**
 * Checks `cert` for `username` against one source of trust: a trusted CA key with `principals`
 * (from the hook), or a `cert-authority` line whose `principals=` option, if any, replaces them.
 * Throws {@link CertificateError} with the reason.
 */
export function checkUserCertificate(cert: Certificate, ca: Key, principals: readonly string[], policy: UserCertificatePolicy): void {
  cert.check({
    type: "user",
    trustedCAs: [ca],
    now: policy.now(),
    ...(policy.caSignatureAlgorithms !== undefined ? { caSignatureAlgorithms: policy.caSignatureAlgorithms } : {}),
  });
  // sshd: the certificate must list at least one of the accepted names (match_principals_option).
  const listed = principals.find((p) => cert.principals.includes(p));
  if (cert.principals.length === 0) throw new CertificateError("no-principals", `certificate "${cert.keyId}" lists no principals, so it matches no name`);
  if (listed === undefined) {
    throw new CertificateError("principal", `certificate "${cert.keyId}" lists ${cert.principals.join(",")}, none of which may log in (accepted: ${principals.join(",")})`);
  }
}

/** True when `ca` is the certificate's signing key. */
export function signedBy(cert: Certificate, ca: Key): boolean {
  return bytesEqual(cert.signatureKey.blob(), ca.blob());
}

/**
 * `base` (the options of the line that let the certificate in, or defaults) narrowed by the
 * certificate: each `permit-*` extension that is absent turns its permission off, `force-command`
 * becomes the command. sshd refuses a login whose line and certificate force different commands.
 * `source-address` is checked against `peerHost` with `matchAddress`.
 */
export function mergeCertificateOptions(
  base: AuthorizedKeyOptions,
  cert: Certificate,
  peerHost: string | undefined,
  matchAddress: (host: string | undefined, patterns: readonly string[]) => boolean,
): AuthorizedKeyOptions {
  const sourceAddress = cert.criticalOptions.get("source-address");
  if (sourceAddress !== undefined) {
    const list = sourceAddress.split(",").map((a) => a.trim());
    // Addresses and CIDR blocks only (OpenSSH's addr_match_cidr_list): no wildcards, no negation.
    const bad = list.find((a) => !isAddressOrCidr(a));
    if (bad !== undefined) throw new CertificateError("source-address", `certificate "${cert.keyId}": ${JSON.stringify(bad)} in its source-address list is not an address or CIDR block`);
    if (!matchAddress(peerHost, list)) {
      throw new CertificateError("source-address", `certificate "${cert.keyId}": ${peerHost ?? "an unknown address"} is not in its source-address list ${sourceAddress}`);
    }
  }
  const forced = cert.criticalOptions.get("force-command");
  if (forced !== undefined && base.command !== undefined && base.command !== forced) {
    throw new CertificateError("critical-option", `certificate "${cert.keyId}": its force-command and the authorized_keys command= differ`);
  }
  const ext = (name: string): boolean => cert.extensions.has(name);
  return {
    ...base,
    pty: base.pty && ext("permit-pty"),
    portForwarding: base.portForwarding && ext("permit-port-forwarding"),
    agentForwarding: base.agentForwarding && ext("permit-agent-forwarding"),
    x11Forwarding: base.x11Forwarding && ext("permit-X11-forwarding"),
    userRc: base.userRc && ext("permit-user-rc"),
    command: forced ?? base.command,
    noTouchRequired: base.noTouchRequired || ext("no-touch-required"),
    verifyRequired: base.verifyRequired || cert.criticalOptions.has("verify-required"),
    raw: [...base.raw],
  };
}

function isAddressOrCidr(a: string): boolean {
  const slash = a.indexOf("/");
  if (slash < 0) return isIP(a) !== 0;
  const family = isIP(a.slice(0, slash));
  const bits = a.slice(slash + 1);
  return family !== 0 && /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}
