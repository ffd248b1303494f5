/**
 * The SOCKS4/4a/5 server handshake of dynamic forwarding (ssh/_forwarding/socks.ts), fed whole,
 * split at every point, and one byte at a time.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { error } from "@twisted-ts/conch";
import { forwarding } from "@twisted-ts/conch/ssh";

type Step = forwarding.SOCKSStep;

const bytes = (...parts: Array<number[] | string | Uint8Array>): Uint8Array =>
  Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : Buffer.from(p))));

/**
 * Feeds `input` in the pieces `cuts` makes and returns every step; what is fed after the connect
 * step (which the caller hands to the channel) is added to its `rest`.
 */
function feed(input: Uint8Array, cuts: number[]): Step[] {
  const p = new forwarding.SOCKSServerParser();
  const steps: Step[] = [];
  let at = 0;
  for (const cut of [...cuts, input.length]) {
    const piece = input.subarray(at, cut);
    const last = steps.at(-1);
    if (last?.kind === "connect") steps[steps.length - 1] = { ...last, rest: bytes(last.rest, piece) };
    else steps.push(...p.feed(piece));
    at = cut;
  }
  return steps;
}

/** The steps for `input` fed whole, split at each offset, and byte by byte; all must agree. */
function feedEveryWay(input: Uint8Array): Step[] {
  const whole = feed(input, []);
  const norm = (s: Step[]): unknown => JSON.parse(JSON.stringify(s, (_k, v: unknown) => (v instanceof Uint8Array ? [...v] : v instanceof Error ? v.message : v)));
  for (let i = 1; i < input.length; i++) assert.deepEqual(norm(feed(input, [i])), norm(whole), `split at ${i}`);
  assert.deepEqual(norm(feed(input, [...Array(input.length).keys()].slice(1))), norm(whole), "byte at a time");
  return whole;
}

function connectOf(steps: Step[]): { request: forwarding.SOCKSConnectRequest; rest: string } {
  const last = steps.at(-1);
  assert.ok(last !== undefined && last.kind === "connect", `a connect step, got ${JSON.stringify(last)}`);
  return { request: last.request, rest: Buffer.from(last.rest).toString("latin1") };
}

function failOf(steps: Step[]): { reply: number[] | undefined; message: string } {
  const last = steps.at(-1);
  assert.ok(last !== undefined && last.kind === "fail", `a fail step, got ${JSON.stringify(last)}`);
  assert.equal(last.error.code, "ERR_SOCKS_BAD_REQUEST");
  return { reply: last.reply === undefined ? undefined : [...last.reply], message: last.error.message };
}

test("SOCKS4: a CONNECT to an IPv4 address, with a user id and data after it", () => {
  const steps = feedEveryWay(bytes([4, 1, 0x1f, 0x90, 10, 0, 0, 7], "alice", [0], "GET /"));
  assert.deepEqual(connectOf(steps), { request: { version: 4, host: "10.0.0.7", port: 8080 }, rest: "GET /" });
});

test("SOCKS4a: 0.0.0.x names a host name, sent on unresolved", () => {
  const steps = feedEveryWay(bytes([4, 1, 0, 80, 0, 0, 0, 1], [0], "example.internal", [0]));
  assert.deepEqual(connectOf(steps), { request: { version: 4, host: "example.internal", port: 80 }, rest: "" });
});

test("SOCKS5: the no-auth method is chosen, then a CONNECT to an IPv4 address", () => {
  const steps = feedEveryWay(bytes([5, 2, 2, 0], [5, 1, 0, 1, 127, 0, 0, 1, 0, 22], "SSH-2.0-x\r\n"));
  assert.equal(steps.length, 2);
  assert.deepEqual(steps[0], { kind: "send", data: Uint8Array.of(5, 0) });
  assert.deepEqual(connectOf(steps), { request: { version: 5, host: "127.0.0.1", port: 22 }, rest: "SSH-2.0-x\r\n" });
});

test("SOCKS5: a domain name is sent on unresolved", () => {
  const steps = feedEveryWay(bytes([5, 1, 0], [5, 1, 0, 3, 11], "example.com", [1, 187]));
  assert.deepEqual(connectOf(steps).request, { version: 5, host: "example.com", port: 443 });
});

test("SOCKS5: an IPv6 address is written in RFC 5952 form", () => {
  const v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
  const steps = feedEveryWay(bytes([5, 1, 0], [5, 1, 0, 4], v6, [0, 80]));
  assert.deepEqual(connectOf(steps).request, { version: 5, host: "2001:db8::1", port: 80 });
  assert.equal(forwarding.formatIPv6(Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])), "::1");
  assert.equal(forwarding.formatIPv6(Uint8Array.from([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2])), "fe80::1:0:0:2");
  assert.equal(forwarding.formatIPv6(Uint8Array.from([0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 5])), "1:0:2:0:3:0:4:5");
});

