"""The remote protocol: every shell script hpcdo runs on a machine.

Each ``*_script`` function returns one POSIX ``sh`` script; each script is
one round trip.  Their text is in ``sh/`` beside this module, one template
per script (see :mod:`hpcdo.remote.shell` for how they are filled); the
functions here only make the values.  Every value from a recipe, a machine
file or the command line enters a script through :func:`q` (``shlex.quote``);
the only unquoted text is hpcdo's own code and output patterns, which the
recipe API restricts to plain glob characters.  Paths are relative to the
work root ``$R``, which every script enters first.  The answers are parsed by
:mod:`hpcdo.remote.answers` (re-exported here).

State on the machine, under ``$R/<recipe>/``:

``src/``, ``src/.hpcdo-stamp``
    the synced or cloned source and the signature it matches
``build/``, ``build/.hpcdo-configure``, ``build/.hpcdo-compile``
    the CMake build directory and the stamps of the two steps
``geometry/<name>/<file>``, ``geometry/<name>/.hpcdo-stamp``
    an uploaded geometry and its content hash
``runs/<run>/``
    the run directory: ``job.sh``, ``job.sig`` (inputs), ``job.id``,
    ``job.started`` and ``job.exit`` (written by the jobscript), outputs

A stamp is written last, after its step succeeded, and removed first when
the step starts again, so an interrupted step is never taken as done.
"""

import hashlib
import re
import shlex

from .. import ConfigError
from .. import outputs
from .answers import (fetch_fingerprint, fingerprints, listed_files, parse_check,  # noqa: F401
                      parse_manifest, parse_probe, parse_submit, split_rundir)
from .shell import code, quoted, read, render

q = shlex.quote

ROOT_RE = re.compile(r"^(~|\$[A-Za-z_][A-Za-z0-9_]*|\$\{[A-Za-z_][A-Za-z0-9_]*\})?(/?[^\n\0]*)$")
#: a variable of the machine's environment, expanded anywhere in the work root: $NAME or ${NAME}
ROOT_VAR_RE = re.compile(r"\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\})")

#: the run markers the probe reads (job.started: "pid epoch" as the job began)
MARKERS = ("job.sig", "job.id", "job.exit", "job.tries", "job.started")

#: the commands schedulers are asked about jobs with (never those that submit)
QUERY_COMMANDS = ("squeue", "sacct", "scontrol", "qstat", "qacct", "bjobs", "bhist", "yhq", "yhacct")

#: seconds after which a submit lock whose holder cannot be checked (on
#: another login node, or with no record) is taken to be abandoned
LOCK_LIFE = 3600


def words(values):
    """``values`` quoted, as shell words separated by spaces."""
    return code(" ".join(q(str(v)) for v in values))


def root_expr(remote_root):
    """A shell expression for the work root: a leading ``~``, and ``$NAME`` or ``${NAME}`` anywhere, expand.

    The rest is literal text, single-quoted: a ``$(...)``, ``${X:-...}`` or backquote in it
    runs nothing.
    """
    m = ROOT_RE.match(remote_root)
    if not m:
        raise ConfigError("remote_root %r: only a leading ~ and $VARIABLE or ${VARIABLE} may be expanded"
                          % remote_root)
    head, rest = m.group(1), m.group(2)
    if head == "~":
        head = '"$HOME"'
    elif head:
        head = '"$%s"' % head.strip("${}")
    elif not rest.startswith("/"):
        head, rest = '"$HOME"', "/" + rest
    parts, at = [head or ""], 0
    for var in ROOT_VAR_RE.finditer(rest):
        parts += [q(rest[at:var.start()])] if var.start() > at else []
        parts.append('"$%s"' % (var.group(1) or var.group(2)))
        at = var.end()
    parts += [q(rest[at:])] if at < len(rest) else []
    return "".join(parts)


def prelude(remote_root):
    """Enter the work root (creating it) and define the helpers all scripts use."""
    return render("prelude.sh", root=code(root_expr(remote_root)))


def _script(remote_root, template, **values):
    return prelude(remote_root) + render(template, **values)


def write_stamp(path, text):
    """Shell that writes ``text`` to ``path`` whole or not at all (a temporary file, then a rename).

    ``path`` is shell text (it may use variables such as ``$s``); ``text`` is quoted here.
    """
    return write_output(path, 'printf "%%s\\n" %s' % q(text))


def write_output(path, command):
    """Shell that writes what ``command`` prints to ``path`` whole or not at all.

    For stamps holding values only the script knows (a commit, a hash).  The
    temporary file is this shell's own ($$): two writers never share one.
    """
    return '%s > %s.tmp.$$ && mv -f %s.tmp.$$ %s' % (command, path, path, path)


