"""The user's terminal, for a login prompt: shown safely, read with echo off, echo always put back.

Text from the server (a prompt, a title, an instruction) is shown without
its control characters, so a server cannot move the cursor, retitle the
window or replay keys through an escape sequence.  A prompt read with echo
off puts echo back when it ends, on Ctrl-C, at the process's exit, and on
SIGTERM (the handler restores the terminal, then lets the signal end the
process as it would have).
"""

import atexit
import os
import re
import signal
import threading

#: control characters (C0, DEL, C1) but newline and tab
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")

#: terminal settings to put back if the process ends during a prompt read without echo
_restore = {}
_restore_lock = threading.Lock()


class NoAnswer(Exception):
    """End of input on the terminal (Ctrl-D): nothing was typed."""


def printable(text):
    """``text`` without control characters other than newline and tab."""
    return _CONTROL.sub("", text or "")


@atexit.register
def restore_terminals():
    """Put back every terminal's settings changed by a prompt still being read."""
    import termios
    with _restore_lock:
        for fd, attrs in list(_restore.items()):
            try:
                termios.tcsetattr(fd, termios.TCSAFLUSH, attrs)
            except (OSError, termios.error):
                pass
        _restore.clear()


def _on_sigterm(signum, frame):
    restore_terminals()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)        # end as the signal would have


def guard_sigterm():
    """Restore the terminal on SIGTERM too (once; only from the main thread, and only where
    SIGTERM has its default action, so a handler of the program's own is left alone)."""
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):
        pass


class Terminal:
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
        """Show ``text`` (the server's, made printable) on a line."""
        os.write(self.fd, (printable(text) + "\n").encode("utf-8", "replace"))

    def ask(self, prompt, echo):
        """One answer to ``prompt``, read with echo off unless ``echo``; NoAnswer at end of input."""
        import termios
        old = None
        if not echo:
            guard_sigterm()
            old = termios.tcgetattr(self.fd)
            new = list(old)
            new[3] &= ~termios.ECHO
            with _restore_lock:
                _restore[self.fd] = old
            termios.tcsetattr(self.fd, termios.TCSAFLUSH, new)
        try:
            os.write(self.fd, printable(prompt).encode("utf-8", "replace"))
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
            raise NoAnswer()
        return strip_newline(bytes(data).decode("utf-8", "replace"))


def strip_newline(text):
    if text.endswith("\n"):
        text = text[:-1]
    if text.endswith("\r"):
        text = text[:-1]
    return text
