"""The remote protocol: every shell script hpcdo runs on a machine, and its parser.

Each function returns one POSIX ``sh`` script; each script is one round
trip.  Every value from a recipe, a machine file or the command line enters
a script through :func:`q` (``shlex.quote``); the only unquoted text is
hpcdo's own code and output patterns, which the recipe API restricts to
plain glob characters.  Paths are relative to the work root ``$R``, which
every script enters first.

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
import json
import re
import shlex

from .. import ConfigError
from .. import outputs
from ..schedulers.base import QUEUE_DOWN, JobState

q = shlex.quote

ROOT_RE = re.compile(r"^(~|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)?(/?[^\n\0]*)$")


def root_expr(remote_root):
    """A shell expression for the work root: ``~`` and one leading ``$VAR`` expand, the rest is literal."""
    m = ROOT_RE.match(remote_root)
    if not m:
        raise ConfigError("remote_root %r: only a leading ~ or $VARIABLE may be expanded" % remote_root)
    head, rest = m.group(1), m.group(2)
    if head == "~":
        head = '"$HOME"'
    elif head:
        head = '"$%s"' % head.strip("${}")
    elif not rest.startswith("/"):
        head, rest = '"$HOME"', "/" + rest
    return (head or "") + (q(rest) if rest else "")


HASH_FN = ('h() { if command -v sha256sum >/dev/null 2>&1; then sha256sum | cut -c1-64; '
           'else cksum | tr " " -; fi; }')


def prelude(remote_root):
    """Enter the work root (creating it) and define the helpers all scripts use."""
    return "\n".join([
        "set -u",
        "R=%s" % root_expr(remote_root),
        'mkdir -p "$R" && cd "$R" || { echo "hpcdo: cannot use the work root $R" >&2; exit 97; }',
        HASH_FN,
        "",
    ])


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


def setup_lines(modules, module_init, env):
    """Shell lines that load modules and export variables, for builds and jobs."""
    lines = []
    if module_init:
        # site init files often read unset variables: source them without -u
        init = root_expr(module_init)
        lines.append('case $- in *u*) set +u; . %s; rc=$?; set -u;; *) . %s; rc=$?;; esac; '
                     '[ "$rc" -eq 0 ]' % (init, init))
    for entry in modules:
        words = entry.split()
        if not words:
            continue
        if words[0] not in ("load", "unload", "swap", "switch", "purge", "use", "unuse", "restore"):
            words = ["load"] + words
        lines.append("module " + " ".join(q(w) for w in words))
    for key, value in sorted(env.items()):
        lines.append("export %s=%s" % (key, q(str(value))))
    return lines


# -- the state probe ----------------------------------------------------------

# The probe reads each stamp with the shell's own ``read`` (no process per
# file), every run's markers with one ``grep`` and every run's result files
# with one ``ls``, so its cost on the machine hardly grows with the number of
# runs: a shell function per run cost 80 us of the machine's time each.
PROBE_FNS = r"""
s() { k=$1; f=$2; shift 2; for p in "$@"; do [ -e "$p" ] || { printf '@s\t%s\t\n' "$k"; return 0; }; done
  v=; [ -f "$f" ] && read -r v < "$f"; printf '@s\t%s\t%s\n' "$k" "$v"; }
"""

MARKERS = ("job.sig", "job.id", "job.exit", "job.tries")

# Reads grep's "file:first line" output of the markers and prints, comma
# separated, the ids to ask the scheduler about: jobs with an id and no exit
# marker, or one that says a signal ended them (exit 128-299).
IDS_AWK = r"""!($1 in seen) { seen[$1] = 1; v = substr($0, length($1) + 2); gsub(/^[ \t]+|[ \t]+$/, "", v)
  n = split($1, p, "/"); d = substr($1, 1, length($1) - length(p[n]) - 1)
  if (p[n] == "job.id") id[d] = v; else if (p[n] == "job.exit") { split(v, e, " "); ex[d] = e[1] } }