def _json_stamp(path, sig, field, variable):
    """Shell that writes ``{"sig": sig, field: $variable}`` to ``path``."""
    return code(write_output(path, "printf '{\"sig\": \"%%s\", \"%s\": \"%%s\"}\\n' %s \"$%s\""
                             % (field, q(sig), variable)))


def setup_lines(modules, module_init, env):
    """Shell lines that load modules and export variables, for builds and jobs."""
    lines = []
    if module_init:
        # site init files often read unset variables: source them without -u
        init = root_expr(module_init)
        lines.append('case $- in *u*) set +u; . %s; rc=$?; set -u;; *) . %s; rc=$?;; esac; '
                     '[ "$rc" -eq 0 ]' % (init, init))
    for entry in modules:
        parts = entry.split()
        if not parts:
            continue
        if parts[0] not in ("load", "unload", "swap", "switch", "purge", "use", "unuse", "restore"):
            parts = ["load"] + parts
        lines.append("module " + " ".join(q(w) for w in parts))
    for key, value in sorted(env.items()):
        lines.append("export %s=%s" % (key, q(str(value))))
    return lines


# -- the state probe ----------------------------------------------------------

def git_auth(user, password):
    """Shell that lets the git commands after it answer a login with ``user`` and ``password``.

    They are exported as environment variables, which only their owner can
    read in ``/proc``, and handed to git by a ``GIT_ASKPASS`` program written
    for the purpose (``sh/askpass.sh``: it holds no secret, and is removed on
    exit): never as arguments, which every user of a login node sees with
    ``ps``.  Nothing when there is no user.
    """
    if user is None:
        return ""
    return render("git_auth.sh", user=quoted(user), password=quoted(password or ""),
                  askpass=quoted(read("askpass.sh")))


def probe_script(remote_root, stamps, runs, scheduler, heads=(), query_timeout=None):
    """One script that reports every stamp and every run's job in one round trip.

    ``stamps``: (key, stamp path, [paths that must exist]) triples.
    ``runs``: (key, run directory, output patterns) triples.
    ``heads``: (key, git URL, ref, user, password): what each branch or tag
    names now (user and password None, or see :func:`git_auth`: a probe with
    them must be sent privately).
    ``query_timeout``: seconds after which a scheduler query counts as unanswered.
    Jobs with an id but no exit marker are looked up in the queue at the end,
    and so are jobs whose marker says a signal ended them (exit 128-299): the
    scheduler tells whether that was a time limit, a cancel or a node failure.
    """
    by_parent = {}
    for run in runs:
        by_parent.setdefault(split_rundir(run[1])[0], []).append(run)
    parents = []
    for parent, here in by_parent.items():
        # names relative to the parent keep the script and its answer short
        names = [split_rundir(rundir)[1] for _key, rundir, _patterns in here]
        markers = ["%s/%s" % (q(name), marker) for name in names for marker in MARKERS]
        parents.append((quoted(parent), code(" ".join(markers)),
                        _listing(names, [p for _key, _rundir, patterns in here for p in patterns],
                                 outputs.MARKED + (outputs.CANCELLED,))))
    return _script(
        remote_root, "probe.sh",
        stamps=[(quoted(key), quoted(stamp), words(products)) for key, stamp, products in stamps],
        heads=[(quoted(key), quoted(url), quoted(ref), code(git_auth(user, password)))
               for key, url, ref, user, password in heads],
        parents=parents,
        query_timeout=int(query_timeout or 0),
        query_commands=code(" ".join(QUERY_COMMANDS)),
        status=code(scheduler.status_snippet()))


def _listing(names, patterns, extra=()):
    """``lf``'s arguments listing the results of the run directories ``names`` (in the current directory)."""
    return code("%s %s" % (" ".join(q(n) for n in names), outputs.find_tests(patterns, extra)))


def poll_script(remote_root, runs, scheduler, query_timeout=None):
    """The run part of the probe alone: markers and queue state of some runs."""
    return probe_script(remote_root, [], runs, scheduler, query_timeout=query_timeout)


# -- source -----------------------------------------------------------------

def manifest_script(remote_root, src):
    """List ``sha256  ./path`` for every file of the remote source tree."""
    return _script(remote_root, "manifest.sh", src=quoted(src))


def _lock_values(recipe_dir):
    """The values of ``build_lock.sh``: the lock of ``recipe_dir``'s builds.

    Two checkouts of a project may share a machine's work root; CMake and
    make in one build directory at once break each other.
    """
    return {"recipe_dir": quoted(recipe_dir),
            "lock": code('"$R"/' + q("%s/.hpcdo-build.lock" % recipe_dir))}


