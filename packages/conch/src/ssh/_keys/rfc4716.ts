/**
 * The SSH public key file format of RFC 4716 (`---- BEGIN SSH2 PUBLIC KEY ----`), which
 * `ssh-keygen -e` writes and `ssh-keygen -i` reads (also called the SECSH or ssh.com format).
 */
import { BadKeyError } from "../../error.js";
import { encodeBlob, parseBlob, publicOf, type Components } from "./components.js";
import { decodeBase64, encodeBase64 } from "./util.js";
import type { ParsedKey } from "./openssh.js";

const BEGIN = "---- BEGIN SSH2 PUBLIC KEY ----";
const END = "---- END SSH2 PUBLIC KEY ----";

export function isRfc4716(text: string): boolean {
  return text.trimStart().startsWith(BEGIN);
}

/** Parses an RFC 4716 block: headers (`Tag: value`, `\` continues a line; §3.3), then base64. */
export function parseRfc4716(text: string): ParsedKey {
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  const start = lines.indexOf(BEGIN);
  const end = lines.indexOf(END);
  if (start < 0) throw new BadKeyError(`no '${BEGIN}' line found`);
  if (end < 0 || end < start) throw new BadKeyError(`the RFC 4716 key has no '${END}' line: the file is truncated`);
  const headers = new Map<string, string>();
  const body: string[] = [];
  let i = start + 1;
  for (; i < end; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    if (body.length > 0 || colon < 0) break;
    let value = line.slice(colon + 1).trim();
    while (value.endsWith("\\") && i + 1 < end) value = value.slice(0, -1) + lines[++i]!;
    headers.set(line.slice(0, colon).trim().toLowerCase(), value);
  }
  for (; i < end; i++) body.push(lines[i]!);
  const components = parseBlob(decodeBase64(body.join(""), "the RFC 4716 key data"), "the RFC 4716 key data");
  let comment = headers.get("comment");
  if (comment !== undefined && comment.length >= 2 && comment.startsWith('"') && comment.endsWith('"')) comment = comment.slice(1, -1);
  return comment !== undefined ? { components, comment } : { components };
}

/** Writes an RFC 4716 block with 70-character lines, as `ssh-keygen -e` does. */
export function toRfc4716(c: Components, comment?: string): string {
  const out = [BEGIN];
  if (comment !== undefined && comment !== "") {
    let header = `Comment: "${comment}"`;
    // §3.3: header lines are at most 72 bytes; longer ones continue with a backslash.
    while (header.length > 72) {
      out.push(header.slice(0, 71) + "\\");
      header = header.slice(71);
    }
    out.push(header);
  }
  const b64 = encodeBase64(encodeBlob(publicOf(c)));
  for (let i = 0; i < b64.length; i += 70) out.push(b64.slice(i, i + 70));
  out.push(END, "");
  return out.join("\n");
}
