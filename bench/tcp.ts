/**
 * TCP through the reactor's Protocol layer vs bare `node:net` sockets, in one process, over
 * 127.0.0.1:
 *
 * - bulk: the server sends BULK bytes in 64 KiB writes (a push producer on the transport; bare:
 *   `socket.write` with `drain`), the client counts them. MB/s.
 * - round trips: the client sends a 64-byte message, the server echoes it, the client sends the
 *   next on receipt (TCP_NODELAY on both sides). Round trips/s.
 *
 *     npx tsc -b && node --expose-gc bench/dist/tcp.js [--quick]
 *
 * Variants alternate over several rounds. Client and server share the process, so the process's
 * CPU time (user + system) during a run is the whole cost of the work; figures are per CPU
 * second, best round of each, which holds up on a busy shared machine where wall-clock time does
 * not (wall-clock medians are printed too).
 */
import { createServer, connect as netConnect } from "node:net";
import type { AddressInfo, Socket } from "node:net";
import type { IPushProducer } from "@twisted-ts/internet/interfaces";
import { ClientFactory, Factory, Protocol } from "@twisted-ts/internet/protocol";
import { NodeReactor } from "@twisted-ts/internet/reactor";

const quick = process.argv.includes("--quick");
const BULK = (quick ? 32 : 128) * 1024 * 1024;
const CHUNK = 64 * 1024;
const TRIPS = quick ? 2000 : 5000;
const MSG = Buffer.alloc(64, 0x41);
const ROUNDS = quick ? 2 : 4;

interface Timed {
  wall: number;
  cpu: number;
}

