/**
 * The payloads of session requests (RFC 4254 §6): what `session.ts` sends and reads, and what
 * Twisted's `packRequest_*` / `parseRequest_*` helpers offer clients. Re-exported by `session`.
 */
import type { TerminalModes, WindowSize } from "../../avatar.js";
import { NS, SSHReader, SSHWriter, concatBytes } from "../common.js";

const EMPTY = new Uint8Array(0);
export const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString("latin1");
export const utf8 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString("utf8");

const SIGNALS_BY_NUMBER: Readonly<Record<number, string>> = {
  1: "HUP", 2: "INT", 3: "QUIT", 4: "ILL", 6: "ABRT", 8: "FPE", 9: "KILL", 10: "USR1", 11: "SEGV", 12: "USR2", 13: "PIPE", 14: "ALRM", 15: "TERM",
};

/** The RFC 4254 name of signal number `n` (Linux numbering), or `n@node` for others. */
export function signalName(n: number): string {
  return SIGNALS_BY_NUMBER[n] ?? `${n}@${process.platform}`;
}

// ---- request payloads ---------------------------------------------------------------------------

/**
 * Reads a pty-req payload: `[term, [rows, cols, xpixel, ypixel], modes]`. The wire carries
 * columns before rows; the tuple is Twisted's rows-first order.
 */
export function parseRequest_pty_req(data: Uint8Array): [string, WindowSize, Array<[number, number]>] {
  const r = new SSHReader(data);
  const term = latin1(r.string());
  const cols = r.uint32();
  const rows = r.uint32();
  const xpixel = r.uint32();
  const ypixel = r.uint32();
  const encoded = r.string();
  const modes: Array<[number, number]> = [];
  const m = new SSHReader(encoded);
  while (m.remaining >= 5) {
    const opcode = m.byte();
    if (opcode === 0) break; // TTY_OP_END
    modes.push([opcode, m.uint32()]);
  }
  return [term, [rows, cols, xpixel, ypixel], modes];
}

/**
 * Packs a pty-req payload. `geometry` is `[rows, cols, xpixel, ypixel]`; `modes` are already
 * encoded bytes (as in Twisted) or opcode/value pairs, which are encoded with TTY_OP_END.
 */
export function packRequest_pty_req(term: string, geometry: WindowSize, modes: Uint8Array | TerminalModes = EMPTY): Uint8Array {
  const [rows, cols, xpixel, ypixel] = geometry;
  let encoded: Uint8Array;
  if (modes instanceof Uint8Array) encoded = modes;
  else {
    const w = new SSHWriter();
    for (const [op, value] of modes) w.byte(op).uint32(value);
    w.byte(0);
    encoded = w.finish();
  }
  return concatBytes(NS(term), new SSHWriter(16).uint32(cols).uint32(rows).uint32(xpixel).uint32(ypixel).finish(), NS(encoded));
}

/** Reads a window-change payload as `[rows, cols, xpixel, ypixel]` (the wire has cols first). */
export function parseRequest_window_change(data: Uint8Array): WindowSize {
  const r = new SSHReader(data);
  const cols = r.uint32();
  const rows = r.uint32();
  const xpixel = r.uint32();
  const ypixel = r.uint32();
  return [rows, cols, xpixel, ypixel];
}

/** Packs a window-change payload from `[rows, cols, xpixel, ypixel]`. */
export function packRequest_window_change(geometry: WindowSize): Uint8Array {
  const [rows, cols, xpixel, ypixel] = geometry;
  return new SSHWriter(16).uint32(cols).uint32(rows).uint32(xpixel).uint32(ypixel).finish().slice();
}

/** Reads an exit-status payload (RFC 4254 §6.10): the exit code. */
export function parseRequest_exit_status(data: Uint8Array): number {
  return new SSHReader(data).uint32();
}

/** An exit-signal payload (RFC 4254 §6.10), as read. */
export interface ExitSignal {
  /** Signal name without "SIG" ("TERM", "KILL", …). */
  signal: string;
  coreDumped: boolean;
  errorMessage: string;
  languageTag: string;
}

/** Reads an exit-signal payload. */
export function parseRequest_exit_signal(data: Uint8Array): ExitSignal {
  const r = new SSHReader(data);
  const signal = latin1(r.string());
  const coreDumped = r.boolean();
  const errorMessage = r.remaining >= 4 ? utf8(r.string()) : "";
  const languageTag = r.remaining >= 4 ? latin1(r.string()) : "";
  return { signal, coreDumped, errorMessage, languageTag };
}

/** Packs an exit-signal payload. */
export function packRequest_exit_signal(signal: string, coreDumped: boolean, errorMessage = "", languageTag = ""): Uint8Array {
  return new SSHWriter().string(signal).boolean(coreDumped).string(errorMessage).string(languageTag).finish().slice();
}

/** Packs an env payload. */
export function packRequest_env(name: string, value: string): Uint8Array {
  return concatBytes(NS(name), NS(value));
}
