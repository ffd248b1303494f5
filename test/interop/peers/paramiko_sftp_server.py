"""Paramiko's SFTP server (paramiko.SFTPServer over a plain-filesystem SFTPServerInterface), for
test/interop/sftp_client_paramiko.test.ts.

Usage: python3 paramiko_sftp_server.py PORT HOST_KEY_FILE AUTHORIZED_PUBLIC_KEY_LINE

Listens on 127.0.0.1:PORT, accepts any user with the one authorized key, serves the `sftp`
subsystem on each connection (absolute paths are the real ones). Prints LISTENING once the port
is open.
"""
import os
import socket
import sys
import threading
import warnings

warnings.filterwarnings("ignore")
import paramiko  # noqa: E402
from paramiko import SFTPAttributes, SFTPHandle, SFTPServer, SFTPServerInterface  # noqa: E402
from paramiko.sftp import SFTP_FAILURE, SFTP_OK  # noqa: E402

port = int(sys.argv[1])
host_key = paramiko.Ed25519Key.from_private_key_file(sys.argv[2])
authorized = sys.argv[3].split()[1]


class Server(paramiko.ServerInterface):
    def check_auth_publickey(self, username, key):
        return paramiko.AUTH_SUCCESSFUL if key.get_base64() == authorized else paramiko.AUTH_FAILED

    def get_allowed_auths(self, username):
        return "publickey"

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class Handle(SFTPHandle):
    def stat(self):
        return status_of_oserror(lambda: SFTPAttributes.from_stat(os.fstat(self.readfile.fileno())))()

    def chattr(self, attr):
        return status_of_oserror(SFTPServer.set_file_attr)(self.filename, attr)


def status_of_oserror(f):
    """Runs f; an OSError becomes the SFTP status of its errno, None becomes SFTP_OK."""
    def run(*args):
        try:
            result = f(*args)
        except OSError as e:
            return SFTPServer.convert_errno(e.errno)
        return SFTP_OK if result is None else result
    return run


class FS(SFTPServerInterface):
    def canonicalize(self, path):
        return os.path.realpath(path if os.path.isabs(path) else os.path.join(os.getcwd(), path))

    @status_of_oserror
    def list_folder(self, path):
        out = []
        for name in os.listdir(path):
            attr = SFTPAttributes.from_stat(os.lstat(os.path.join(path, name)))
            attr.filename = name
            out.append(attr)
        return out

    @status_of_oserror
    def stat(self, path):
        return SFTPAttributes.from_stat(os.stat(path))

    @status_of_oserror
    def lstat(self, path):
        return SFTPAttributes.from_stat(os.lstat(path))

    @status_of_oserror
    def open(self, path, flags, attr):
        fd = os.open(path, flags, getattr(attr, "st_mode", None) or 0o666)
        if flags & os.O_WRONLY:
            fstr = "ab" if flags & os.O_APPEND else "wb"
        elif flags & os.O_RDWR:
            fstr = "a+b" if flags & os.O_APPEND else "r+b"
        else:
            fstr = "rb"
        f = os.fdopen(fd, fstr)
        h = Handle(flags)
        h.filename = path
        h.readfile = f
        h.writefile = f
        return h

    @status_of_oserror
    def remove(self, path):
        os.remove(path)

    def rename(self, oldpath, newpath):
        # SFTP v3 rename does not replace.
        if os.path.lexists(newpath):
            return SFTP_FAILURE
        return status_of_oserror(os.rename)(oldpath, newpath)

    @status_of_oserror
    def posix_rename(self, oldpath, newpath):
        os.rename(oldpath, newpath)

    @status_of_oserror
    def mkdir(self, path, attr):
        os.mkdir(path, getattr(attr, "st_mode", None) or 0o777)

    @status_of_oserror
    def rmdir(self, path):
        os.rmdir(path)

    @status_of_oserror
    def chattr(self, path, attr):
        SFTPServer.set_file_attr(path, attr)

    @status_of_oserror
    def symlink(self, target_path, path):
        os.symlink(target_path, path)

    @status_of_oserror
    def readlink(self, path):
        return os.readlink(path)


def serve(sock):
    t = paramiko.Transport(sock)
    t.add_server_key(host_key)
    t.set_subsystem_handler("sftp", SFTPServer, FS)
    t.start_server(server=Server())


lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lsock.bind(("127.0.0.1", port))
lsock.listen(5)
print("LISTENING", flush=True)
while True:
    conn, _ = lsock.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
