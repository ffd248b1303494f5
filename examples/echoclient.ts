/**
 * A port of Twisted's echo client howto (docs/core/examples/echoclient.py): connects, says
 * "hello, world!", prints the reply, and stops the reactor when the connection ends.
 *
 *     npx tsc -b && node examples/dist/echoclient.js [port] [host]
 *
 * Run examples/dist/echoserv.js first (port 8000, host 127.0.0.1 by default). Without a server
 * it prints "Connection failed - goodbye!".
 */
import { reactor } from "@twisted-ts/internet";
import type { Failure } from "@twisted-ts/internet/failure";
import type { IConnector } from "@twisted-ts/internet/interfaces";
import { ClientFactory, Protocol } from "@twisted-ts/internet/protocol";

/** Once connected, send a message, then print the result. */
class EchoClient extends Protocol {
  override connectionMade(): void {
    this.transport.write("hello, world!");
  }

  /** As soon as any data is received, write it back. */
  override dataReceived(data: Uint8Array): void {
    console.log("Server said:", Buffer.from(data).toString());
    this.transport.loseConnection();
  }
}

class EchoFactory extends ClientFactory {
  override protocol = EchoClient;

  override clientConnectionFailed(_connector: IConnector, _reason: Failure): void {
    console.log("Connection failed - goodbye!");
    reactor.stop();
  }

  override clientConnectionLost(_connector: IConnector, _reason: Failure): void {
    console.log("Connection lost - goodbye!");
    reactor.stop();
  }
}

/** This connects to the echo server on port 8000. */
function main(): void {
  const f = new EchoFactory();
  reactor.connectTCP(process.argv[3] ?? "127.0.0.1", Number(process.argv[2] ?? 8000), f);
  void reactor.run();
}

main();
