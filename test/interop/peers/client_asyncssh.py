"""AsyncSSH as a client of OUR SSH server (test/interop/server_asyncssh.test.ts).

    python3 client_asyncssh.py '<json spec>'

spec: {"port", "user", "key", "password", "known_hosts", "scenario": "unix" | "pty"}.
Prints one JSON object with what each step saw; the test makes the assertions.
"""
import asyncio
import hashlib
import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")
import asyncssh  # noqa: E402

spec = json.loads(sys.argv[1])


def options(auth):
    kw = dict(port=spec["port"], username=spec["user"], known_hosts=spec["known_hosts"], agent_path=None)
    if auth == "key":
        kw.update(client_keys=[spec["key"]], password=None, preferred_auth="publickey")
    elif auth == "password":
        kw.update(client_keys=None, password=spec["password"], preferred_auth="password")
    else:
        kw.update(client_keys=None, password=spec["password"], preferred_auth="keyboard-interactive")
    return kw


def res(r):
    out = r.stdout if isinstance(r.stdout, (bytes, bytearray)) else (r.stdout or "").encode()
    err = r.stderr if isinstance(r.stderr, (bytes, bytearray)) else (r.stderr or "").encode()
    return {"stdout": out.decode("utf-8", "replace"), "stderr": err.decode("utf-8", "replace"),
            "status": r.exit_status, "signal": r.exit_signal[0] if r.exit_signal else None,
            "bytes": len(out), "sha256": hashlib.sha256(out).hexdigest()}


async def main():
    result = {}
    if spec["scenario"] == "unix":
        async with asyncssh.connect("127.0.0.1", **options("key")) as conn:
            result["exec"] = res(await conn.run('read line; echo "got $line"; echo oops >&2; exit 3', input="hello\n"))
            result["missing"] = res(await conn.run("no-such-command-asyncssh"))
            result["signal"] = res(await conn.run("kill -TERM $$"))
            result["env"] = res(await conn.run('echo "$GREETING"', env={"GREETING": "from asyncssh"}))
            blob = os.urandom(2 * 1024 * 1024)
            result["bulk_sent_sha256"] = hashlib.sha256(blob).hexdigest()
            result["bulk"] = res(await conn.run("cat", input=blob, encoding=None))
            rs = await asyncio.gather(*[conn.run("echo channel-%d" % i) for i in range(20)])
            result["parallel"] = [r.stdout for r in rs]
            # A signal request (RFC 4254 §6.9) reaches the running command.
            proc = await conn.create_process("echo started; exec sleep 20")
            await proc.stdout.readline()
            proc.send_signal("TERM")
            done = await proc.wait(check=False)
            result["sent_signal"] = {"signal": done.exit_signal[0] if done.exit_signal else None, "status": done.exit_status}
            # A shell without a pty: commands on stdin.
            result["shell"] = res(await conn.run(input="echo from-shell\nexit 4\n"))
        for auth in ("password", "kbdint"):
            async with asyncssh.connect("127.0.0.1", **options(auth)) as conn:
                result[auth] = res(await conn.run("echo by-%s" % auth))
    else:
        async with asyncssh.connect("127.0.0.1", **options("key")) as conn:
            proc = await conn.create_process(term_type="xterm", term_size=(120, 40), env={"TT_VAR": "yes"})
            proc.stdin.write("hello pty\r")
            out = await proc.stdout.readuntil("echo: hello pty")
            proc.stdin.write("exit\r")
            done = await proc.wait(check=False)
            result["shell"] = {"output": out, "status": done.exit_status}
    print(json.dumps(result))


asyncio.run(main())
