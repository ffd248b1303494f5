/**
 * The SSH transport borrows its input (`borrowsReceivedData`): a TCP connection hands it views of
 * one read buffer that is overwritten by the next read. The in-memory loopback does the same for
 * a borrowing protocol, scribbling over the buffer after every read; here the reads are made
 * small and awkward so that packets, lengths and MACs straddle them, and every message must still
 * arrive intact, for every cipher.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { borrowsReceivedData } from "@twisted-ts/internet/interfaces";
import { transport } from "@twisted-ts/conch/ssh";
import { EchoService, sshPair } from "./_sshpair.js";

test("the SSH transport declares that it borrows what dataReceived is given", () => {
  assert.equal(borrowsReceivedData(new transport.SSHClientTransport()), true);
  assert.equal(borrowsReceivedData(new transport.SSHServerTransport()), true);
});

const CASES: Array<[cipher: string, mac: string]> = [
  ["chacha20-poly1305@openssh.com", "hmac-sha2-256"],
  ["aes128-gcm@openssh.com", "hmac-sha2-256"],
  ["aes128-ctr", "hmac-sha2-256-etm@openssh.com"],
  ["aes256-ctr", "hmac-sha2-512"],
  ["aes128-cbc", "hmac-sha1"],
];

for (const [cipher, mac] of CASES) {
  for (const readSize of [1, 7, 1000, 4099, 40_000]) {
    test(`${cipher} / ${mac}: messages arrive intact through scribbled ${readSize}-byte reads`, () => {
      const p = sshPair({
        greet: false,
        configure: (c, s) => {
          c.supportedCiphers = [cipher];
          c.supportedMACs = [mac];
          c.supportedKeyExchanges = ["curve25519-sha256"];
          s.supportedCiphers = [cipher];
          s.supportedMACs = [mac];
        },
      });
      p.clientTransport.readSize = readSize;
      p.serverTransport.readSize = readSize;
      p.pump.flush();
      assert.equal(p.client.disconnectReason, undefined, p.client.disconnectReason?.message);
      assert.equal(p.client.algorithms?.cipherCS, cipher);
      const clientSvc = new EchoService();
      p.client.requestService(clientSvc);
      p.pump.flush();
      // Sizes around block and read boundaries, and packets far larger than one read; big ones in
      // a row are gathered in the same reused memory, and each must still arrive as sent.
      const sizes = [0, 1, 15, 16, 17, 255, 999, 1000, 1001, 4096, 32_768, 32_768, 32_700, 70_000];
      const sent = sizes.map((n, i) => Uint8Array.from({ length: n }, (_, j) => (j * 31 + i * 7) & 0xff));
      // Several messages per pump step, so that reads hold the end of one and the start of the next.
      for (const [i, data] of sent.entries()) p.client.sendPacket(60 + (i % 10), data);
      p.pump.flush();
      for (const side of [p.client, p.server]) {
        assert.equal(side.disconnectReason, undefined, side.disconnectReason?.message);
      }
      assert.equal(clientSvc.received.length, sent.length);
      for (const [i, [num, data]] of clientSvc.received.entries()) {
        assert.equal(num, 60 + (i % 10));
        assert.ok(Buffer.from(data).equals(sent[i]!), `message ${i} (${sizes[i]} bytes) came back changed`);
      }
    });
  }
}
