"""The answers of the remote scripts, parsed: the probe's, the submission's, the source manifest's.

The scripts that print them are in :mod:`hpcdo.remote.scripts` (and their
text in ``sh/``); the protocol lines are:

``@s<TAB>key<TAB>text``   a stamp (text empty: missing, or a product is)
``@g key sha ref``        what a branch or tag of a Git source names now
``@m parent``             then grep's ``run/marker:first line`` lines
``@ls parent``            then ``lf`` lines (``@f size mtime path``, or ``ls -lnd``)
``@q``                    then the scheduler's status lines (``@qfail``: no answer)
``@submitted|@busy|@changed|@error key detail``   a submission's outcome
``@c<TAB>name<TAB>status<TAB>detail``   a finding of the machine check
``@t start|end seconds``  the machine's clock as the check began and ended
``@a account|partition|qos``  one of the user's Slurm associations
"""

import hashlib
import json
import re

from .. import outputs
from ..schedulers.base import QUEUE_DOWN, JobState
from . import jobinfo


def split_rundir(rundir):
    """(the directory the probe enters, the run's name in it) of a run directory."""
    parent, _, name = rundir.rpartition("/")
    return parent or ".", name


LS_RE = re.compile(r"^\S+\s+\d+\s+\S+\s+\S+\s+(\d+)\s+(\S+\s+\S+\s+\S+)\s(.*)$")


def _listed(line):
    """(path, size, time) of one line of ``lf``'s output, or None."""
    if line.startswith("@f "):
        parts = line[3:].split(" ", 2)
        if len(parts) == 3 and parts[0].isdigit():
            return parts[2], parts[0], parts[1]
        return None
    m = LS_RE.match(line)             # ``ls -lnd`` where ``stat -c`` is missing
    if m:
        return m.group(3), m.group(1), " ".join(m.group(2).split())
    return None


def listed_files(lines):
    """[(path, size, time)] of ``lf``'s output lines."""
    return [entry for entry in map(_listed, lines) if entry]


def fingerprints(lines, runs):
    """{run directory: fingerprint} from ``lf`` lines of runs' files.

    ``runs``: {run directory, as the lines name it: its output patterns}.
    A fingerprint changes when a result file or marker appears, disappears,
    changes size or modification time.  It is made of each file's path in its
    run directory, size and time only, so it is the same whether one run or
    all are listed.  Which files count is :func:`hpcdo.outputs.is_result`'s
    choice: never the cancel mark nor hpcdo's own files.
    """
    by_dir = {}
    for path, size, mtime in listed_files(lines):
        parts = path.split("/")
        for depth in range(len(parts) - 1, 0, -1):
            rundir = "/".join(parts[:depth])
            if rundir in runs:
                entries = by_dir.setdefault(rundir, set())
                rel = "/".join(parts[depth:])
                if outputs.is_result(rel, runs[rundir]):
                    entries.add("%s\t%s\t%s" % (rel, size, mtime))
                break
    return {d: hashlib.sha256("\n".join(sorted(v)).encode()).hexdigest()[:32] for d, v in by_dir.items()}


