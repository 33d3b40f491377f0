"""paramiko's login, asking an answerer (:mod:`hpcdo.remote.auth`) for what goes beyond the keys.

:func:`client` is an ``SSHClient`` whose ``Transport`` (:func:`transport_factory`)
asks the answerer instead of paramiko's ``input()``: after a key accepted as
a first factor, the keyboard-interactive or password step; when the keys
fail or there is none, what the server still allows (``auth_none``), so a
password-and-code site is asked too; and the passphrase of a key file no
ssh-agent unlocked.  Each once; nothing is sent when nobody answers.
"""

from .auth import ANSWER_TIMEOUT, LoginError
from .terminal import guard_sigterm

_classes = {}


def transport_factory(answerer, where):
    """A ``transport_factory`` for ``SSHClient.connect`` whose keyboard-interactive and password
    steps ask ``answerer``; ``where`` names the machine in a refusal."""
    guard_sigterm()
    transport = _paramiko_classes()[0]

    def make(sock, **kwargs):
        return transport(sock, answerer, where, **kwargs)
    return make


def client(answerer, where):
    """A paramiko ``SSHClient`` whose login asks ``answerer`` for what the server wants beyond
    the keys: a one-time code or password (keyboard-interactive, password) and the passphrase
    of a key no ssh-agent holds; each once, nothing sent to the server when no one answers."""
    return _paramiko_classes()[1](answerer, where)


def _paramiko_classes():
    if not _classes:
        _classes[0], _classes[1] = _make_classes()
    return _classes[0], _classes[1]


