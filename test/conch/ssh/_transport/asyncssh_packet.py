# Cross-check helper for ciphers.test.ts: reads JSON from stdin, answers JSON on stdout.
# {"cipher", "mac", "key", "iv", "macKey", "blockSize", "open": [[seq, wireHex]], "seal": [[seq, plainHex]]}
# "open": decrypts packets made by twisted-ts and returns their payloads;
# "seal": encrypts `padding_length || payload || padding` (length prepended here) and returns the wire bytes.
import json, sys, struct, warnings
warnings.simplefilter("ignore")
from asyncssh.encryption import get_encryption
from asyncssh.mac import get_mac_params

req = json.load(sys.stdin)
cipher = req["cipher"].encode()
mac = req["mac"].encode()
aead = cipher.endswith(b"@openssh.com")
etm = aead or mac.endswith(b"-etm@openssh.com")
key, iv, mac_key = (bytes.fromhex(req[k]) for k in ("key", "iv", "macKey"))
mac_len = 16 if aead else get_mac_params(mac)[1]
bs = req["blockSize"]

dec = get_encryption(cipher, key, iv, mac, mac_key, etm)
opened = []
for seq, wire_hex in req["open"]:
    wire = bytes.fromhex(wire_hex)
    end = len(wire) - mac_len
    first_len = 4 if etm else bs
    first, header = dec.decrypt_header(seq, wire[:first_len], 4)
    body = dec.decrypt_packet(seq, first, wire[first_len:end], 4, wire[end:])
    if body is None:
        opened.append(None)
        continue
    pad = body[0]
    opened.append(body[1:len(body) - pad].hex())

enc = get_encryption(cipher, key, iv, mac, mac_key, etm)
sealed = []
for seq, plain_hex in req["seal"]:
    plain = bytes.fromhex(plain_hex)
    header = struct.pack(">I", len(plain))
    ct, tag = enc.encrypt_packet(seq, header, plain)
    sealed.append((ct + tag).hex())

json.dump({"open": opened, "seal": sealed}, sys.stdout)
