"""Which files of a run directory are its results, and which are fetched.

A run's ``outputs`` are shell glob patterns relative to its run directory
(the recipe API allows only plain names and ``* ? [ ]``).  A file is a
result when the first components of its path match a pattern component by
component, as the shell would expand it: ``*``, ``?`` and ``[...]`` never
match a ``/`` nor a leading ``.``; a pattern naming a directory takes every
file under it, hidden ones too.

On the machine, ``find`` selects the candidates with ``-path`` tests, which
are looser (there ``*`` also matches ``/``), so the machine never expands a
pattern into an argument list (70,000 result files exceeded the system's
limit) and never loops over files in the shell; the exact choice is made
here, on both the probe's listing and the fetched archive.
"""

import fnmatch
import shlex

#: hpcdo's own files in a run directory, never results
OWN_FILES = ("previous", "submit.log", ".submit.lock", "job.sh.tmp", "job.id.tmp", "job.exit.tmp", "job.sig",
             "job.tries")
#: the mark ``doit cancel`` leaves in a run directory: a state, not a result
CANCELLED = "job.cancelled"
#: markers that count in a run's fingerprint whatever its patterns say
MARKED = ("job.exit", "job.id")
#: what the jobscript writes about the job: fetched with the results
LOGS = ("job.sh", "job.out", "job.exit", "job.id", "job.started")


def _components(pattern):
    return [part for part in pattern.split("/") if part not in ("", ".")]


def _component_matches(name, pattern):
    if name.startswith(".") and not pattern.startswith("."):
        return False               # as the shell: a wildcard never matches a leading dot
    return fnmatch.fnmatchcase(name, pattern)


def matches(rel, patterns):
    """True if the file ``rel`` (a path relative to the run directory) is matched by one of ``patterns``."""
    parts = rel.split("/")
    for pattern in patterns:
        want = _components(pattern)
        if want and len(parts) >= len(want) and all(_component_matches(n, p) for n, p in zip(parts, want)):
            return True
    return False


def _own(rel):
    """True if ``rel`` is one of hpcdo's own files, or in one of its directories (``previous/``)."""
    return rel.split("/", 1)[0] in OWN_FILES or rel == CANCELLED


def is_result(rel, patterns):
    """True if ``rel`` counts in the run's fingerprint: a result, or an exit or id marker."""
    if _own(rel):
        return False
    return rel in MARKED or matches(rel, patterns)


def is_fetched(rel, patterns, skip=()):
    """True if ``rel`` is brought home by a fetch: a result or a log, not a snapshot named in ``skip``."""
    if _own(rel) or rel in skip:
        return False
    return rel in LOGS or matches(rel, patterns)


def _literal(name):
    """``name`` as a ``find -path`` pattern that matches only itself."""
    return "".join("[%s]" % c if c in "*?[]\\" else c for c in name)


def find_tests(patterns, extra=()):
    """``find`` tests (shell words) selecting at least the files ``patterns`` match, below any run directory.

    ``extra``: plain names directly in a run directory to select as well.
    File names with a newline or a backslash are left out: ``tar -T``
    and the listing read names a line at a time.
    """
    tests = []
    for name in extra:
        tests.append("-path %s" % shlex.quote("*/" + _literal(name)))
    for pattern in sorted(set("/".join(_components(p)) for p in patterns)):
        if pattern:
            tests.append("-path %s -o -path %s" % (shlex.quote("*/" + pattern), shlex.quote("*/" + pattern + "/*")))
    if not tests:
        return "! -name '*'"
    return "\\( %s \\) ! -name '*\n*' ! -name '*\\\\*'" % " -o ".join(tests)
