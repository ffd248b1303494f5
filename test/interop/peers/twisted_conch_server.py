"""
Twisted Conch's own SSH server (Debian's python3-twisted), for interop tests of our client.

Usage: python3 twisted_conch_server.py PORT HOST_KEY_FILE USER AUTHORIZED_PUBLIC_KEY_LINE

Listens on 127.0.0.1:PORT with the host key in HOST_KEY_FILE (an OpenSSH private key), accepts
USER by publickey with the one key given (an in-memory key database), and serves Twisted's Unix
realm: exec and shell run real processes (the shell on a real pty), the sftp subsystem is
Twisted's FileTransferServer. Two changes to twisted.conch.unix: the shell is /bin/sh (root's
bash start-up runs pyenv, which is slow here), sessions take env requests (Twisted 22.4's
SSHSessionForUnixConchUser does not implement ISessionSetEnv; this subclass stores the
variable in the environment the command is spawned with), and SFTP paths are joined to the home
directory as a str (Twisted 22.4's SFTPServerForUnixConchUser._absPath fails on Python 3).

Prints LISTENING once the port is open; logs to stdout.
"""
import os
import sys

from zope.interface import implementer

from twisted.conch import unix
from twisted.conch.checkers import InMemorySSHKeyDB, SSHPublicKeyChecker
from twisted.conch.interfaces import ISession, ISessionSetEnv, ISFTPServer
from twisted.conch.ssh import factory, keys
from twisted.cred import portal
from twisted.internet import reactor
from twisted.python import components, log

port, host_key_file, user, authorized = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]


class User(unix.UnixConchUser):
    def getShell(self):
        return "/bin/sh"


@implementer(ISession, ISessionSetEnv)
class Session(unix.SSHSessionForUnixConchUser):
    def setEnv(self, name, value):
        self.environ[name.decode("utf-8")] = value.decode("utf-8")


components.registerAdapter(Session, User, ISession)


class SFTPServer(unix.SFTPServerForUnixConchUser):
    # Twisted 22.4's _absPath reads getHomeDir().path, but UnixConchUser.getHomeDir returns a str
    # (AttributeError: 'str' object has no attribute 'path' on every path request).
    def _absPath(self, path):
        return os.path.join(self.avatar.getHomeDir(), path.decode("utf-8") if isinstance(path, bytes) else path)


components.registerAdapter(SFTPServer, User, ISFTPServer)


@implementer(portal.IRealm)
class Realm:
    def requestAvatar(self, username, mind, *interfaces):
        avatar = User(username.decode("utf-8"))
        return interfaces[0], avatar, avatar.logout


host_key = keys.Key.fromFile(host_key_file)
f = factory.SSHFactory()
f.publicKeys = {host_key.sshType(): host_key.public()}
f.privateKeys = {host_key.sshType(): host_key}
f.portal = portal.Portal(
    Realm(),
    [SSHPublicKeyChecker(InMemorySSHKeyDB({user.encode("utf-8"): [keys.Key.fromString(authorized)]}))],
)

log.startLogging(sys.stdout)
reactor.listenTCP(port, f, interface="127.0.0.1")
print("LISTENING", flush=True)
reactor.run()
