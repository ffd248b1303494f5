"""
Runs a command on a new pseudo-terminal and bridges it to pipes, for test SSH servers that have
no pty support of their own (the ssh2 server in ssh2_server.cjs).

Usage: python3 pty_bridge.py ROWS COLS TERM COMMAND [ARG...]

stdin is copied to the terminal, the terminal's output to stdout; lines "ROWS COLS" on fd 3
resize the terminal (window-change). Exits with the command's exit status, or kills itself
with the signal that ended the command.
"""
import errno
import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios

rows, cols, term, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:]


def set_size(fd, r, c):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", r, c, 0, 0))


master, slave = os.openpty()
set_size(slave, rows, cols)


def controlling_tty():
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


env = dict(os.environ, TERM=term)
child = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
                         preexec_fn=controlling_tty, close_fds=True)
os.close(slave)

inputs = [0, master]
try:
    os.fstat(3)
    inputs.append(3)
except OSError:
    pass
resize_buf = b""
while master in inputs:
    ready, _, _ = select.select(inputs, [], [])
    for fd in ready:
        try:
            data = os.read(fd, 65536)
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            data = b""
        if fd == master:
            if data:
                os.write(1, data)
            else:
                inputs.remove(master)
        elif fd == 0:
            if data:
                os.write(master, data)
            else:
                inputs.remove(0)
        else:
            if not data:
                inputs.remove(3)
                continue
            resize_buf += data
            while b"\n" in resize_buf:
                line, resize_buf = resize_buf.split(b"\n", 1)
                r, c = line.split()
                set_size(master, int(r), int(c))
                os.killpg(child.pid, signal.SIGWINCH)

rc = child.wait()
if rc < 0:
    signal.signal(-rc, signal.SIG_DFL)
    os.kill(os.getpid(), -rc)
sys.exit(rc)
