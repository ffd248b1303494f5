"""
AsyncSSH's SSH server (Debian's python3-asyncssh), for interop tests of our client.

Usage: python3 asyncssh_server.py PORT HOST_KEY_FILE AUTHORIZED_PUBLIC_KEY_LINE [REKEY_BYTES]

Listens on 127.0.0.1:PORT with the host key in HOST_KEY_FILE, accepts any user name with the one
authorized key, and runs each session through AsyncSSH's process API (SSHServerProcess):
exec runs `/bin/sh -c COMMAND` with stdin/stdout/stderr copied both ways and the exit status
(or exit-signal) sent back; a shell with a pty-req runs /bin/sh on a real pty of the requested
size, resized on window-change (AsyncSSH raises TerminalSizeChanged on stdin); "signal"
requests reach the command (SignalReceived); env requests reach the command's environment; the sftp subsystem is AsyncSSH's own SFTP server.

Prints LISTENING once the port is open.
"""
import asyncio
import fcntl
import os
import signal
import struct
import sys
import termios

import asyncssh

if os.environ.get("ASYNCSSH_DEBUG"):
    import logging

    logging.basicConfig(level=logging.DEBUG, stream=sys.stdout)
    asyncssh.set_debug_level(2)

port, host_key_file, authorized = int(sys.argv[1]), sys.argv[2], sys.argv[3]
# With REKEY_BYTES, the server starts a key exchange after every REKEY_BYTES bytes each way.
extra = {"rekey_bytes": int(sys.argv[4])} if len(sys.argv) > 4 else {}


def set_size(fd, width, height, pixwidth=0, pixheight=0):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, pixwidth, pixheight))


def finish(process, rc):
    if rc < 0:
        name = signal.Signals(-rc).name[3:]
        process.exit_with_signal(name)
    else:
        process.exit(rc)


async def copy_in(process, writer, proc):
    while True:
        try:
            data = await process.stdin.read(65536)
        except asyncssh.TerminalSizeChanged:
            continue
        except asyncssh.BreakReceived:
            continue
        except asyncssh.SignalReceived as exc:
            proc.send_signal(signal.Signals["SIG" + exc.signal])
            continue
        if not data:
            break
        writer.write(data)
        await writer.drain()
    writer.close()


async def copy_out(reader, stream):
    while True:
        data = await reader.read(65536)
        if not data:
            break
        stream.write(data)
        await stream.drain()


async def run_pipes(process, env):
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", process.command,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    feeder = asyncio.ensure_future(copy_in(process, proc.stdin, proc))
    await asyncio.gather(copy_out(proc.stdout, process.stdout), copy_out(proc.stderr, process.stderr))
    rc = await proc.wait()
    feeder.cancel()
    finish(process, rc)


async def run_pty(process, env):
    master, slave = os.openpty()
    width, height, pixwidth, pixheight = process.term_size
    set_size(slave, width, height, pixwidth, pixheight)
    env["TERM"] = process.term_type

    def controlling_tty():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    argv = ["/bin/sh", "-c", process.command] if process.command else ["/bin/sh", "-i"]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True, preexec_fn=controlling_tty,
    )
    os.close(slave)
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def readable():
        try:
            data = os.read(master, 65536)
        except OSError:
            data = b""
        if data:
            process.stdout.write(data)
        else:
            loop.remove_reader(master)
            if not done.done():
                done.set_result(None)

    loop.add_reader(master, readable)

    async def feed():
        while True:
            try:
                data = await process.stdin.read(65536)
            except asyncssh.TerminalSizeChanged as exc:
                set_size(master, exc.width, exc.height, exc.pixwidth, exc.pixheight)
                continue
            except asyncssh.BreakReceived:
                continue
            if not data:
                break
            os.write(master, data)

    feeder = asyncio.ensure_future(feed())
    rc = await proc.wait()
    await done
    feeder.cancel()
    os.close(master)
    await process.stdout.drain()
    finish(process, rc)


async def handle(process):
    env = dict(os.environ)
    env.update(process.env)
    try:
        if process.term_type:
            await run_pty(process, env)
        else:
            await run_pipes(process, env)
    except Exception as exc:  # visible in the test's peer log
        print("SESSION FAILED", repr(exc), flush=True)
        process.exit(255)


async def main():
    await asyncssh.create_server(
        asyncssh.SSHServer, "127.0.0.1", port,
        server_host_keys=[asyncssh.read_private_key(host_key_file)],
        authorized_client_keys=asyncssh.import_authorized_keys(authorized + "\n"),
        process_factory=handle, sftp_factory=True, encoding=None, **extra,
    )
    print("LISTENING", flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
