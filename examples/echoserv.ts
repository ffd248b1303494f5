/**
 * A port of Twisted's echo server howto (docs/core/examples/echoserv.py): every byte a client
 * sends comes back to it.
 *
 *     npx tsc -b && node examples/dist/echoserv.js [port]
 *
 * The port defaults to 8000 (pass 0 for any free port; the chosen one is printed). Stop it with
 * Ctrl-C: the reactor runs its shutdown triggers and closes the listening port.
 */
import { reactor } from "@twisted-ts/internet";
import { Factory, Protocol } from "@twisted-ts/internet/protocol";

/** This is just about the simplest possible protocol. */
class Echo extends Protocol {
  /** As soon as any data is received, write it back. */
  override dataReceived(data: Uint8Array): void {
    this.transport.write(data);
  }
}

function main(): void {
  const f = new Factory();
  f.protocol = Echo;
  const port = reactor.listenTCP(Number(process.argv[2] ?? 8000), f, 50, "127.0.0.1");
  void port.whenListening().addCallback(() => {
    console.log(`echo server listening on 127.0.0.1:${port.getHost().port}`);
  });
  void reactor.run();
}

main();
