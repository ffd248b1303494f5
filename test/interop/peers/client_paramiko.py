"""Paramiko as a client of OUR SSH server (test/interop/server_paramiko.test.ts).

    python3 client_paramiko.py '<json spec>'

spec: {"port", "user", "key", "password", "known_hosts", "scenario": "unix" | "pty"}.
Prints one JSON object with what each step saw; the test makes the assertions.
"""
import hashlib
import json
import os
import sys
import threading
import warnings

warnings.filterwarnings("ignore")
import paramiko  # noqa: E402

spec = json.loads(sys.argv[1])


def connect(auth):
    c = paramiko.SSHClient()
    c.load_host_keys(spec["known_hosts"])  # pinned; RejectPolicy refuses anything else
    c.set_missing_host_key_policy(paramiko.RejectPolicy())
    kw = dict(hostname="127.0.0.1", port=spec["port"], username=spec["user"],
              allow_agent=False, look_for_keys=False, timeout=10)
    if auth == "key":
        kw["key_filename"] = spec["key"]
    else:
        kw["password"] = spec["password"]
    c.connect(**kw)
    return c


def run(c, command, stdin=b"", env=None):
    ch = c.get_transport().open_session()
    if env:
        ch.update_environment(env)
    ch.exec_command(command)
    def feed():
        if stdin:
            ch.sendall(stdin)
        ch.shutdown_write()

    # Input goes in from a thread while output is read, as a real client would.
    writer = threading.Thread(target=feed)
    writer.start()
    # Paramiko buffers stderr without bound, so reading stdout to EOF first cannot deadlock.
    out = ch.makefile("rb").read()
    err = ch.makefile_stderr("rb").read()
    writer.join()
    status = ch.recv_exit_status()
    ch.close()
    return {"stdout": out.decode("utf-8", "replace"), "stderr": err.decode("utf-8", "replace"), "status": status, "bytes": len(out), "sha256": hashlib.sha256(bytes(out)).hexdigest()}


result = {}
if spec["scenario"] == "unix":
    c = connect("key")
    result["hostkey"] = c.get_transport().get_remote_server_key().get_name()
    result["exec"] = run(c, 'read line; echo "got $line"; echo oops >&2; exit 3', b"hello\n")
    result["missing"] = run(c, "no-such-command-paramiko")
    result["env"] = run(c, 'echo "$GREETING"', env={"GREETING": "from paramiko"})
    blob = os.urandom(2 * 1024 * 1024)
    result["bulk_sent_sha256"] = hashlib.sha256(blob).hexdigest()
    result["bulk"] = run(c, "cat", blob)
    # Ten channels at once on one connection.
    outs = {}

    def one(i):
        outs[i] = run(c, "echo channel-%d" % i)["stdout"]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    result["parallel"] = [outs[i] for i in range(10)]
    c.close()
    c2 = connect("password")
    result["password"] = run(c2, "echo by-password")
    c2.close()
else:
    c = connect("key")
    ch = c.get_transport().open_session()
    ch.get_pty(term="vt220", width=100, height=30)
    ch.update_environment({"TT_VAR": "yes"})
    ch.invoke_shell()
    ch.sendall(b"hello pty\r")
    buf = b""
    while b"echo: hello pty" not in buf:
        d = ch.recv(4096)
        if not d:
            break
        buf += d
    ch.sendall(b"exit\r")
    result["shell"] = {"output": buf.decode("utf-8", "replace"), "status": ch.recv_exit_status()}
    c.close()

print(json.dumps(result))