def _make_classes():
    import paramiko

    class Transport(paramiko.Transport):
        def __init__(self, sock, answerer, where, **kwargs):
            super().__init__(sock, **kwargs)
            self.answerer = answerer
            self.where = where
            self.asked = set()            # the steps asked once already
            self.allowed = []             # the methods a partly accepted key leaves

        def refuse(self, line):
            self.close()                  # nothing more is sent: no empty answer, no retry
            raise LoginError(line)

        def _once(self, step):
            if step in self.asked:
                self.refuse("%s: the login was refused (one try only)" % self.where)
            self.asked.add(step)
            if not self.can_ask():
                self.refuse(self.answerer.needs_login())

        def can_ask(self):
            available = getattr(self.answerer, "available", None)
            return available is None or available()

        def ask(self, prompt):
            """The answerer's answer to our own secret ``prompt`` (a password, a passphrase)."""
            try:
                answers = self.answerer("", "", [(prompt, False)])
            except LoginError as exc:
                self.refuse(str(exc))
            if len(answers) != 1:
                self.refuse("%s: no answer to '%s': no login" % (self.where, prompt.strip()))
            return answers[0]

        def interactive(self, username, submethods=""):
            self._once("keyboard-interactive")
            failed = []

            def handler(title, instructions, prompts):
                # runs in paramiko's transport thread: an exception here would be logged with a
                # traceback, and an empty answer counts as a failed login; close the connection
                # (nothing is sent), keep the error, and raise it below
                try:
                    return self.answerer(title, instructions, prompts)
                except LoginError as exc:
                    failed.append(exc)
                    self.close()
                    return []
            self.auth_timeout = max(self.auth_timeout or 0, ANSWER_TIMEOUT)
            try:
                return self.auth_interactive(username, handler, submethods)
            except paramiko.BadAuthenticationType as exc:
                return self.second(username, exc.allowed_types, exc)
            except paramiko.SSHException:
                self.close()
                if failed:
                    raise failed[0] from None
                self.refuse("%s: the server refused the one-time code or password. Nothing was "
                            "retried (repeated failures can lock the account): run the command "
                            "again with a new code" % self.where)

        def password(self, username):
            self._once("password")
            secret = self.ask("Password: ")
            self.auth_timeout = max(self.auth_timeout or 0, ANSWER_TIMEOUT)
            try:
                allowed = self.auth_password(username, secret, fallback=False)
            except paramiko.BadAuthenticationType as exc:
                return self.second(username, exc.allowed_types, exc)
            except paramiko.SSHException:
                self.refuse("%s: the server refused the password. Nothing was retried (repeated "
                            "failures can lock the account): run the command again" % self.where)
            return self.second(username, allowed) if allowed else []

        def second(self, username, allowed, error=None):
            """The next step of a login the server says may continue with ``allowed``."""
            allowed = list(allowed or [])
            if "keyboard-interactive" in allowed and "keyboard-interactive" not in self.asked:
                return self.interactive(username)
            if "password" in allowed and "password" not in self.asked:
                return self.password(username)
            self.refuse("%s: the server wants a login by %s, which hpcdo's SSH library does not "
                        "offer here: set 'transport: openssh' on the machine to log in with the "
                        "system ssh" % (self.where, " or ".join(allowed) or "no method it names"))

        # paramiko's SSHClient asks this after a key that was accepted as a first factor
        def auth_interactive_dumb(self, username, handler=None, submethods=""):
            if "keyboard-interactive" not in self.allowed and "password" in self.allowed:
                return self.password(username)
            return self.interactive(username, submethods)

        def auth_publickey(self, username, key, event=None):
            self.allowed = super().auth_publickey(username, key, event) or []
            return self.allowed

        def unlock(self, path):
            """The key at ``path``, its passphrase asked of the answerer (once)."""
            if not self.can_ask():
                self.refuse("%s: key %s is protected by a passphrase and there is no terminal or "
                            "askpass program to ask it: load it into an ssh-agent with 'ssh-add %s'"
                            % (self.where, path, path))
            phrase = self.ask("Passphrase for key %s: " % path)
            try:
                return paramiko.PKey.from_path(path, password=phrase.encode("utf-8"))
            except (paramiko.SSHException, ValueError, TypeError, OSError):
                self.refuse("%s: the passphrase for key %s was not accepted (nothing was sent to the "
                            "server): run the command again, or load the key with 'ssh-add %s'"
                            % (self.where, path, path))

        def after_keys(self, username, locked, error):
            """The login once the keys paramiko could load are refused or none exists: the
            passphrase-protected keys, then what the server still allows (asked by auth_none)."""
            for path in locked:
                key = self.unlock(path)
                try:
                    allowed = self.auth_publickey(username, key)
                except paramiko.BadAuthenticationType:
                    break                     # the server takes no key at all
                except paramiko.SSHException:
                    continue                  # not this key
                return self.second(username, allowed) if allowed else []
            try:
                self.auth_none(username)
                return []                     # the server asks for nothing
            except paramiko.BadAuthenticationType as exc:
                allowed = list(exc.allowed_types or [])
            except paramiko.SSHException:
                raise error from None
            if "keyboard-interactive" in allowed or "password" in allowed:
                return self.second(username, allowed)
            raise error from None             # keys only: the key's refusal says it

    class Client(paramiko.SSHClient):
        def __init__(self, answerer, where):
            super().__init__()
            self.answerer = answerer
            self.where = where
            self.locked = []

        def connect(self, hostname, key_filename=None, **kwargs):
            kwargs.setdefault("transport_factory", transport_factory(self.answerer, self.where))
            files = [key_filename] if isinstance(key_filename, str) else list(key_filename or [])
            self.locked = [path for path in files if _encrypted(paramiko, path)]
            files = [path for path in files if path not in self.locked]
            return super().connect(hostname, key_filename=files or None, **kwargs)

        def _auth(self, username, *args):
            transport = self._transport
            try:
                super()._auth(username, *args)
            except paramiko.SSHException as exc:
                if not isinstance(transport, Transport) or not transport.is_active() \
                        or transport.is_authenticated():
                    raise
                transport.after_keys(username, self.locked, exc)
            if isinstance(transport, Transport) and not transport.is_authenticated():
                # a key accepted as a first factor, then a method paramiko's client skips
                transport.second(username, transport.allowed)
    return Transport, Client


def _encrypted(paramiko, path):
    """True if the key file at ``path`` needs a passphrase (paramiko would skip it)."""
    try:
        paramiko.PKey.from_path(path)
    except paramiko.PasswordRequiredException:
        return True
    except TypeError as exc:          # cryptography's word for an OpenSSH-format key's
        return "password" in str(exc)
    except Exception:
        pass                  # unreadable, or a kind paramiko reads otherwise: left to paramiko
    return False
