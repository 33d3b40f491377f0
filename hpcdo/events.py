"""What the steps are doing, told as it happens to whoever listens (the progress display).

A step calls :func:`emit` with a kind and a few fields; with no listener
(``list``, ``info``, a library user) that costs one list check.  A listener
that fails is ignored: showing progress must never break a step.

The kinds, and their fields:

``output``    ``step`` (``"compile lbflow"``), ``line``: one line a configure
              or compile printed, hpcdo's own markers left out
``job``       ``run``, ``id``, ``state`` (a :class:`hpcdo.schedulers.base.JobState`
              value such as ``"running"``): what the machine now says of a run's job
``waiting``   ``run``, ``id``, ``walltime`` (``"HH:MM:SS"``): a wait for the job began
``transfer``  ``what`` (``"fetch straight"``), ``bytes`` so far, ``seconds`` since it
              began, ``done`` (True once, at the end) and then ``whole`` (False: cut short)
"""

import threading

_listeners = []
_lock = threading.Lock()


def listen(listener):
    """Call ``listener(kind, fields)`` for every event from now on."""
    with _lock:
        _listeners.append(listener)


def forget(listener):
    with _lock:
        if listener in _listeners:
            _listeners.remove(listener)


def listening():
    """True if anyone listens (a step may then skip work done only for the display)."""
    return bool(_listeners)


def emit(kind, **fields):
    if not _listeners:
        return
    for listener in list(_listeners):
        try:
            listener(kind, fields)
        except Exception:
            pass
