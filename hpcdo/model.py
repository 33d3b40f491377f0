"""Typed records shared by the layers: what the machine holds for one run.

The probe (see :mod:`hpcdo.remote.scripts`) reads a run's markers and the
scheduler's answer; :class:`Job` is that reading, with the state the two
combine into (:func:`hpcdo.schedulers.base.combine`).
"""

from dataclasses import dataclass, field, replace

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
