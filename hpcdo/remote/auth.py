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
site counts failures and may lock the account).  When nobody can answer
(no terminal, an askpass program missing or failing, Ctrl-D), the server is
sent nothing (an empty answer counts as a failed login): the connection is
closed.  No answer is written anywhere: not in a message, a trace, a log, an
argument or an environment.

The persistent agent (:mod:`hpcdo.remote.agent`) has no terminal.  It asks
the call that started it, over its stdin/stdout pipes (:class:`PipeAnswerer`
on the agent's side, :func:`answer_agent` on the caller's), first whether it
can answer at all, and the caller answers with its own terminal or askpass.

paramiko asks an answerer through :mod:`hpcdo.remote.login`.
"""

import json
import os
import subprocess

from .. import RemoteError
from .terminal import NoAnswer, Terminal, guard_sigterm, printable, strip_newline

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
        guard_sigterm()           # echo put back on SIGTERM during a prompt (main thread only)

    def available(self):
        """True if a terminal or an askpass program can answer (asked before any code is sent)."""
        terminal = Terminal.open(self.tty)
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
        terminal = Terminal.open(self.tty)
        if terminal is not None:
            with terminal:
                for line in (title, instructions):
                    if line and printable(line).strip():
                        terminal.say(line.rstrip("\n"))
                try:
                    return [terminal.ask(self._label(text), echo) for text, echo in prompts]
                except NoAnswer:
                    raise LoginError("no answer was typed (end of input): no login") from None
        program = self.program()
        if program is not None:
            return [self._run(program, self._label(text)) for text, _echo in prompts]
        if not prompts:
            return []            # a message with nothing to answer (e.g. "push sent")
        raise LoginError(self.needs_login())

    def _label(self, text):
        text = printable(text)
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
        return strip_newline(proc.stdout.decode("utf-8", "replace"))


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
        self._refusal = None

    def close(self):
        self.rfile = self.wfile = None

    def _lost(self):
        return ("the kept connection to machine %s was lost and its login needs a code or "
                "password: run the command again from a terminal" % self.machine)

    def _exchange(self, question):
        """The caller's reply to ``question`` (a dict; {} if it gave none)."""
        try:
            self.wfile.write((ASK + json.dumps(question) + "\n").encode())
            self.wfile.flush()
            reply = json.loads(self.rfile.readline() or b"{}")
        except (OSError, ValueError):
            reply = {}
        return reply if isinstance(reply, dict) else {}

    def available(self):
        """True if the call that started the agent can answer (its terminal or askpass), asked
        over the pipes before anything is sent to the server; False once they are closed."""
        if self.wfile is None:
            self._refusal = self._lost()
            return False
        reply = self._exchange({"available": True})
        if reply.get("available") is True:
            return True
        self._refusal = str(reply.get("refused") or "the call that started the connection agent for %s "
                            "cannot answer its login prompt" % self.machine)
        return False

    def needs_login(self):
        """The one line for a login nobody can answer (the caller's own, as it said it)."""
        return self._refusal or self._lost()

    def __call__(self, title, instructions, prompts):
        if self.wfile is None:
            raise LoginError(self._lost())
        reply = self._exchange({"title": title, "instructions": instructions,
                                "prompts": [list(p) for p in prompts]})
        if "answers" in reply and isinstance(reply["answers"], list):
            return [str(a) for a in reply["answers"]]
        raise LoginError(str(reply.get("refused") or "the call that started the connection agent for %s "
                         "gave no answer to its login prompt" % self.machine))


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
            if question.get("available"):
                can = getattr(answerer, "available", None)
                reply = {"available": True} if can is None or can() else {
                    "available": False, "refused": answerer.needs_login()}
                _reply(wfile, reply)
                continue
            prompts = [(str(p[0]), bool(p[1])) for p in question["prompts"]]
            reply = {"answers": answerer(question.get("title") or "", question.get("instructions") or "",
                                         prompts)}
        except LoginError as exc:
            reply = {"refused": str(exc)}
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            reply = {"refused": "the connection agent asked a question that could not be read"}
        _reply(wfile, reply)
    return ""


def _reply(wfile, reply):
    try:
        wfile.write((json.dumps(reply) + "\n").encode())
        wfile.flush()
    except OSError:
        pass
