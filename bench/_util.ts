/** Small helpers the benchmarks share. */
import { spawn } from "node:child_process";

/** The median (the upper one of an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Runs `cmd` to its end with stdin closed; its output, exit code and wall seconds. */
export function run(cmd: string, argv: string[]): Promise<{ code: number; stdout: string; stderr: string; seconds: number }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code: code ?? -1, stdout, stderr, seconds: Number(process.hrtime.bigint() - t0) / 1e9 }));
  });
}

/** `s` quoted for /bin/sh. */
export const q = (s: string): string => `'${s.replace(/'/g, "'\\''")}'`;