def sync_script(remote_root, src, stamp_text, seal, lock_dir=None):
    """Unpack a tar of changed files from stdin into ``src``, apply deletions, stamp.

    The stamp goes first and comes back last: a cut-short upload leaves no
    stamp, and the next sync compares the files' real content again.  tar
    itself cannot tell a stream cut between two members from a whole one (it
    exits 0), so the stream ends with a member ``.hpcdo-end`` holding
    ``seal``, a token new for every upload: without it nothing is stamped.
    ``lock_dir``: the recipe directory whose build lock the sync takes, so
    that it never changes a source tree another checkout is building.
    """
    lock = _lock_values(lock_dir) if lock_dir else {"recipe_dir": None}
    return _script(remote_root, "sync.sh", src=quoted(src), seal=quoted(seal),
                   stamp=code(write_stamp('"$s/.hpcdo-stamp"', stamp_text)), **lock)


def git_clone_script(remote_root, src, url, ref, stamp_sig, user=None, password=None):
    """Clone (or fetch) on the machine, check out ``ref``, stamp with the commit.

    ``user``, ``password``: a login for ``url``, given by :func:`git_auth`.
    """
    return _script(remote_root, "git_clone.sh", auth=code(git_auth(user, password)), src=quoted(src),
                   url=quoted(url), ref=quoted(ref), stamp=_json_stamp('"$s/.hpcdo-stamp"', stamp_sig, "commit", "c"))


# -- build ------------------------------------------------------------------

def _build_values(recipe_dir, setup, source_sig):
    """The values of the build lock and ``build_setup.sh``.

    ``source_sig``: under the build lock, a build checks the source stamp,
    so one checkout never builds another's code under its own name.
    """
    values = _lock_values(recipe_dir)
    values["source_sig"] = quoted('"sig": "%s"' % source_sig) if source_sig else None
    values["setup"] = [(code(line), quoted("hpcdo: build setup failed: " + line)) for line in setup]
    return values


def configure_script(remote_root, recipe_dir, setup, cmake, options, fresh, cache_text, stamp_text,
                     source_sig=None):
    """Run CMake in ``build/``.

    ``fresh``: start from a new cache, because an option left the recipe or
    the compilers may have changed, which ``-D`` cannot undo (CMake keeps a
    removed option's value, and its compiler, in the cache).  The cache and
    CMake's record of the compilers go; the objects stay, and ``make``
    rebuilds those whose flags changed.  ``build/.hpcdo-cache`` says what the
    cache was made from (``cache_text``): it is written before CMake runs, so
    a configure that fails still leaves the record of what its cache holds.
    """
    args = []
    for name, value in sorted(options.items()):
        if isinstance(value, bool):
            value = "ON" if value else "OFF"
        args.append("-D%s=%s" % (name, value))
    return _script(remote_root, "configure.sh", fresh=bool(fresh), cmake=command_words(cmake), options=words(args),
                   cache_stamp=code(write_stamp(".hpcdo-cache", cache_text)),
                   stamp=code(write_stamp(".hpcdo-configure", stamp_text)),
                   **_build_values(recipe_dir, setup, source_sig))


def compile_script(remote_root, recipe_dir, setup, cmake, jobs, target, executable, sig, source_sig=None):
    """Build, hash the executable, stamp; prints ``@binary <hash>`` last."""
    build = "%s --build . -j %d" % (command_words(cmake), int(jobs))
    if target:
        build += " --target %s" % q(target)
    return _script(remote_root, "compile.sh", build=code(build), executable=quoted(executable),
                   stamp=_json_stamp(".hpcdo-compile", sig, "binary", "b"),
                   **_build_values(recipe_dir, setup, source_sig))


def command_words(text):
    """A command setting such as ``cmake`` or ``/opt/cmake/bin/cmake -G Ninja``: quote each word."""
    return words(shlex.split(text))


# -- geometry -----------------------------------------------------------------

def upload_script(remote_root, directory, filename, size, stamp_text):
    """Receive one file on stdin; keep it only if all ``size`` bytes arrived."""
    return _script(remote_root, "upload.sh", directory=quoted(directory), filename=quoted(filename),
                   size=int(size), stamp=code(write_stamp('"$d/.hpcdo-stamp"', stamp_text)))


def input_script(remote_root, directory, name, seal, stamp_text):
    """Receive one input as a sealed tar whose files are under ``content``, into ``directory``
    (the input's place in the content-addressed store), then stamp (see ``sh/input.sh``)."""
    return _script(remote_root, "input.sh", directory=quoted(directory), name=quoted(name), seal=quoted(seal),
                   stamp=code(write_stamp('"$d/.hpcdo-stamp"', stamp_text)))


# -- jobs ---------------------------------------------------------------------

