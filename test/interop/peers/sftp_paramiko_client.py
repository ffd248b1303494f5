"""Paramiko's SFTPClient against OUR server's sftp subsystem (test/interop/sftp_server_paramiko.test.ts).

    python3 sftp_paramiko_client.py '<json spec>'

spec: {"port", "user", "key", "known_hosts", "scenario": "<local folder>"}; the local folder holds
src.bin. Remote paths are relative to the session's start directory. Prints one JSON object with
what each step saw; the test makes the assertions.
"""
import json
import os
import stat
import sys
import warnings

warnings.filterwarnings("ignore")
import paramiko  # noqa: E402

spec = json.loads(sys.argv[1])
local = spec["scenario"]
c = paramiko.SSHClient()
c.load_host_keys(spec["known_hosts"])
c.set_missing_host_key_policy(paramiko.RejectPolicy())
c.connect(hostname="127.0.0.1", port=spec["port"], username=spec["user"], key_filename=spec["key"],
          allow_agent=False, look_for_keys=False, timeout=10)
sftp = c.open_sftp()
out = {}
src = os.path.join(local, "src.bin")
out["put_size"] = sftp.put(src, "p-up.bin").st_size
# get() prefetches: it sends a READ for every block of the file before reading any reply.
sftp.get("p-up.bin", os.path.join(local, "p-down.bin"))
sftp.mkdir("pd", mode=0o750)
sftp.rename("p-up.bin", "pd/moved.bin")
sftp.symlink("pd/moved.bin", "plink")
out["readlink"] = sftp.readlink("plink")
sftp.chmod("pd/moved.bin", 0o600)
out["mode"] = stat.S_IMODE(sftp.stat("pd/moved.bin").st_mode)
out["lstat_is_link"] = stat.S_ISLNK(sftp.lstat("plink").st_mode)
out["listdir"] = sorted(sftp.listdir("."))
out["listdir_attr"] = sorted((a.filename, a.st_size) for a in sftp.listdir_attr("pd"))
out["normalize"] = sftp.normalize(".")
with sftp.open("pd/w.txt", "w") as f:
    f.write(b"hello ")
with sftp.open("pd/w.txt", "a") as f:
    f.write(b"world")
with sftp.open("pd/w.txt", "r") as f:
    out["appended"] = f.read().decode()
try:
    sftp.stat("missing")
    out["missing"] = "no error"
except FileNotFoundError as e:
    out["missing"] = "FileNotFoundError"
except IOError as e:
    out["missing"] = "IOError %s" % e
try:
    sftp.rmdir("pd")
    out["rmdir_nonempty"] = "no error"
except IOError as e:
    out["rmdir_nonempty"] = "IOError"
sftp.remove("plink")
sftp.remove("pd/w.txt")
sftp.remove("pd/moved.bin")
sftp.rmdir("pd")
out["after"] = sorted(sftp.listdir("."))
sftp.close()
c.close()
print(json.dumps(out))