test("the success and failure replies of each version", () => {
  const p4 = new forwarding.SOCKSServerParser();
  p4.feed(bytes([4, 1, 0, 80, 1, 2, 3, 4, 0]));
  assert.deepEqual([...p4.successReply()], [0, 90, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...p4.failureReply(error.OPEN_CONNECT_FAILED, "Connection refused")], [0, 91, 0, 0, 0, 0, 0, 0]);
  const p5 = new forwarding.SOCKSServerParser();
  p5.feed(bytes([5, 1, 0, 5, 1, 0, 1, 1, 2, 3, 4, 0, 80]));
  assert.deepEqual([...p5.successReply()], [5, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
  assert.equal(p5.failureReply(error.OPEN_CONNECT_FAILED, "Connection refused")[1], forwarding.SOCKS5_CONNECTION_REFUSED);
  assert.equal(p5.failureReply(error.OPEN_CONNECT_FAILED, "No route to host")[1], forwarding.SOCKS5_HOST_UNREACHABLE);
  assert.equal(p5.failureReply(error.OPEN_ADMINISTRATIVELY_PROHIBITED, "open failed")[1], forwarding.SOCKS5_NOT_ALLOWED);
  assert.equal(p5.failureReply(undefined)[1], forwarding.SOCKS5_GENERAL_FAILURE);
});

test("an unknown SOCKS version is dropped without a reply", () => {
  assert.deepEqual(failOf(feedEveryWay(bytes("GET / HTTP/1.1\r\n"))), { reply: undefined, message: "unsupported SOCKS version 71" });
});

test("SOCKS4: BIND is refused with 91 as soon as the command byte arrives", () => {
  assert.deepEqual(failOf(feed(bytes([4, 2]), [])).reply, [0, 91, 0, 0, 0, 0, 0, 0]);
});

test("SOCKS4: a user id past SOCKS_MAX_USERID is refused before its end arrives", () => {
  const head = bytes([4, 1, 0, 80, 1, 2, 3, 4]);
  const atBound = feed(bytes(head, "u".repeat(forwarding.SOCKS_MAX_USERID)), []);
  assert.deepEqual(atBound, [], "a user id of exactly the bound waits for its NUL");
  const over = failOf(feedEveryWay(bytes(head, "u".repeat(forwarding.SOCKS_MAX_USERID + 1))));
  assert.deepEqual(over, { reply: [0, 91, 0, 0, 0, 0, 0, 0], message: "SOCKS4 user id too long" });
  assert.equal(connectOf(feed(bytes(head, "u".repeat(forwarding.SOCKS_MAX_USERID), [0]), [])).request.host, "1.2.3.4");
});

test("SOCKS4a: a host name past SOCKS_MAX_HOSTNAME, empty, or with control bytes is refused", () => {
  const head = bytes([4, 1, 0, 80, 0, 0, 0, 9], [0]);
  assert.equal(failOf(feed(bytes(head, "h".repeat(forwarding.SOCKS_MAX_HOSTNAME + 1)), [])).message, "SOCKS4a host name too long");
  assert.match(failOf(feed(bytes(head, [0]), [])).message, /host name empty/);
  assert.match(failOf(feed(bytes(head, "evil\nhost", [0]), [])).message, /not printable/);
});

test("SOCKS5: a greeting without the no-auth method gets 'no acceptable method' (0xff)", () => {
  assert.deepEqual(failOf(feedEveryWay(bytes([5, 1, 2]))).reply, [5, 0xff]);
  assert.deepEqual(failOf(feedEveryWay(bytes([5, 0]))).reply, [5, 0xff]);
});

test("SOCKS5: BIND and UDP ASSOCIATE are refused with 'command not supported'", () => {
  for (const cmd of [2, 3]) {
    const f = failOf(feedEveryWay(bytes([5, 1, 0], [5, cmd, 0, 1, 1, 2, 3, 4, 0, 80])));
    assert.equal(f.reply?.[1], forwarding.SOCKS5_COMMAND_NOT_SUPPORTED);
  }
});

test("SOCKS5: an unknown address type, a bad version or reserved byte, an empty name or port 0 is refused", () => {
  assert.equal(failOf(feed(bytes([5, 1, 0], [5, 1, 0, 9]), [])).reply?.[1], forwarding.SOCKS5_ADDRESS_TYPE_NOT_SUPPORTED);
  assert.equal(failOf(feed(bytes([5, 1, 0], [4, 1, 0, 1]), [])).reply?.[1], forwarding.SOCKS5_GENERAL_FAILURE);
  assert.equal(failOf(feed(bytes([5, 1, 0], [5, 1, 7, 1]), [])).reply?.[1], forwarding.SOCKS5_GENERAL_FAILURE);
  assert.equal(failOf(feed(bytes([5, 1, 0], [5, 1, 0, 3, 0, 0, 80]), [])).reply?.[1], forwarding.SOCKS5_GENERAL_FAILURE);
  assert.equal(failOf(feed(bytes([5, 1, 0], [5, 1, 0, 1, 1, 2, 3, 4, 0, 0]), [])).reply?.[1], forwarding.SOCKS5_GENERAL_FAILURE);
});

test("after the request, the parser takes nothing more (the rest was handed over)", () => {
  const p = new forwarding.SOCKSServerParser();
  assert.equal(p.feed(bytes([4, 1, 0, 80, 1, 2, 3, 4, 0]))[0]?.kind, "connect");
  assert.deepEqual(p.feed(bytes("more")), []);
});

test("what the parser holds stays within the protocol's bounds, whatever arrives", () => {
  // SOCKS5 lengths are one byte each; SOCKS4 fields are bounded: a stream of junk ends in a failure.
  const junk = new Uint8Array(4096).fill(0x41);
  assert.equal(feed(bytes([4, 1, 0, 80, 1, 2, 3, 4], junk), []).at(-1)?.kind, "fail");
  assert.equal(feed(bytes([4, 1, 0, 80, 0, 0, 0, 1], [0], junk), []).at(-1)?.kind, "fail");
});
