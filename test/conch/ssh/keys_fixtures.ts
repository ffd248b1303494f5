/** Keys shared by the keys tests: the Conch client howto's RSA pair, read from the reference page. */
import { readFileSync } from "node:fs";

const HOWTO = "/work/shared/reference/conch_client.xhtml";

function howto(): { publicKey: string; privateKey: string } {
  let page: string;
  try {
    page = readFileSync(HOWTO, "utf8");
  } catch {
    return { publicKey: HOWTO_PUBLIC, privateKey: HOWTO_PRIVATE };
  }
  const pub = /publicKey = '([^']+)'/s.exec(page)?.[1]?.replace(/\\\n/g, "") ?? HOWTO_PUBLIC;
  const priv = /privateKey = """([^"]+)"""/s.exec(page)?.[1] ?? HOWTO_PRIVATE;
  return { publicKey: pub, privateKey: priv };
}

/** The howto's key pair, as printed there (fallback copies below for checkouts without the page). */
const HOWTO_PUBLIC =
  "ssh-rsa AAAAB3NzaC1yc2EAAAABIwAAAGEArzJx8OYOnJmzf4tfBEvLi8DVPrJ3/c9k2I/Az64fxjHf9imyRJbixtQhlH9lfNjUIx+4LmrJH5QNRsFporcHDKOTwTTYLh5KmRpslkYHRivcJSkbh/C+BR3utDS555mV";
const HOWTO_PRIVATE = `-----BEGIN RSA PRIVATE KEY-----
MIIByAIBAAJhAK8ycfDmDpyZs3+LXwRLy4vA1T6yd/3PZNiPwM+uH8Yx3/YpskSW
4sbUIZR/ZXzY1CMfuC5qyR+UDUbBaaK3Bwyjk8E02C4eSpkabJZGB0Yr3CUpG4fw
vgUd7rQ0ueeZlQIBIwJgbh+1VZfr7WftK5lu7MHtqE1S1vPWZQYE3+VUn8yJADyb
Z4fsZaCrzW9lkIqXkE3GIY+ojdhZhkO1gbG0118sIgphwSWKRxK0mvh6ERxKqIt1
xJEJO74EykXZV4oNJ8sjAjEA3J9r2ZghVhGN6V8DnQrTk24Td0E8hU8AcP0FVP+8
PQm/g/aXf2QQkQT+omdHVEJrAjEAy0pL0EBH6EVS98evDCBtQw22OZT52qXlAwZ2
gyTriKFVoqjeEjt3SZKKqXHSApP/AjBLpF99zcJJZRq2abgYlf9lv1chkrWqDHUu
DZttmYJeEfiFBBavVYIF1dOlZT0G8jMCMBc7sOSZodFnAiryP+Qg9otSBjJ3bQML
pSTqy7c3a2AScC/YyOwkDaICHnnD3XyjMwIxALRzl0tQEKMXs6hH8ToUdlLROCrP
EhQ0wahUTCk1gKA4uPD6TMTChavbh4K63OvbKg==
-----END RSA PRIVATE KEY-----
`;

export const { publicKey: howtoPublicKey, privateKey: howtoPrivateKey } = howto();

/** Fingerprints of the howto key, as Twisted 22.4 computes them. */
export const HOWTO_MD5 = "3d:13:5f:cb:c9:79:8a:93:06:27:65:bc:3d:0b:8f:af";
export const HOWTO_SHA256_TWISTED = "ryaugIFT0B8ItuszldMEU7q14rG/wj9HkRosMeBWkts=";

/** Twisted's `Key.sign(b"hello")` with the howto key (ssh-rsa, PKCS#1 v1.5 is deterministic). */
export const HOWTO_SIG_HELLO =
  "000000077373682d7273610000006063616e77c0a2ce83e211840d8124cebbba1f7bade63a5e9772d45844b0d639a305b3ea2bd8a9c53b19d9a546bd2260e56932506b07ffb26d18eea698a57498c296fe76842905237c00a595b4ad6a2ec6efb328ae9cc366b583727b1d1c785671";

export const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
export const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "hex"));
