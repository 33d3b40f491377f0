"""Interactive logins: answering a server's keyboard-interactive prompts.

A site with two-factor login (``AuthenticationMethods publickey,keyboard-interactive``)
accepts the key, then asks for a one-time code, a password or a Duo choice.
The server's prompt is answered, in this order, by:

1. the terminal (``/dev/tty``): the prompt is shown, and a secret prompt is
   read with echo off;
2. an askpass program (the machine's ``askpass`` key, else ``HPCDO_ASKPASS``),
   as OpenSSH's ``SSH_ASKPASS``: the prompt is its one argument, the answer
   its standard output;
3. nobody: the login is refused in one line saying how to open one.

A code is tried once: a refused one is one error line, never retried (a
site counts failures and may lock the account).  No answer is written
anywhere: not in a message, a trace, a log, an argument or an environment.

The persistent agent (:mod:`hpcdo.remote.agent`) has no terminal.  It asks
the call that started it, over its stdin/stdout pipes (:class:`PipeAnswerer`
on the agent's side, :func:`answer_agent` on the caller's), and the caller
answers with its own terminal or askpass program.

paramiko is hooked at one place: the ``Transport`` made for a connection
(:func:`transport_factory`, passed as ``transport_factory`` to
``SSHClient.connect``), whose keyboard-interactive step uses an answerer
instead of paramiko's ``input()`` on stdin.
"""

import atexit
import json
import os
import subprocess
import threading

from .. import RemoteError

#: the environment variable naming an askpass program when the machine names none
ASKPASS_ENV = "HPCDO_ASKPASS"
#: how long the server's prompts may wait for an answer, seconds (sshd's LoginGraceTime is 120)
ANSWER_TIMEOUT = 300
#: the line prefix of the agent's questions to the call that started it
ASK = "ask "


class LoginError(RemoteError):
    """A login that needs an answer nobody can give, or whose answer was refused."""


class Answerer:
    """Answers a server's prompts for machine ``machine``: the terminal, else askpass, else no one.

    ``tty``: the terminal's path (a test passes a pseudo-terminal's);
    ``askpass``: the machine's askpass program, or None for ``HPCDO_ASKPASS``;
    ``kept``: the connection is kept by an agent (persist), which the refusal says.
    """

    def __init__(self, machine, askpass=None, kept=False, tty="/dev/tty"):
        self.machine = machine
        self.askpass = askpass
        self.kept = kept
        self.tty = tty

    def available(self):
        """True if a terminal or an askpass program can answer (asked before any code is sent)."""
        terminal = _Terminal.open(self.tty)
        if terminal is not None:
            terminal.__exit__()
            return True
        return self.program() is not None

    def program(self):
        """The askpass program to run, or None."""
        program = self.askpass or os.environ.get(ASKPASS_ENV) or None
        return os.path.expanduser(program) if program else None

    def __call__(self, title, instructions, prompts):
        """The answers to ``prompts`` (a list of (text, echo) pairs), one per prompt."""
        terminal = _Terminal.open(self.tty)
        if terminal is not None:
            with terminal:
                for line in (title, instructions):
                    if line and line.strip():
                        terminal.say(line.rstrip("\n"))
                return [terminal.ask(self._label(text), echo) for text, echo in prompts]
        program = self.program()
        if program is not None:
            return [self._run(program, self._label(text)) for text, _echo in prompts]
        if not prompts:
            return []            # a message with nothing to answer (e.g. "push sent")
        raise LoginError(self.needs_login())

    def _label(self, text):
        return "(%s) %s" % (self.machine, text) if text else "(%s) " % self.machine

    def needs_login(self):
        """The one line for a login nobody can answer."""
        kept = ("; the connection is then kept for later calls (persist)" if self.kept else
                "; set persist to keep the connection for later calls")
        return ("machine %s needs an interactive login (a one-time code or password), and there is no "
                "terminal to ask on and no askpass program: log in once from a terminal, e.g. "
                "'doit machine=%s status'%s, or name a program that prints the answer in the machine's "
                "askpass key or in %s" % (self.machine, self.machine, kept, ASKPASS_ENV))

    def _run(self, program, prompt):
        try:
            proc = subprocess.run([program, prompt], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, timeout=ANSWER_TIMEOUT)
        except OSError as exc:
            raise LoginError("machine %s: cannot run the askpass program %s: %s"
                             % (self.machine, program, exc.strerror or exc))
        except subprocess.TimeoutExpired:
            raise LoginError("machine %s: the askpass program %s gave no answer in %d s"
                             % (self.machine, program, ANSWER_TIMEOUT))
        if proc.returncode != 0:
            # its output is not shown: it may be a secret
            raise LoginError("machine %s: the askpass program %s failed (exit %d): no login"
                             % (self.machine, program, proc.returncode))
        return _strip_newline(proc.stdout.decode("utf-8", "replace"))


def _strip_newline(text):
    if text.endswith("\n"):
        text = text[:-1]
    if text.endswith("\r"):
        text = text[:-1]
    return text


#: terminal settings to put back if the process ends during a prompt read without echo
_restore = {}
_restore_lock = threading.Lock()


@atexit.register
def _restore_terminals():
    import termios
    with _restore_lock:
        for fd, attrs in list(_restore.items()):
            try:
                termios.tcsetattr(fd, termios.TCSAFLUSH, attrs)
            except (OSError, termios.error):
                pass
        _restore.clear()


