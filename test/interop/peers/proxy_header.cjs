// ssh ProxyCommand for tests: connects to 127.0.0.1:<port>, sends a PROXY protocol v1 header
// claiming the client is <source address>, then relays stdin/stdout. Usage: proxy_header.cjs port source
const net = require("node:net");
const [port, source] = process.argv.slice(2);
const family = net.isIPv6(source) ? "TCP6" : "TCP4";
const dest = family === "TCP6" ? "::1" : "127.0.0.1";
const sock = net.connect(Number(port), "127.0.0.1", () => {
  sock.write(`PROXY ${family} ${source} ${dest} 40000 ${port}\r\n`);
  process.stdin.pipe(sock);
  sock.pipe(process.stdout);
});
sock.on("error", () => process.exit(1));
sock.on("close", () => process.exit(0));
