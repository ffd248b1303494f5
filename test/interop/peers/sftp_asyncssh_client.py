"""AsyncSSH's SFTP client against OUR server's sftp subsystem (test/interop/sftp_server_asyncssh.test.ts).

    python3 sftp_asyncssh_client.py '<json spec>'

spec: {"port", "user", "key", "known_hosts", "scenario": "<local folder>"}; the local folder holds
src.bin. Remote paths are relative to the session's start directory. Prints one JSON object with
what each step saw; the test makes the assertions.
"""
import asyncio
import json
import os
import stat
import sys

import asyncssh

spec = json.loads(sys.argv[1])
local = spec["scenario"]


async def main():
    out = {}
    async with asyncssh.connect("127.0.0.1", port=spec["port"], username=spec["user"],
                                client_keys=[spec["key"]], known_hosts=spec["known_hosts"],
                                agent_path=None) as conn:
        async with conn.start_sftp_client() as sftp:
            await sftp.put(os.path.join(local, "src.bin"), "a-up.bin")
            await sftp.get("a-up.bin", os.path.join(local, "a-down.bin"))
            await sftp.mkdir("ad")
            await sftp.rename("a-up.bin", "ad/moved.bin")
            await sftp.symlink("ad/moved.bin", "alink")
            out["readlink"] = await sftp.readlink("alink")
            await sftp.chmod("ad/moved.bin", 0o640)
            out["mode"] = stat.S_IMODE((await sftp.stat("ad/moved.bin")).permissions)
            out["size"] = (await sftp.stat("alink")).size
            out["islink"] = await sftp.islink("alink")
            out["listdir"] = sorted(await sftp.listdir("."))
            out["realpath"] = await sftp.realpath(".")
            try:
                await sftp.stat("missing")
                out["missing"] = "no error"
            except asyncssh.SFTPNoSuchFile:
                out["missing"] = "SFTPNoSuchFile"
            await sftp.remove("alink")
            await sftp.remove("ad/moved.bin")
            await sftp.rmdir("ad")
            out["after"] = sorted(await sftp.listdir("."))
    print(json.dumps(out))


asyncio.run(main())
