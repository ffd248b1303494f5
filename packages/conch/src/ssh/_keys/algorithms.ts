/**
 * The signature algorithm lists the layers share: a leaf module, so keys, certificates, the
 * transport and userauth read one list without an import cycle.
 */

/**
 * Signature algorithms accepted by default, best first: SHA-1 `ssh-rsa` and DSA are left out,
 * as OpenSSH 8.8+ does (for host keys, user keys and CA signatures alike).
 */
export const DEFAULT_SIGNATURE_ALGORITHMS: readonly string[] = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "rsa-sha2-512",
  "rsa-sha2-256",
];

/**
 * The publickey / host key algorithm names of certificates and the signature algorithm each one
 * signs with (`rsa-sha2-512-cert-v01@openssh.com` → `rsa-sha2-512`), best first.
 */
export const CERT_SIGNATURE_ALGORITHMS: Readonly<Record<string, string>> = Object.fromEntries(
  DEFAULT_SIGNATURE_ALGORITHMS.map((alg) => [`${alg}-cert-v01@openssh.com`, alg]),
);
