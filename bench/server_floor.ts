/**
 * The floor under our SSH server's download path: the least a Node process can do per byte to
 * move a command's output into an encrypted TCP stream, with none of our layers.
 *
 * It runs `head -c 256M /dev/zero`, reads its stdout through one reused buffer (the handle move the
 * reactor uses), gathers 32 KiB packets, seals each with AES-128-GCM as pieces (a fresh node:crypto
 * object per packet, as node:crypto requires), and writes them corked per turn to a TCP socket
 * whose reader is another process. It reports wall and CPU seconds per transfer. Compare with
 * `ssh → twisted-ts down` in bench/ssh (our server doing the same with the SSH layers) and
 * `ssh → sshd down` (OpenSSH in C).
 *
 *     npm run build && node bench/dist/server_floor.js [MiB = 256] [repetitions = 4]
 */
import { spawn } from "node:child_process";
import { createCipheriv, randomBytes } from "node:crypto";
import { Socket, connect } from "node:net";
import { freePort, waitForPort } from "./_net.js";

const MIB = Number(process.argv[2] ?? 256);
const REPS = Number(process.argv[3] ?? 4);
const N = MIB * 1024 * 1024;
const PACKET = 32 * 1024;

const SINK = `
const net = require("node:net");
net.createServer((s) => s.on("data", () => {})).listen(Number(process.argv[1]), "127.0.0.1");
`;

function once(port: number): Promise<{ seconds: number; cpu: number }> {
  return new Promise((resolve, reject) => {
    const key = randomBytes(16);
    const iv = randomBytes(12);
    const header = Buffer.alloc(5);
    const sock = connect({ port, host: "127.0.0.1" });
    sock.setNoDelay(true);
    sock.once("error", reject);
    sock.once("connect", () => {
      const t0 = process.hrtime.bigint();
      const c0 = process.cpuUsage();
      const child = spawn("head", ["-c", String(N), "/dev/zero"], { stdio: ["ignore", "pipe", "inherit"] });
      let corked = false;
      const seal = (body: Uint8Array): void => {
        const c = createCipheriv("aes-128-gcm", key, iv);
        c.setAAD(header.subarray(0, 4));
        const a = c.update(header.subarray(4));
        const b = c.update(body);
        c.final();
        if (!corked) {
          corked = true;
          sock.cork();
          setImmediate(() => {
            corked = false;
            sock.uncork();
          });
        }
        for (const piece of [header.subarray(0, 4), a, b, c.getAuthTag()]) sock.write(piece);
      };
      const gather = Buffer.allocUnsafe(PACKET);
      let fill = 0;
      let scheduled = false;
      const flush = (): void => {
        if (fill === 0) return;
        seal(gather.subarray(0, fill));
        fill = 0;
      };
      const stdout = child.stdout as unknown as { _handle: unknown; readable: boolean };
      const handle = stdout._handle;
      stdout._handle = null;
      stdout.readable = false;
      const onread = {
        buffer: Buffer.allocUnsafe(64 * 1024),
        callback: (n: number, buf: Uint8Array): boolean => {
          for (let off = 0; off < n; ) {
            const k = Math.min(n - off, PACKET - fill);
            gather.set(buf.subarray(off, off + k), fill);
            fill += k;
            off += k;
            if (fill === PACKET) flush();
          }
          if (fill > 0 && !scheduled) {
            scheduled = true;
            setImmediate(() => {
              scheduled = false;
              flush();
            });
          }
          return true;
        },
      };
      const reader = new Socket({ handle, readable: true, writable: false, onread } as ConstructorParameters<typeof Socket>[0]);
      reader.once("end", () => {
        flush();
        sock.end(() => {
          const u = process.cpuUsage(c0);
          resolve({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, cpu: (u.user + u.system) / 1e6 });
        });
      });
    });
  });
}

async function main(): Promise<void> {
  const port = await freePort();
  const sink = spawn(process.execPath, ["-e", SINK, String(port)], { stdio: "inherit" });
  try {
    await waitForPort(port);
    console.log(`# ${MIB} MiB: head → Node (reused read buffer, 32 KiB packets, AES-128-GCM pieces) → TCP → a reader process`);
    for (let i = 0; i < REPS; i++) {
      const r = await once(port);
      console.log(`run ${i + 1}: ${r.seconds.toFixed(3)} s, ${r.cpu.toFixed(3)} CPU s, ${(N / 1e6 / r.seconds).toFixed(0)} MB/s`);
    }
  } finally {
    sink.kill();
  }
}

await main();
