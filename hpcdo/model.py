"""Typed records shared by the layers: what the machine holds for a step and for a run.

The probe (see :mod:`hpcdo.remote.scripts`) reads every step's stamp file
(:class:`Stamp`), and a run's markers and the scheduler's answer
(:class:`Job`, with the state the two combine into:
:func:`hpcdo.schedulers.base.combine`).
"""

import functools
import json
from dataclasses import asdict, dataclass, field, replace

from .schedulers.base import JobState


@dataclass
class Job:
    """A run's job as the machine records it.

    ``sig``: the inputs it was submitted for (``job.sig``); ``id``: the
    scheduler's id (``job.id``); ``exit``: the exit marker's line;
    ``fingerprint``: of its result files, once it has ended; ``cancelled``:
    ``doit cancel`` marked it; ``tries``: jobs in a row for these inputs
    (``job.tries``); ``state`` and ``code``: what marker and queue say.
    """

    sig: str = ""
    id: str = ""
    exit: str = ""
    fingerprint: str = ""
    cancelled: bool = False
    tries: str = ""
    state: JobState = field(default=JobState.NONE)
    code: object = None

    @classmethod
    def from_record(cls, record):
        """A Job from the probe's record of a run (a dict of its marker files)."""
        record = record or {}
        return cls(**{k: record[k] for k in ("sig", "id", "exit", "fingerprint", "cancelled", "tries")
                      if record.get(k) is not None})

    def tries_count(self):
        """The jobs in a row for the current inputs, as ``job.tries`` records (1 when it says nothing)."""
        tries = str(self.tries or "")
        return int(tries) if tries.isdigit() else 1

    def with_state(self, state, code=None):
        return replace(self, state=state, code=code)


@dataclass(frozen=True)
class Stamp:
    """A step's stamp, the JSON object its stamp file on the machine holds.

    ``sig``: the signature the step was done for; ``commit``: the commit a
    clone checked out; ``binary``: the executable a compile made (sha256);
    ``options``: the CMake options (configure, and what a cache was made
    from); ``tools``: what decides the compilers of a cache; ``refs``: what
    a Git source's branches and tags name (the probe's ``ls-remote``).  A
    field a stamp does not have is empty.
    """

    sig: str = ""
    commit: str = ""
    binary: str = ""
    options: dict = None
    tools: str = ""
    refs: dict = None

    @classmethod
    def parse(cls, text):
        """The Stamp in ``text``, or None when there is none or it is no JSON object (a damaged file).

        The same text gives the same (frozen) Stamp: a no-op call asks for each
        stamp several times (a 300-run project: 900 times), and parses it once.
        """
        if not text:
            return None
        return _parse_stamp(cls, text)

    @classmethod
    def _parse(cls, text):
        try:
            value = json.loads(text)
        except ValueError:
            return None
        if not isinstance(value, dict):
            return None
        fields = {}
        for name, kind in (("sig", str), ("commit", str), ("binary", str), ("tools", str),
                           ("options", dict), ("refs", dict)):
            if isinstance(value.get(name), kind):
                fields[name] = value[name]
        return cls(**fields)

    def to_json(self):
        """The stamp file's text: only the fields it has, keys sorted."""
        return json.dumps({k: v for k, v in asdict(self).items() if v not in ("", None)}, sort_keys=True)


@functools.lru_cache(maxsize=8192)
def _parse_stamp(cls, text):
    return cls._parse(text)