def parse_probe(text, scheduler, runs=()):
    """(stamps {key: text or None}, jobs {key: dict}, queue {id: (JobState, exit code or None)}).

    ``runs``: the (key, run directory, patterns) triples the script asked
    about; each gets an entry in ``jobs``.  Besides its markers, a run's
    entry holds ``times``: when its job was submitted (job.id's mtime),
    started (job.started) and ended (job.exit), and what the scheduler said
    of it beyond its state (times, ``limit``, ``reason``: :mod:`jobinfo`);
    epoch seconds, each left out where nothing says it.
    """
    stamps, markers, listings, queue_lines, heads = {}, {}, {}, [], {}
    section = parent = None
    for line in text.splitlines():
        if line.startswith(("@m ", "@ls ")):
            section, parent = line.split(" ", 1)
            listing = listings.setdefault(parent, [])
        elif line == "@q":
            section = line
        elif section == "@q":
            queue_lines.append(line)
        elif section == "@ls":
            listing.append(line)
        elif section == "@m":
            path, sep, value = line.partition(":")
            if sep and (parent, path) not in markers:       # a marker's first line, as ``read`` takes it
                markers[(parent, path)] = value.strip()
        elif line.startswith("@s\t"):
            _tag, key, value = (line.split("\t", 2) + [""])[:3]
            stamps[key] = value or None
        elif line.startswith("@g "):
            words = line.split()
            if len(words) == 4:
                heads.setdefault(words[1], {})[words[3]] = words[2]
    for key, refs in heads.items():
        stamps[key] = json.dumps({"refs": refs}, sort_keys=True)
    # everything below is keyed by (parent, run name): the probe listed from inside ``parent``
    where = {key: split_rundir(rundir) for key, rundir, _p in runs}
    patterns = {key: p for key, _rundir, p in runs}
    prints, cancelled, submitted = {}, set(), {}
    for parent, lines in listings.items():
        names = {name: patterns[key] for key, (p, name) in where.items() if p == parent}
        for name, fingerprint in fingerprints(lines, names).items():
            prints[(parent, name)] = fingerprint
        for path, _size, _time in listed_files(lines):
            if path.endswith("/" + outputs.CANCELLED):
                cancelled.add((parent, path[:-len(outputs.CANCELLED) - 1]))
            elif path.endswith("/job.id") and _time.isdigit():
                submitted[(parent, path[:-len("/job.id")])] = float(_time)
    queue = scheduler.parse_status("\n".join(queue_lines))
    said = jobinfo.details(getattr(scheduler, "family", ""), "\n".join(queue_lines))
    jobs = {}
    for key, (parent, name) in where.items():
        exit_ = markers.get((parent, name + "/job.exit"), "")
        job_id = markers.get((parent, name + "/job.id"), "")
        times = dict(said.get(job_id, {})) if job_id else {}
        own = {"submitted": submitted.get((parent, name)),
               "started": _marker_time(markers.get((parent, name + "/job.started"), "")),
               "ended": _marker_time(exit_)}
        times.update((k, v) for k, v in own.items() if v is not None)     # the machine's own record wins
        if times.get("started") and times.get("submitted") and times["started"] < times["submitted"]:
            del times["started"]           # a start marker of an earlier job
        jobs[key] = {"sig": markers.get((parent, name + "/job.sig"), ""),
                     "id": markers.get((parent, name + "/job.id"), ""),
                     "exit": exit_, "fingerprint": prints.get((parent, name), "") if exit_ else "",
                     "cancelled": (parent, name) in cancelled,
                     "tries": markers.get((parent, name + "/job.tries"), ""), "times": times}
    if QUEUE_DOWN in queue_lines:
        # the scheduler did not answer: what it did not say is unknown, not gone
        for info in jobs.values():
            if info["id"] and info["id"] not in queue:
                queue[info["id"]] = (JobState.UNKNOWN, None)
    return stamps, jobs, queue


def _marker_time(line):
    """The epoch seconds a marker line ("<code or pid> <epoch>") ends with, or None."""
    words = line.split()
    return float(words[1]) if len(words) > 1 and words[1].isdigit() else None


def parse_manifest(text):
    found = {}
    for line in text.splitlines():
        if line.startswith("\\") or "  ./" not in line:
            continue            # escaped (odd) names are simply sent again
        digest, path = line.split("  ./", 1)
        found[path] = digest
    return found


def parse_submit(text):
    """{run key: (outcome, detail)}, outcome one of submitted, busy, changed, error, deferred
    (no free place in the user's queue: ``max_jobs``)."""
    found = {}
    for line in text.splitlines():
        words = line.split(" ", 2)
        if len(words) < 2 or words[0] not in ("@submitted", "@busy", "@changed", "@error", "@deferred"):
            continue
        outcome, key, detail = words[0][1:], words[1], (words[2] if len(words) > 2 else "").strip()
        if outcome == "error" and key in found and found[key][0] == "error":
            found[key] = ("error", (found[key][1] + "\n" + detail).strip())
        else:
            found[key] = (outcome, detail)
    return found


def fetch_fingerprint(lines, rundir, patterns):
    """The fingerprint of a run from the listing ``fetch_script`` printed before its archive."""
    name = split_rundir(rundir)[1]
    return fingerprints(lines, {name: patterns}).get(name, "")


class CheckAnswer:
    """What the machine check (``check_script``) printed.

    ``rows``: (name, status, detail) in order, status OK, WARN, FAIL, INFO
    or ``-`` (the caller judges the detail); ``start``, ``end``: the
    machine's clock (seconds) as the script began and ended, or None;
    ``before``: what the login printed before the script's first line;
    ``associations``: the user's Slurm (account, partition, qos) triples,
    or None where the machine keeps none.
    """

    def __init__(self, text):
        self.rows, self.start, self.end, self.associations = [], None, None, None
        before, started = [], False
        for line in text.splitlines():
            if line.startswith("@t "):
                words = line.split()
                value = _seconds(words[2]) if len(words) == 3 else None
                if words[1] == "start" and not started:
                    self.start, started = value, True
                elif words[1] == "end":
                    self.end = value
            elif not started:
                before.append(line)
            elif line.startswith("@c\t"):
                fields = line.split("\t", 3) + ["", "", ""]
                self.rows.append((fields[1], fields[2], fields[3].strip()))
            elif line.startswith("@a "):
                fields = (line[3:].split("|") + ["", "", ""])[:3]
                self.associations = (self.associations or []) + [tuple(f.strip() for f in fields)]
        self.before = "\n".join(before).strip()

    def found(self, name):
        """The (status, detail) rows called ``name``."""
        return [(status, detail) for n, status, detail in self.rows if n == name]


def _seconds(text):
    try:
        return float(text)
    except ValueError:
        return None


def parse_check(text):
    """The machine check's answer, a :class:`CheckAnswer`."""
    return CheckAnswer(text)