class _Terminal:
    """The user's terminal, opened for one round of prompts."""

    def __init__(self, fd):
        self.fd = fd

    @classmethod
    def open(cls, path):
        """The terminal at ``path``, or None if there is none (no controlling terminal: CI, cron)."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        except OSError:
            return None
        if not os.isatty(fd):
            os.close(fd)
            return None
        return cls(fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        os.close(self.fd)

    def say(self, text):
        os.write(self.fd, (text + "\n").encode("utf-8", "replace"))

    def ask(self, prompt, echo):
        """One answer to ``prompt``, read with echo off unless ``echo``."""
        import termios
        old = None
        if not echo:
            old = termios.tcgetattr(self.fd)
            new = list(old)
            new[3] &= ~termios.ECHO
            with _restore_lock:
                _restore[self.fd] = old
            termios.tcsetattr(self.fd, termios.TCSAFLUSH, new)
        try:
            os.write(self.fd, prompt.encode("utf-8", "replace"))
            data = bytearray()
            while not data.endswith(b"\n"):
                block = os.read(self.fd, 1)
                if not block:
                    break
                data += block
        finally:
            if old is not None:
                termios.tcsetattr(self.fd, termios.TCSAFLUSH, old)
                with _restore_lock:
                    _restore.pop(self.fd, None)
                os.write(self.fd, b"\n")      # the newline the user typed was not echoed
        if not data:
            raise LoginError("no answer was typed (end of input): no login")
        return _strip_newline(bytes(data).decode("utf-8", "replace"))


# -- the persistent agent's prompts, relayed to the call that started it ----------

class PipeAnswerer:
    """The agent's answerer: asks the call that started it, over its stdin/stdout pipes.

    Once the agent is ready those pipes are closed (:meth:`close`); a login
    asked for after that (the kept connection lost, opened again) cannot be
    answered, and says so.
    """

    def __init__(self, machine, rfile, wfile):
        self.machine = machine
        self.rfile = rfile
        self.wfile = wfile

    def close(self):
        self.rfile = self.wfile = None

    def __call__(self, title, instructions, prompts):
        if self.wfile is None:
            raise LoginError("the kept connection to machine %s was lost and its login needs a code or "
                             "password: run the command again from a terminal" % self.machine)
        question = {"title": title, "instructions": instructions, "prompts": [list(p) for p in prompts]}
        try:
            self.wfile.write((ASK + json.dumps(question) + "\n").encode())
            self.wfile.flush()
            reply = json.loads(self.rfile.readline() or b"{}")
        except (OSError, ValueError):
            reply = {}
        if "answers" in reply and isinstance(reply["answers"], list):
            return [str(a) for a in reply["answers"]]
        raise LoginError(reply.get("refused") or "the call that started the connection agent for %s "
                         "gave no answer to its login prompt" % self.machine)


def answer_agent(rfile, wfile, answerer):
    """Caller's side of :class:`PipeAnswerer`: answer each question on ``rfile`` (the agent's
    stdout) through ``answerer``, on ``wfile`` (its stdin), until the agent's last line, returned
    (``ready`` or ``error: ...``; empty if it ended without one)."""
    for raw in iter(rfile.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if not line.startswith(ASK):
            return line
        try:
            question = json.loads(line[len(ASK):])
            prompts = [(str(p[0]), bool(p[1])) for p in question["prompts"]]
            reply = {"answers": answerer(question.get("title") or "", question.get("instructions") or "",
                                         prompts)}
        except LoginError as exc:
            reply = {"refused": str(exc)}
        except (ValueError, KeyError, TypeError, IndexError):
            reply = {"refused": "the connection agent asked a question that could not be read"}
        try:
            wfile.write((json.dumps(reply) + "\n").encode())
            wfile.flush()
        except OSError:
            pass
    return ""


# -- paramiko --------------------------------------------------------------------

def transport_factory(answerer, where):
    """A ``transport_factory`` for ``SSHClient.connect`` whose keyboard-interactive step asks
    ``answerer``; ``where`` names the machine in the refusal."""
    import paramiko

    class Transport(paramiko.Transport):
        _asked = False

        def _interactive(self, username, submethods=""):
            if self._asked:
                raise LoginError("%s: the login was refused (one try only)" % where)
            self._asked = True
            available = getattr(answerer, "available", None)
            if available is not None and not available():
                self.close()          # nobody to ask: the server is not even sent an empty answer
                raise LoginError(answerer.needs_login())
            failed = []

            def handler(title, instructions, prompts):
                # runs in paramiko's transport thread: an exception here would be logged
                # with a traceback; keep it, answer nothing, and raise it below
                try:
                    return answerer(title, instructions, prompts)
                except LoginError as exc:
                    failed.append(exc)
                    return []
            self.auth_timeout = max(self.auth_timeout or 0, ANSWER_TIMEOUT)
            try:
                return self.auth_interactive(username, handler, submethods)
            except paramiko.SSHException:
                self.close()
                if failed:
                    raise failed[0] from None
                raise LoginError("%s: the server refused the one-time code or password. Nothing was "
                                 "retried (repeated failures can lock the account): run the command "
                                 "again with a new code" % where) from None

        # paramiko's SSHClient asks this after a key that was accepted as a first factor
        def auth_interactive_dumb(self, username, handler=None, submethods=""):
            return self._interactive(username, submethods)

        def auth_publickey(self, username, key, event=None):
            try:
                return super().auth_publickey(username, key, event)
            except paramiko.BadAuthenticationType as exc:
                if "keyboard-interactive" in (exc.allowed_types or []):
                    return self._interactive(username)     # a site that takes no key: codes only
                raise

    def make(sock, **kwargs):
        return Transport(sock, **kwargs)
    return make