END { for (d in id) if (id[d] != "" && (!(d in ex) || ex[d] ~ /^(12[89]|1[3-9][0-9]|2[0-9][0-9])?$/)) {
  printf "%s%s", sep, id[d]; sep = "," } }"""


# Lists files as structured lines, "@f <size> <mtime> <path>", one per
# regular file ``find`` selects (its arguments: run directories, then
# tests), so a fingerprint depends on each file's own name, size and
# modification time only: never on column padding or on link counts, which
# change when other runs are listed beside it or another run snapshots the
# same executable.  GNU and busybox stat give the time in seconds; where
# ``stat -c`` is missing, ``ls -lnd`` lines are parsed field by field
# (minute precision).  ``stat`` gets its names from ``find -exec +``, never
# from a shell expansion, so any number of files fits.
LIST_FN = r"""lf() { find "$@" -type f -exec stat -c '@f %s %Y %n' {} + 2>/dev/null; }
stat -c %Y . >/dev/null 2>&1 || lf() { find "$@" -type f -exec ls -lnd {} + 2>/dev/null; }"""


def _listing(names, patterns, extra=()):
    """Shell that lists the results of the run directories ``names`` (in the current directory)."""
    return "lf %s %s" % (" ".join(q(n) for n in names), outputs.find_tests(patterns, extra))


def _split_rundir(rundir):
    """(the directory the probe enters, the run's name in it) of a run directory."""
    parent, _, name = rundir.rpartition("/")
    return parent or ".", name


def _runs_under(parent, runs):
    """The markers and results of ``runs``, all in directory ``parent``, which is entered once.

    One ``grep`` prints each marker's first line after its file's name
    (``/dev/null`` makes it name the file even when there is one), an awk
    picks the ids to ask the scheduler about, one ``ls`` lists the results.
    Names relative to ``parent`` keep the script and its answer short.
    """
    names = [_split_rundir(rundir)[1] for _key, rundir, _patterns in runs]
    files = ["%s/%s" % (q(name), marker) for name in names for marker in MARKERS]
    return "\n".join([
        "if cd %s 2>/dev/null; then" % q(parent),
        "m=$(grep -e '' -- /dev/null %s 2>/dev/null)" % " ".join(files),
        "printf '@m %%s\\n%%s\\n' %s \"$m\"" % q(parent),
        "i=$(printf '%%s\\n' \"$m\" | awk -F: '%s')" % IDS_AWK,
        '[ -n "$i" ] && ids="$ids${ids:+,}$i"',
        "printf '@ls %%s\\n' %s" % q(parent),
        _listing(names, [p for _key, _rundir, patterns in runs for p in patterns],
                 outputs.MARKED + (outputs.CANCELLED,)),
        'cd "$R"',
        "fi",
    ])


def git_auth(user, password):
    """Shell that lets the git commands after it answer a login with ``user`` and ``password``.

    They are exported as environment variables, which only their owner can
    read in ``/proc``, and handed to git by a ``GIT_ASKPASS`` program written
    for the purpose (it holds no secret, and is removed on exit): never as
    arguments, which every user of a login node sees with ``ps``.  Nothing
    when there is no user.
    """
    if user is None:
        return ""
    askpass = "#!/bin/sh\ncase $1 in [Uu]sername*) printf '%s\\n' \"$HPCDO_GIT_USER\";; " \
              "*) printf '%s\\n' \"$HPCDO_GIT_PASS\";; esac\n"
    return ("HPCDO_GIT_USER=%s HPCDO_GIT_PASS=%s; export HPCDO_GIT_USER HPCDO_GIT_PASS\n"
            'hpcdo_askpass=$(mktemp "${TMPDIR:-/tmp}/hpcdo-askpass.XXXXXX" 2>/dev/null) || '
            'hpcdo_askpass="$HOME/.hpcdo-askpass.$$"\n'
            "trap 'rm -f \"$hpcdo_askpass\"' EXIT\n"
            'printf %%s %s > "$hpcdo_askpass" && chmod 700 "$hpcdo_askpass" && '
            'GIT_ASKPASS=$hpcdo_askpass && export GIT_ASKPASS\n'
            % (q(user), q(password or ""), q(askpass)))


def _ls_remote(key, url, ref):
    """Shell that prints ``@g <key> <sha> <ref name>`` for each ref of ``url`` that ``ref`` names.

    It never prompts (no terminal, BatchMode for ssh) and gives up after 30 s
    where ``timeout`` exists: an unreachable repository leaves the branch
    unknown, not the call hanging.
    """
    return ("{ t=; command -v timeout >/dev/null 2>&1 && t='timeout 30'; "
            "GIT_TERMINAL_PROMPT=0 GIT_SSH_COMMAND='ssh -o BatchMode=yes' $t git ls-remote -- %s %s "
            "2>/dev/null | awk -v k=%s '{ print \"@g\", k, $1, $2 }'; }" % (q(url), q(ref), q(key)))


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
    out = [prelude(remote_root), PROBE_FNS, LIST_FN, "ids="]
    for key, stamp, products in stamps:
        out.append("s %s %s %s" % (q(key), q(stamp), " ".join(q(p) for p in products)))
    for key, url, ref, user, password in heads:
        out.append("(%s%s)" % (git_auth(user, password), _ls_remote(key, url, ref)))
    by_parent = {}
    for run in runs:
        by_parent.setdefault(_split_rundir(run[1])[0], []).append(run)
    for parent, here in by_parent.items():
        out.append(_runs_under(parent, here))
    if query_timeout:
        out.append(_time_limited(query_timeout))
    out.append('if [ -n "$ids" ]; then echo @q; %s; fi' % scheduler.status_snippet())
    out.append("exit 0")
    return "\n".join(out) + "\n"


#: the commands schedulers are asked about jobs with (never those that submit)
QUERY_COMMANDS = ("squeue", "sacct", "scontrol", "qstat", "qacct", "bjobs", "bhist", "yhq", "yhacct")


def _time_limited(seconds):
    """Shell that makes each scheduler query give up after ``seconds`` (where ``timeout`` exists).

    A wedged ``squeue`` hung the probe and every wait with it.  Each query
    command found on PATH becomes a function running it under ``timeout``
    (which stops the command's whole process group); its failure then reads
    as the scheduler not answering (``@qfail``), never as the job gone.  A
    command the machine's ``shell_setup`` already made a function is left
    as it is.
    """
    return ("if command -v timeout >/dev/null 2>&1; then for c in %s; do "
            "case $(command -v $c 2>/dev/null) in /*) eval \"$c() { timeout %d $c \\\"\\$@\\\"; }\";; esac; "
            "done; fi" % (" ".join(QUERY_COMMANDS), int(seconds)))


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
    about; each gets an entry in ``jobs``.
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
    where = {key: _split_rundir(rundir) for key, rundir, _p in runs}
    patterns = {key: p for key, _rundir, p in runs}
    prints, cancelled = {}, set()
    for parent, lines in listings.items():
        names = {name: patterns[key] for key, (p, name) in where.items() if p == parent}
        for name, fingerprint in fingerprints(lines, names).items():
            prints[(parent, name)] = fingerprint
        for path, _size, _time in listed_files(lines):
            if path.endswith("/" + outputs.CANCELLED):
                cancelled.add((parent, path[:-len(outputs.CANCELLED) - 1]))
    jobs = {}
    for key, (parent, name) in where.items():
        exit_ = markers.get((parent, name + "/job.exit"), "")
        jobs[key] = {"sig": markers.get((parent, name + "/job.sig"), ""),
                     "id": markers.get((parent, name + "/job.id"), ""),
                     "exit": exit_, "fingerprint": prints.get((parent, name), "") if exit_ else "",
                     "cancelled": (parent, name) in cancelled,
                     "tries": markers.get((parent, name + "/job.tries"), "")}
    queue = scheduler.parse_status("\n".join(queue_lines))
    if QUEUE_DOWN in queue_lines:
        # the scheduler did not answer: what it did not say is unknown, not gone
        for info in jobs.values():
            if info["id"] and info["id"] not in queue:
                queue[info["id"]] = (JobState.UNKNOWN, None)
    return stamps, jobs, queue


# -- source -----------------------------------------------------------------

def manifest_script(remote_root, src):
    """List ``sha256  ./path`` for every file of the remote source tree."""
    return prelude(remote_root) + (
        "cd %s 2>/dev/null || exit 0\n"
        "command -v sha256sum >/dev/null 2>&1 || exit 0\n"
        "find . -type f ! -name '.hpcdo-*' -exec sha256sum {} +\n" % q(src))


def parse_manifest(text):
    found = {}
    for line in text.splitlines():
        if line.startswith("\\") or "  ./" not in line:
            continue            # escaped (odd) names are simply sent again
        digest, path = line.split("  ./", 1)
        found[path] = digest
    return found


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
    lock = "\n".join(_build_lock(lock_dir)) + "\n" if lock_dir else ""
    return prelude(remote_root) + lock + (
        "s=%(src)s\n"
        'mkdir -p "$s" && rm -f "$s/.hpcdo-stamp" "$s/.hpcdo-end" || exit 1\n'
        'tar -xmf - -C "$s" || { echo "hpcdo: the source upload was cut short" >&2; exit 1; }\n'
        'read -r e < "$s/.hpcdo-end" 2>/dev/null || e=\n'
        'rm -f "$s/.hpcdo-end"\n'
        '[ "$e" = %(seal)s ] || { echo "hpcdo: the source upload was cut short (between two files)" >&2; exit 1; }\n'
        'if [ -f "$s/.hpcdo-delete" ]; then\n'
        '  while IFS= read -r f; do rm -f "$s/$f"; done < "$s/.hpcdo-delete"; rm -f "$s/.hpcdo-delete"\n'
        "fi\n"
        "%(stamp)s\n"
        % {"src": q(src), "seal": q(seal), "stamp": write_stamp('"$s/.hpcdo-stamp"', stamp_text)})


def git_clone_script(remote_root, src, url, ref, stamp_sig, user=None, password=None):
    """Clone (or fetch) on the machine, check out ``ref``, stamp with the commit.

    ``user``, ``password``: a login for ``url``, given by :func:`git_auth`.
    """
    return prelude(remote_root) + git_auth(user, password) + (
        "GIT_TERMINAL_PROMPT=0; export GIT_TERMINAL_PROMPT\n"
        "s=%(src)s\n"
        'rm -f "$s/.hpcdo-stamp"\n'
        # the origin is set to ``url`` each time: the recipe may have changed it
        'if [ -d "$s/.git" ]; then git -C "$s" remote set-url origin %(url)s && '
        'git -C "$s" fetch -q --force --tags origin || exit 1\n'
        'else rm -rf "$s" && git clone -q -- %(url)s "$s" || exit 1; fi\n'
        'if git -C "$s" rev-parse -q --verify "refs/remotes/origin/"%(ref)s"^{commit}" >/dev/null; then '
        'c="origin/"%(ref)s; else c=%(ref)s; fi\n'
        # a branch is followed to what was just fetched: a local branch of
        # the same name would stay at the commit of the first clone
        'git -C "$s" checkout -q -f --detach "$c^{commit}" || exit 1\n'
        'c=$(git -C "$s" rev-parse HEAD) || exit 1\n'
        "%(stamp)s\n"
        'printf "@commit %%s\\n" "$c"\n'
        % {"src": q(src), "url": q(url), "ref": q(ref),
           "stamp": write_output('"$s/.hpcdo-stamp"', "printf '{\"sig\": \"%%s\", \"commit\": \"%%s\"}\\n' %s \"$c\""
                                 % q(stamp_sig))})


# -- build ------------------------------------------------------------------

def _source_is(recipe_dir, source_sig):
    """Lines that stop a build unless the machine's source is the one this call synced.

    Two checkouts with different sources may share a work root: under the
    build lock, a build checks the source stamp, so one never builds the
    other's code under its own name.
    """
    if not source_sig:
        return []
    return ['grep -q %s %s/src/.hpcdo-stamp 2>/dev/null || { echo "hpcdo: the source on the machine is not '
            'the one this call sent (another checkout of the project shares this work root?); call again" >&2; '
            'exit 96; }' % (q('"sig": "%s"' % source_sig), q(recipe_dir))]


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
        args.append(q("-D%s=%s" % (name, value)))
    return prelude(remote_root) + "\n".join(_build_lock(recipe_dir) + _source_is(recipe_dir, source_sig) +
                                             _checked(setup) + [
        "cd %s || exit 1" % q(recipe_dir),
        "rm -f build/.hpcdo-configure build/.hpcdo-compile",
        "mkdir -p build && cd build || exit 1",
    ] + (["rm -rf CMakeCache.txt CMakeFiles/[0-9]* CMakeFiles/CMakeTmp CMakeFiles/CMakeScratch"] if fresh else []) + [
        write_stamp(".hpcdo-cache", cache_text) + " || exit 1",
        # the output is kept in the shell too: on a full disk the log file
        # cannot hold the message that says so
        "out=$(%s %s ../src 2>&1); rc=$?" % (_command(cmake), " ".join(args)),
        'printf "%s\\n" "$out"; printf "%s\\n" "$out" > .hpcdo-configure.log 2>/dev/null',
        '[ "$rc" -eq 0 ] || exit "$rc"',
        write_stamp(".hpcdo-configure", stamp_text),
    ]) + "\n"


def compile_script(remote_root, recipe_dir, setup, cmake, jobs, target, executable, sig, source_sig=None):
    """Build, hash the executable, stamp; prints ``@binary <hash>`` last."""
    build = "%s --build . -j %d" % (_command(cmake), int(jobs))
    if target:
        build += " --target %s" % q(target)
    return prelude(remote_root) + "\n".join(_build_lock(recipe_dir) + _source_is(recipe_dir, source_sig) +
                                             _checked(setup) + [
        "cd %s/build || exit 1" % q(recipe_dir),
        "rm -f .hpcdo-compile",
        "out=$(%s 2>&1); rc=$?" % build,
        'printf "%s\\n" "$out"; printf "%s\\n" "$out" > .hpcdo-compile.log 2>/dev/null',
        '[ "$rc" -eq 0 ] || exit "$rc"',
        '[ -f %s ] || { echo "hpcdo: the build did not make %s" >&2; exit 1; }' % (q(executable), q(executable)),
        "b=$(h < %s)" % q(executable),
        write_output(".hpcdo-compile", "printf '{\"sig\": \"%%s\", \"binary\": \"%%s\"}\\n' %s \"$b\""
                     % q(sig)),
        'printf "@binary %s\\n" "$b"',
    ]) + "\n"


def _build_lock(recipe_dir):
    """Lines that wait until no other hpcdo builds this recipe in this work root.

    Two checkouts of a project may share a machine's work root; CMake and
    make in one build directory at once break each other.  The lock is a
    directory (mkdir is atomic everywhere) holding "time pid host"; it is
    taken over when its holder is gone (same host, no such process) or has
    held it for two hours, and removed when the script ends or is cut off.
    """
    lock = '"$R"/' + q("%s/.hpcdo-build.lock" % recipe_dir)
    return [
        "mkdir -p %s || exit 1" % q(recipe_dir),
        "n=0; while ! mkdir %s 2>/dev/null; do" % lock,
        "  t=0; p=; o=; read -r t p o < %s/t 2>/dev/null" % lock,
        '  if [ $(( $(date +%%s) - ${t:-0} )) -gt 7200 ] || { [ "$o" = "$(hostname)" ] && '
        '! kill -0 "${p:-0}" 2>/dev/null; }; then rm -rf %s; continue; fi' % lock,
        '  [ "$n" -eq 0 ] && echo "hpcdo: another hpcdo is building here; waiting" >&2',
        '  n=$((n + 1)); [ "$n" -gt 3600 ] && { echo "hpcdo: gave up waiting for the build lock" >&2; exit 1; }',
        "  sleep 1",
        "done",
        'printf "%%s %%s %%s\\n" "$(date +%%s)" "$$" "$(hostname)" > %s/t' % lock,
        "trap 'rm -rf %s' EXIT; trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM" % lock,
    ]


def _checked(setup):
    """Setup lines (module loads, exports) that stop the script at the first one failing."""
    return ["%s || { echo %s >&2; exit 98; }" % (line, q("hpcdo: build setup failed: " + line))
            for line in setup]


def _command(text):
    """A command setting such as ``cmake`` or ``/opt/cmake/bin/cmake -G Ninja``: quote each word."""
    return " ".join(q(w) for w in shlex.split(text))


# -- geometry -----------------------------------------------------------------

def upload_script(remote_root, directory, filename, size, stamp_text):
    """Receive one file on stdin; keep it only if all ``size`` bytes arrived."""
    return prelude(remote_root) + (
        "d=%(dir)s\n"
        'mkdir -p "$d" && rm -f "$d/.hpcdo-stamp" || exit 1\n'
        't="$d/.hpcdo-part.$$"\n'
        'cat > "$t" || { rm -f "$t"; exit 1; }\n'
        'n=$(wc -c < "$t" | tr -d " ")\n'
        'if [ "$n" != %(size)s ]; then rm -f "$t"; '
        'echo "hpcdo: upload cut short: $n of %(size)s bytes arrived" >&2; exit 1; fi\n'
        # read-only: every run directory holds a hard link to it, and a job that
        # wrote to its input would change what the stamp says was uploaded
        'chmod a-w "$t" && mv -f "$t" "$d"/%(file)s || exit 1\n'
        "%(stamp)s\n"
        % {"dir": q(directory), "file": q(filename), "size": int(size),
           "stamp": write_stamp('"$d/.hpcdo-stamp"', stamp_text)})


# -- jobs ---------------------------------------------------------------------

#: seconds after which a submit lock whose holder cannot be checked (on
#: another login node, or with no record) is taken to be abandoned
LOCK_LIFE = 3600


def _each_output(patterns, skip, body):
    """Shell that runs ``body`` with ``$f`` set to each existing output file."""
    names = "|".join(q(n) for n in tuple(outputs.OWN_FILES) + tuple(skip))
    return ('for p in %s; do for f in $p; do case $f in %s) ;; *) [ -e "$f" ] && %s;; esac; done; done'
            % (" ".join(patterns), names, body))


class SubmitRequest:
    """One run to submit: where, for which inputs, replacing which job id, with which jobscript.

    ``links``: (source relative to the run dir, name) pairs of files to
    snapshot into the run directory (the executable, the geometry).
    ``job.tries`` counts the jobs submitted in a row for the same inputs;
    ``fresh`` (a retry the user asked for) starts the count again.
    """

    def __init__(self, key, rundir, expected_id, sig, links, patterns, jobscript, fresh=False,
                 binary=None, build_stamp=None):
        self.key = key
        self.fresh = fresh
        #: the executable's hash the signature was made with, and the compile
        #: stamp (relative to the run directory) that must still name it
        self.binary = binary
        self.build_stamp = build_stamp
        self.rundir = rundir
        self.expected_id = expected_id
        self.sig = sig
        self.links = links
        self.patterns = patterns
        self.jobscript = jobscript if jobscript.endswith("\n") else jobscript + "\n"


def submit_script(remote_root, requests, scheduler):
    """Submit every request's jobscript, at most once per run, in one script.

    Each run's block takes a lock in its run directory and submits only if
    ``job.id`` still holds ``expected_id`` (what the caller saw when it
    decided to submit): a second invocation racing the first sees a changed
    id and submits nothing.  It ignores hang-ups and interrupts, so a dropped
    connection or Ctrl-C cannot stop it between the submission and recording
    the job id.  Every answer line names the run it is about.
    """
    return prelude(remote_root) + "\n".join(_submit_block(r, scheduler) for r in requests) + "\n"


def _heredoc(text, or_else=""):
    """``text`` as a quoted here-document; ``or_else`` runs if the command it feeds fails."""
    delimiter = "HPCDO_END_%s" % hashlib.sha256(text.encode()).hexdigest()[:16]
    assert delimiter not in text
    return "<<'%s'%s\n%s%s" % (delimiter, " || " + or_else if or_else else "", text, delimiter)


#: what the submission does when a write in the run directory fails (a full
#: disk, a quota): say so and stop, before anything is submitted
FULL = ('{ rm -f job.sh.tmp; printf "@error %%s cannot %s in the run directory (disk full or over '
        'quota?)\\n" "$k" >&3; exit 0; }')


def _submit_block(req, scheduler):
    link_lines = []
    for source, name in req.links:
        link_lines.append('ln -f %s %s 2>/dev/null || cp -f %s %s || '
                          '{ printf "@error %%s cannot copy %%s into the run directory\\n" "$k" %s >&3; exit 0; }'
                          % (q(source), q(name), q(source), q(name), q(name)))
    same_binary = []
    if req.binary and req.build_stamp:
        # another checkout sharing the work root may have rebuilt the
        # executable since this call did: checked before the snapshot is
        # linked and again after, so a rebuild in between is seen too
        same_binary = ['grep -q %s %s 2>/dev/null || { rm -f %s; printf "@error %%s the executable on the machine '
                       'is no longer the one this call built (another checkout of the project shares this work '
                       'root?); call again\\n" "$k" >&3; exit 0; }'
                       % (q('"binary": "%s"' % req.binary), q(req.build_stamp),
                          " ".join(q(name) for _src, name in req.links))]
    return "\n".join([
        "(",
        "k=%s" % q(req.key),
        "d=%s" % q(req.rundir),
        'mkdir -p "$d" && cd "$d" || { printf "@error %s cannot enter the run directory\\n" "$k"; exit 0; }',
        "trap '' HUP INT TERM PIPE",
        "exec 3>&1 >>submit.log 2>&1",
        "now=$(date +%s); h=$(hostname 2>/dev/null || uname -n)",
        # the lock is taken over only from a holder known to be gone: on this
        # login node, when its process has ended (whatever the clock says);
        # from another node, or with no record, after LOCK_LIFE. A holder
        # still inside a slow sbatch keeps it however long that takes.
        "if ! mkdir .submit.lock 2>/dev/null; then",
        "  t=0; p=; o=; read -r t p o < .submit.lock/t 2>/dev/null; case $t in ''|*[!0-9]*) t=0;; esac",
        '  if [ "$o" = "$h" ] && [ -n "$p" ]; then kill -0 "$p" 2>/dev/null && s=0 || s=1; '
        'else [ $((now - t)) -gt %d ] && s=1 || s=0; fi' % LOCK_LIFE,
        '  if [ "$s" = 1 ]; then '
        'rm -rf .submit.lock; mkdir .submit.lock 2>/dev/null || { printf "@busy %s\\n" "$k" >&3; exit 0; }',
        '  else printf "@busy %s\\n" "$k" >&3; exit 0; fi',
        "fi",
        'printf "%s %s %s\\n" "$now" "$$" "$h" > .submit.lock/t',
        "trap 'rm -rf .submit.lock' EXIT",
        "cur=$(cat job.id 2>/dev/null)",
        'if [ "$cur" != %s ]; then printf "@changed %%s %%s\\n" "$k" "$cur" >&3; exit 0; fi' % q(req.expected_id),
    ] + same_binary + [
        "cat > job.sh.tmp %s" % _heredoc(req.jobscript, FULL % "write the jobscript"),
        # keep the previous attempt's files rather than overwrite them
        'if [ -n "$cur" ]; then prev="previous/$cur"; mkdir -p "$prev"; %s; fi'
        % _each_output(("job.sh", "job.out", "job.exit", "job.started", "job.cancelled") + tuple(req.patterns),
                       [name for _src, name in req.links], 'mv -f "$f" "$prev/"'),
        "rm -f job.exit job.started job.id job.cancelled",
    ] + link_lines + same_binary + [
        "mv -f job.sh.tmp job.sh || " + FULL % "write the jobscript",
        # the jobs in a row for these inputs: automatic resubmissions are counted against ``retries``
        "n=0; %s" % ("" if req.fresh else
                     '[ -n "$cur" ] && [ "$(cat job.sig 2>/dev/null)" = %s ] && '
                     '{ read -r n 2>/dev/null < job.tries; case $n in ""|*[!0-9]*) n=1;; esac; }' % q(req.sig)),
        'printf "%%s\\n" %s > job.sig && printf "%%s\\n" "$((n + 1))" > job.tries || %s'
        % (q(req.sig), FULL % "record the inputs"),
        # fd 3 is the caller's pipe: a job that inherited it would hold the
        # connection open until it ended
        "if { %s; } 3>&-; then" % scheduler.submit_snippet(),
        # job.id is created only where there is none (ln, or noclobber where
        # links are not allowed): if another hpcdo recorded a job meanwhile
        # (it took over a lock it had reason to think abandoned), ours is the
        # one taken back.  A job whose id cannot be recorded would run unknown
        # to every later call: it is taken back too.
        '  if ! { printf "%s\\n" "$id" > .job.id.$$ && '
        '{ ln .job.id.$$ job.id 2>/dev/null || (set -C; cat .job.id.$$ > job.id) 2>/dev/null; }; }; then',
        '    rm -f .job.id.$$; other=$(cat job.id 2>/dev/null); ids=$id; { %s; } 3>&-' % scheduler.cancel_snippet(),
        '    [ -n "$other" ] && { printf "@changed %s %s\\n" "$k" "$other" >&3; exit 0; }',
        '    printf "@error %s job %s was submitted but its id cannot be recorded in the run directory '
        '(disk full or over quota?), so it was cancelled\\n" "$k" "$id" >&3; exit 0',
        '  fi',
        '  rm -f .job.id.$$',
        '  printf "@submitted %s %s\\n" "$k" "$id" >&3',
        "else",
        '  printf "@error %s the scheduler refused the job:\\n" "$k" >&3',
        '  [ -s submit.log ] || printf "@error %s (no message: the run directory may be full)\\n" "$k" >&3',
        '  tail -n 5 submit.log | while IFS= read -r l; do printf "@error %s %s\\n" "$k" "$l" >&3; done',
        "fi",
        ")",
    ])


def parse_submit(text):
    """{run key: (outcome, detail)}, outcome one of submitted, busy, changed, error."""
    found = {}
    for line in text.splitlines():
        words = line.split(" ", 2)
        if len(words) < 2 or words[0] not in ("@submitted", "@busy", "@changed", "@error"):
            continue
        outcome, key, detail = words[0][1:], words[1], (words[2] if len(words) > 2 else "").strip()
        if outcome == "error" and key in found and found[key][0] == "error":
            found[key] = ("error", (found[key][1] + "\n" + detail).strip())
        else:
            found[key] = (outcome, detail)
    return found


def poll_script(remote_root, runs, scheduler, query_timeout=None):
    """The run part of the probe alone: markers and queue state of some runs."""
    return probe_script(remote_root, [], runs, scheduler, query_timeout=query_timeout)


def cancel_script(remote_root, jobs, scheduler):
    """Cancel ``jobs`` ((run directory, job id) pairs) with the scheduler's own command, in one call.

    Each run directory first gets a ``job.cancelled`` mark, so the run reads
    as cancelled whatever the scheduler's accounting keeps.
    """
    marks = ['[ -d %s ] && : > %s/job.cancelled' % (q(d), q(d)) for d, _id in jobs]
    return prelude(remote_root) + "\n".join(marks + [
        "ids=%s" % q(",".join(i for _d, i in jobs)), scheduler.cancel_snippet()]) + "\n"


def tail_script(remote_root, rundir, lines=20):
    return prelude(remote_root) + "cd %s 2>/dev/null && tail -n %d job.out 2>/dev/null; exit 0\n" % (
        q(rundir), int(lines))


def fetch_script(remote_root, rundir, patterns, skip=()):
    """List a run's results as the probe does (for their fingerprint), then print ``@tar`` and a tar of them.

    ``skip``: names in the run directory that are not results (the
    executable and geometry snapshots).  Both lists are made by ``find``
    from the run's parent directory, so the archive's names start with the
    run's name; ``tar`` reads them from ``find`` (``-T``), never from an
    argument list.  ``find``'s tests select at least the fetched files;
    :func:`hpcdo.outputs.is_fetched` makes the exact choice on arrival.
    """
    parent, name = _split_rundir(rundir)
    tests = outputs.find_tests(patterns, outputs.LOGS)
    return prelude(remote_root) + "\n".join([
        LIST_FN,
        'cd %s 2>/dev/null && [ -d %s ] || { echo "hpcdo: the run directory is gone" >&2; exit 3; }'
        % (q(parent), q(name)),
        _listing([name], patterns, outputs.MARKED),
        "echo @tar",
        "find %s -type f %s -print | tar -cf - -T -" % (q(name), tests),
    ]) + "\n"


def fetch_fingerprint(lines, rundir, patterns):
    """The fingerprint of a run from the listing ``fetch_script`` printed before its archive."""
    name = _split_rundir(rundir)[1]
    return fingerprints(lines, {name: patterns}).get(name, "")


def remove_script(remote_root, paths):
    """Delete paths under the work root (the ``cold`` task)."""
    return prelude(remote_root) + "rm -rf -- %s\n" % " ".join(q(p) for p in paths)