class SubmitRequest:
    """One run to submit: where, for which inputs, replacing which job id, with which jobscript.

    ``links``: (source relative to the run dir, name) pairs of files to
    snapshot into the run directory (the executable, the geometry).
    ``job.tries`` counts the jobs submitted in a row for the same inputs;
    ``fresh`` (a retry the user asked for) starts the count again.
    """

    def __init__(self, key, rundir, expected_id, sig, links, patterns, jobscript, fresh=False,
                 binary=None, build_stamp=None, recipe_dir=None):
        self.key = key
        self.fresh = fresh
        #: the executable's hash the signature was made with, the compile
        #: stamp (relative to the run directory) that must still name it, and
        #: the recipe directory whose build lock the check is made under
        self.binary = binary
        self.build_stamp = build_stamp
        self.recipe_dir = recipe_dir or rundir.split("/", 1)[0]
        self.rundir = rundir
        self.expected_id = expected_id
        self.sig = sig
        self.links = links
        self.patterns = patterns
        self.jobscript = jobscript if jobscript.endswith("\n") else jobscript + "\n"


def submit_script(remote_root, requests, scheduler, max_jobs=0, known=0):
    """Submit every request's jobscript, at most once per run, in one script.

    Each run's block takes a lock in its run directory and submits only if
    ``job.id`` still holds ``expected_id`` (what the caller saw when it
    decided to submit): a second invocation racing the first sees a changed
    id and submits nothing.  It ignores hang-ups and interrupts, so a dropped
    connection or Ctrl-C cannot stop it between the submission and recording
    the job id.  Every answer line names the run it is about.
    ``max_jobs``: submit only while the user has fewer jobs queued (at
    least ``known``, the jobs the caller knows active); the rest answer
    ``@deferred``.
    """
    return _script(remote_root, "submit.sh", requests=[_request_values(r) for r in requests],
                   lock_life=LOCK_LIFE, submit=code(scheduler.submit_snippet()),
                   cancel=code(scheduler.cancel_snippet()), max_jobs=int(max_jobs or 0), known=int(known),
                   count=code(scheduler.count_snippet()) if max_jobs else None)


def _request_values(req):
    names = [name for _src, name in req.links]
    # the jobscript goes in a quoted here-document, whose end line it cannot hold
    end = "HPCDO_END_%s" % hashlib.sha256(req.jobscript.encode()).hexdigest()[:16]
    assert end not in req.jobscript
    return {
        "key": quoted(req.key), "rundir": quoted(req.rundir), "slots": int(getattr(req, "slots", 1)), "expected_id": quoted(req.expected_id),
        "sig": quoted(req.sig), "fresh": bool(req.fresh),
        "binary": quoted('"binary": "%s"' % req.binary) if req.binary and req.build_stamp else None,
        "build_stamp": quoted(req.build_stamp or ""), "names": words(names),
        "build_lock": _lock_values(req.recipe_dir)["lock"],
        "links": [(quoted(source), quoted(name)) for source, name in req.links],
        "end": code(end), "jobscript": code(req.jobscript),
        # output patterns are plain glob characters (the recipe API checks
        # them): they stay unquoted so that the shell expands them
        "patterns": code(" ".join(("job.sh", "job.out", "job.exit", "job.started", "job.cancelled")
                                  + tuple(req.patterns))),
        "keep": code("|".join(q(n) for n in tuple(outputs.OWN_FILES) + tuple(names))),
    }


def cancel_script(remote_root, jobs, scheduler):
    """Cancel ``jobs`` ((run directory, job id) pairs) with the scheduler's own command, in one call.

    Each run directory first gets a ``job.cancelled`` mark, so the run reads
    as cancelled whatever the scheduler's accounting keeps.
    """
    return _script(remote_root, "cancel.sh", rundirs=[quoted(d) for d, _id in jobs],
                   ids=quoted(",".join(i for _d, i in jobs)), cancel=code(scheduler.cancel_snippet()))


def tail_script(remote_root, rundir, lines=20):
    return _script(remote_root, "tail.sh", rundir=quoted(rundir), lines=int(lines))


def fetch_script(remote_root, rundir, patterns, skip=()):
    """List a run's results as the probe does (for their fingerprint), then print ``@tar`` and a tar of them.

    ``skip``: names in the run directory that are not results (the
    executable and geometry snapshots).  Both lists are made by ``find``
    from the run's parent directory, so the archive's names start with the
    run's name; ``tar`` reads them from ``find`` (``-T``), never from an
    argument list.  ``find``'s tests select at least the fetched files;
    :func:`hpcdo.outputs.is_fetched` makes the exact choice on arrival.
    """
    parent, name = split_rundir(rundir)
    return _script(remote_root, "fetch.sh", parent=quoted(parent), name=quoted(name),
                   listing=_listing([name], patterns, outputs.MARKED),
                   tests=code(outputs.find_tests(patterns, outputs.LOGS)))


def remove_script(remote_root, paths):
    """Delete paths under the work root (the ``cold`` task)."""
    return _script(remote_root, "remove.sh", paths=words(paths))