function timer(): () => Timed {
  const w = process.hrtime.bigint();
  const c = process.cpuUsage();
  return () => {
    const d = process.cpuUsage(c);
    return { wall: Number(process.hrtime.bigint() - w) / 1e9, cpu: (d.user + d.system) / 1e6 };
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

// --- bare net ----------------------------------------------------------------------------

async function bareBulk(): Promise<Timed> {
  const chunk = Buffer.alloc(CHUNK, 0x5a);
  const server = createServer((s) => {
    let sent = 0;
    const pump = (): void => {
      while (sent < BULK) {
        sent += CHUNK;
        if (!s.write(chunk)) {
          s.once("drain", pump);
          return;
        }
      }
      s.end();
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const stop = timer();
  await new Promise<void>((resolve) => {
    const c = netConnect(port, "127.0.0.1");
    let got = 0;
    c.on("data", (d: Buffer) => {
      got += d.length;
    });
    c.on("end", () => {
      if (got !== BULK) throw new Error(`bare bulk got ${got}`);
      c.destroy();
      resolve();
    });
  });
  const t = stop();
  server.close();
  return t;
}

async function bareTrips(): Promise<Timed> {
  const server = createServer((s) => {
    s.setNoDelay(true);
    s.on("data", (d: Buffer) => s.write(d));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const c: Socket = netConnect(port, "127.0.0.1");
  c.setNoDelay(true);
  await new Promise<void>((r) => c.once("connect", () => r()));
  const stop = timer();
  await new Promise<void>((resolve) => {
    let n = 0;
    let pending = 0;
    c.on("data", (d: Buffer) => {
      pending += d.length;
      while (pending >= MSG.length) {
        pending -= MSG.length;
        n += 1;
        if (n === TRIPS) return resolve();
        c.write(MSG);
      }
    });
    c.write(MSG);
  });
  const t = stop();
  c.destroy();
  server.close();
  return t;
}

// --- through the reactor -------------------------------------------------------------------

class BulkSender extends Protocol implements IPushProducer {
  private sent = 0;
  private paused = false;
  private readonly chunk = Buffer.alloc(CHUNK, 0x5a);
  override connectionMade(): void {
    this.transport.registerProducer(this, true);
    this.resumeProducing();
  }
  pauseProducing(): void {
    this.paused = true;
  }
  resumeProducing(): void {
    this.paused = false;
    while (!this.paused && this.sent < BULK) {
      this.sent += CHUNK;
      this.transport.write(this.chunk);
    }
    if (this.sent >= BULK && !this.paused) {
      this.transport.unregisterProducer();
      this.transport.loseConnection();
    }
  }
  stopProducing(): void {
    this.paused = true;
  }
}

async function protocolBulk(r: NodeReactor): Promise<Timed> {
  const port = r.listenTCP(0, Factory.forProtocol(BulkSender), 50, "127.0.0.1");
  await port.whenListening();
  const stop = timer();
  await new Promise<void>((resolve) => {
    class Counter extends Protocol {
      got = 0;
      override dataReceived(d: Uint8Array): void {
        this.got += d.length;
      }
      override connectionLost(): void {
        if (this.got !== BULK) throw new Error(`protocol bulk got ${this.got}`);
        resolve();
      }
    }
    r.connectTCP("127.0.0.1", port.getHost().port, ClientFactory.forProtocol(Counter));
  });
  const t = stop();
  await port.stopListening();
  return t;
}

class EchoServer extends Protocol {
  override connectionMade(): void {
    this.transport.setTcpNoDelay(true);
  }
  override dataReceived(d: Uint8Array): void {
    this.transport.write(d);
  }
}

async function protocolTrips(r: NodeReactor): Promise<Timed> {
  const port = r.listenTCP(0, Factory.forProtocol(EchoServer), 50, "127.0.0.1");
  await port.whenListening();
  let stop: () => Timed = timer();
  let pinger: Protocol | null = null;
  await new Promise<void>((resolve) => {
    class Pinger extends Protocol {
      n = 0;
      pending = 0;
      override connectionMade(): void {
        pinger = this;
        this.transport.setTcpNoDelay(true);
        stop = timer();
        this.transport.write(MSG);
      }
      override dataReceived(d: Uint8Array): void {
        this.pending += d.length;
        while (this.pending >= MSG.length) {
          this.pending -= MSG.length;
          this.n += 1;
          if (this.n === TRIPS) return resolve();
          this.transport.write(MSG);
        }
      }
    }
    r.connectTCP("127.0.0.1", port.getHost().port, ClientFactory.forProtocol(Pinger));
  });
  const t = stop();
  (pinger as Protocol | null)?.transport.abortConnection();
  await port.stopListening();
  return t;
}

async function main(): Promise<void> {
  const r = new NodeReactor();
  const res = { bareBulk: [] as Timed[], protoBulk: [] as Timed[], bareTrips: [] as Timed[], protoTrips: [] as Timed[] };
  // Warm up both paths once.
  await bareTrips();
  await protocolTrips(r);
  // Collect garbage before each measurement (with --expose-gc) and alternate which variant goes
  // first, so neither pays for the other's garbage.
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
  const run = async <T>(f: () => Promise<T>): Promise<T> => {
    gc();
    return f();
  };
  for (let i = 0; i < ROUNDS; i++) {
    const bulk = [async () => res.bareBulk.push(await run(bareBulk)), async () => res.protoBulk.push(await run(() => protocolBulk(r)))];
    const trips = [async () => res.bareTrips.push(await run(bareTrips)), async () => res.protoTrips.push(await run(() => protocolTrips(r)))];
    if (i % 2 === 1) {
      bulk.reverse();
      trips.reverse();
    }
    for (const f of [...bulk, ...trips]) await f();
  }
  const best = (ts: Timed[], work: number): number => Math.max(...ts.map((t) => work / t.cpu));
  const wall = (ts: Timed[], work: number): number => median(ts.map((t) => work / t.wall));
  const mb = BULK / 1e6;
  const bb = best(res.bareBulk, mb);
  const pb = best(res.protoBulk, mb);
  const bt = best(res.bareTrips, TRIPS);
  const pt = best(res.protoTrips, TRIPS);
  console.log(`node ${process.version}, ${ROUNDS} rounds`);
  console.log("| case | bare net | Protocol | Protocol / bare | wall-clock bare / Protocol (median) |");
  console.log("|---|---:|---:|---:|---:|");
  console.log(
    `| bulk ${BULK >> 20} MiB in 64 KiB writes, MB per CPU s | ${bb.toFixed(0)} | ${pb.toFixed(0)} | ${(pb / bb).toFixed(2)}x | ` +
      `${wall(res.bareBulk, mb).toFixed(0)} / ${wall(res.protoBulk, mb).toFixed(0)} MB/s |`,
  );
  console.log(
    `| 64-byte round trips (TCP_NODELAY), trips per CPU s | ${bt.toFixed(0)} | ${pt.toFixed(0)} | ${(pt / bt).toFixed(2)}x | ` +
      `${wall(res.bareTrips, TRIPS).toFixed(0)} / ${wall(res.protoTrips, TRIPS).toFixed(0)} trips/s |`,
  );
}

await main();
