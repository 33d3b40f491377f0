"""Remote scripts run through dash and bash: hostile values stay data, never code.

More of every script, with fake scheduler and build commands: test_scripts_shells.py.
"""

import os
import subprocess

import pytest

from hpcdo.remote import scripts
from hpcdo.schedulers import get
from hpcdo.schedulers.base import JobState

HOSTILE = ["a b", "x;touch PWNED", "$(touch PWNED)", "`touch PWNED`", "q'uote", 'd"q', "new\nline",
           "ünï", "-rf", "*"]


SHELL = ["sh"]


@pytest.fixture(autouse=True, params=["dash", "bash"])
def shell(request):
    """Every test of this module runs once under dash and once under bash (through sh())."""
    SHELL[0] = request.param
    yield request.param
    SHELL[0] = "sh"


def sh(script, cwd, stdin=b""):
    return subprocess.run([SHELL[0], "-c", script], cwd=cwd, input=stdin, capture_output=True)


@pytest.mark.parametrize("value", HOSTILE)
def test_values_are_quoted(tmp_path, value):
    root = str(tmp_path / "root")
    stamp = '{"sig": "%s"}' % value.replace('"', "'")
    script = scripts.upload_script(root, "geo dir", value.replace("\n", "_").replace("/", "_"), 3, stamp)
    proc = sh(script, tmp_path, b"abc")
    assert proc.returncode == 0, proc.stderr
    assert not list(tmp_path.rglob("PWNED"))
    assert (tmp_path / "root" / "geo dir" / ".hpcdo-stamp").read_text() == stamp + "\n"


def test_setup_lines_quote_modules_and_env(tmp_path):
    lines = scripts.setup_lines(["gcc/12 $(touch PWNED)"], None, {"X": "$(touch PWNED) `y`"})
    assert lines == ["module load gcc/12 '$(touch' 'PWNED)'", "export X='$(touch PWNED) `y`'"]
    proc = sh(lines[1] + '\nprintf %s "$X"', tmp_path)
    assert proc.stdout == b"$(touch PWNED) `y`" and not (tmp_path / "PWNED").exists()


def test_root_expression():
    assert scripts.root_expr("~/w") == '"$HOME"/w'
    assert scripts.root_expr("$WORK/a b") == "\"$WORK\"'/a b'"
    assert scripts.root_expr("rel") == '"$HOME"/rel'
    assert scripts.root_expr("/abs/$(x)") == "'/abs/$(x)'"


def test_root_expression_expands_variables_anywhere_and_runs_nothing(tmp_path):
    """$NAME and ${NAME} past the start are the machine's too (FabSim3's /lustre/$SCRATCH/...);
    anything else the shell could run stays literal text."""
    assert scripts.root_expr("/lustre/$SCRATCH/jdoe") == '/lustre/"$SCRATCH"/jdoe'
    assert scripts.root_expr("$WORK/${GRP}x/a b") == "\"$WORK\"/\"$GRP\"'x/a b'"
    assert scripts.root_expr("~/w/$USER") == '"$HOME"/w/"$USER"'
    # a brace opened or closed alone is no variable: literal text, never "$HOME" plus a tail
    assert scripts.root_expr("${HOME/x") == "\"$HOME\"'/${HOME/x'"
    assert scripts.root_expr("$HOME}/x") == "\"$HOME\"'}/x'"
    root = str(tmp_path / "r") + "/$SCRATCH/$(touch PWNED)/${X:-$(touch PWNED)}/`touch PWNED`/$((1+1))/${GRP}"
    script = 'set -u\nR=%s\nprintf %%s "$R"' % scripts.root_expr(root)
    for shell in ("dash", "bash"):
        proc = subprocess.run([shell, "-c", script], cwd=str(tmp_path), capture_output=True,
                              env={"PATH": os.environ["PATH"], "SCRATCH": "s 1", "GRP": "g"})
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.decode() == (str(tmp_path / "r") + "/s 1/$(touch PWNED)/${X:-$(touch PWNED)}/"
                                        "`touch PWNED`/$((1+1))/g"), shell
        assert not list(tmp_path.rglob("PWNED"))


def test_upload_refuses_a_short_file(tmp_path):
    script = scripts.upload_script(str(tmp_path), "g", "f.txt", 10, '{"sig": "s"}')
    proc = sh(script, tmp_path, b"only5")
    assert proc.returncode == 1 and b"cut short: 5 of 10" in proc.stderr
    assert not (tmp_path / "g" / "f.txt").exists() and not (tmp_path / "g" / ".hpcdo-stamp").exists()
    assert os.listdir(tmp_path / "g") == []


def test_probe_reports_stamps_products_and_jobs(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "stamp").write_text('{"sig": "1"}\n')
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "stamp").write_text('{"sig": "2"}\n')     # product missing
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    (run / "job.sig").write_text("S\n")
    (run / "job.id").write_text("123\n")
    (run / "job.exit").write_text("0 1700000000\n")
    (run / "job.started").write_text("4242 1690000000\n")
    (run / "out.dat").write_text("x")
    os.utime(run / "job.id", (1680000000, 1680000000))
    local = get("local")
    runs = [("r", "runs/r", ["out.dat"]), ("none", "runs/none", ["*"])]
    script = scripts.probe_script(str(tmp_path), [("a", "a/stamp", ["a"]), ("b", "b/stamp", ["b/prod"])],
                                  runs, local)
    proc = sh(script, tmp_path)
    stamps, jobs, queue = scripts.parse_probe(proc.stdout.decode(), local, runs)
    assert stamps == {"a": '{"sig": "1"}', "b": None}
    assert jobs["r"]["sig"] == "S" and jobs["r"]["id"] == "123" and jobs["r"]["exit"].startswith("0 ")
    assert jobs["r"]["fingerprint"] and jobs["none"] == {"sig": "", "id": "", "exit": "", "fingerprint": "",
                                                      "cancelled": False, "tries": "", "times": {}}
    # when the job was submitted (job.id's mtime), started and ended, from the machine's own markers
    assert jobs["r"]["times"] == {"submitted": 1680000000, "started": 1690000000, "ended": 1700000000}
    assert queue == {}


class _EchoIds:
    """A scheduler whose status command prints the ids the probe decided to ask about."""
    def status_snippet(self):
        return 'printf "%s\\n" "$ids"'

    def parse_status(self, text):
        return {"asked": sorted(filter(None, text.replace(",", "\n").split("\n")))}


def test_probe_reads_markers_and_asks_only_about_unfinished_jobs(tmp_path):
    markers = {
        "queued": {"job.sig": "S1\n", "job.id": " 11 \n"},                   # no exit marker yet
        "done": {"job.sig": "S2\n", "job.id": "12\n", "job.exit": "0 1700000000\n"},
        "killed": {"job.id": "13\n", "job.exit": "137 1700000000\n"},          # a signal: ask why
        "failed": {"job.id": "14.pbs:x\n", "job.exit": "3 1700000000\nmore\n"},
        "cancelled": {"job.id": "15\n", "job.cancelled": ""},
        "empty": {"job.exit": "0 1\n"},                                         # no id: nothing to ask
    }
    for run, files in markers.items():
        (tmp_path / "runs" / run).mkdir(parents=True)
        for name, text in files.items():
            (tmp_path / "runs" / run / name).write_text(text)
    runs = [(r, "runs/" + r, ["out"]) for r in list(markers) + ["absent"]]
    proc = sh(scripts.probe_script(str(tmp_path), [], runs, _EchoIds()), tmp_path)
    assert proc.returncode == 0, proc.stderr
    _stamps, jobs, queue = scripts.parse_probe(proc.stdout.decode(), _EchoIds(), runs)
    assert queue == {"asked": ["11", "13", "15"]}
    assert (jobs["queued"]["sig"], jobs["queued"]["id"], jobs["queued"]["exit"]) == ("S1", "11", "")
    assert jobs["failed"]["id"] == "14.pbs:x" and jobs["failed"]["exit"] == "3 1700000000"
    assert [r for r in jobs if jobs[r]["cancelled"]] == ["cancelled"]
    assert jobs["done"]["fingerprint"] and not jobs["queued"]["fingerprint"]
    assert jobs["absent"] == {"sig": "", "id": "", "exit": "", "fingerprint": "", "cancelled": False,
                              "tries": "", "times": {}}


def test_probe_keeps_runs_of_the_same_name_under_two_recipes_apart(tmp_path):
    for recipe, job_id, exit_ in (("a", "21", "0 1\n"), ("b", "22", None)):
        run = tmp_path / recipe / "runs" / "x"
        run.mkdir(parents=True)
        (run / "job.id").write_text(job_id + "\n")
        (run / "out").write_text(recipe)
        if exit_:
            (run / "job.exit").write_text(exit_)
    runs = [("a", "a/runs/x", ["out"]), ("b", "b/runs/x", ["out"]), ("c", "c/runs/x", ["out"])]
    proc = sh(scripts.probe_script(str(tmp_path), [], runs, _EchoIds()), tmp_path)
    _stamps, jobs, queue = scripts.parse_probe(proc.stdout.decode(), _EchoIds(), runs)
    assert queue == {"asked": ["22"]}
    assert (jobs["a"]["id"], jobs["b"]["id"], jobs["c"]["id"]) == ("21", "22", "")
    assert jobs["a"]["fingerprint"] and not jobs["b"]["fingerprint"]


def probed_fingerprint(root, rundir, patterns):
    """The fingerprint a real probe gives the run in ``rundir``."""
    runs = [("k", rundir, patterns)]
    local = get("local")
    proc = sh(scripts.probe_script(str(root), [], runs, local), root)
    return scripts.parse_probe(proc.stdout.decode(), local, runs)[1]["k"]["fingerprint"]


def test_the_cancel_mark_is_no_part_of_the_fingerprint(tmp_path):
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    (run / "job.exit").write_text("0 1\n")
    before = probed_fingerprint(tmp_path, "runs/r", ["*"])
    (run / "job.cancelled").write_text("")
    assert probed_fingerprint(tmp_path, "runs/r", ["*"]) == before


def test_fingerprint_follows_result_files(tmp_path):
    run = tmp_path / "lb" / "runs" / "r"
    run.mkdir(parents=True)
    (run / "job.exit").write_text("0 1\n")
    (run / "out 1.dat").write_text("x")

    def fingerprint():
        return probed_fingerprint(tmp_path, "lb/runs/r", ["out*"])

    first = fingerprint()
    assert first and fingerprint() == first
    (run / "out 1.dat").write_text("xy")
    second = fingerprint()
    assert second != first
    (run / "out2.dat").write_text("new")
    assert fingerprint() != second
    # the fetch script lists the same files the same way
    proc = sh(scripts.fetch_script(str(tmp_path), "lb/runs/r", ["out*"]), tmp_path)
    header = proc.stdout.split(b"@tar\n", 1)[0].decode().splitlines()
    assert scripts.fetch_fingerprint(header, "lb/runs/r", ["out*"]) == fingerprint()


def test_fingerprint_is_the_same_whether_one_run_or_all_are_listed(tmp_path):
    """Issue 10.1: ``ls`` padded sizes to the widest file of the listing, so a run listed
    beside a bigger one (the probe) printed differently than alone (the fetch)."""
    for name, size in (("small", 50), ("big", 8192)):
        run = tmp_path / "runs" / name
        run.mkdir(parents=True)
        (run / "job.exit").write_text("0 1\n")
        (run / "out.dat").write_bytes(b"x" * size)
    runs = [("small", "runs/small", ["*"]), ("big", "runs/big", ["*"])]
    local = get("local")
    proc = sh(scripts.probe_script(str(tmp_path), [], runs, local), tmp_path)
    probed = scripts.parse_probe(proc.stdout.decode(), local, runs)[1]
    for name in ("small", "big"):
        fetch = sh(scripts.fetch_script(str(tmp_path), "runs/" + name, ["*"]), tmp_path)
        header = fetch.stdout.split(b"@tar\n", 1)[0].decode().splitlines()
        alone = scripts.fetch_fingerprint(header, "runs/" + name, ["*"])
        assert probed[name]["fingerprint"] == alone == probed_fingerprint(tmp_path, "runs/" + name, ["*"])


def test_fingerprint_ignores_link_counts_and_hpcdos_own_files(tmp_path):
    """Issue 10.1: another run's snapshot of the same executable (a hard link) changed the
    link count ``ls`` printed, and so every other run's fingerprint."""
    build = tmp_path / "build"
    build.mkdir()
    (build / "app").write_bytes(b"\x7fELF")
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    (run / "job.exit").write_text("0 1\n")
    (run / "out.dat").write_text("x")
    os.link(build / "app", run / "app")
    before = probed_fingerprint(tmp_path, "runs/r", ["*"])
    os.link(build / "app", tmp_path / "other-snapshot")         # another run submitted
    (run / "submit.log").write_text("sbatch said something\n")  # hpcdo's own file
    (run / "previous").mkdir()
    (run / "previous" / "old.out").write_text("old")
    assert probed_fingerprint(tmp_path, "runs/r", ["*"]) == before


def test_fingerprint_sees_a_same_size_rewrite_within_the_minute(tmp_path):
    """Times count to the second (``ls`` showed minutes), and nested result files count."""
    run = tmp_path / "runs" / "r"
    (run / "out" / "a").mkdir(parents=True)
    (run / "job.exit").write_text("0 1\n")
    (run / "out" / "a" / "deep.dat").write_text("one")
    first = probed_fingerprint(tmp_path, "runs/r", ["out"])
    t = os.stat(run / "out" / "a" / "deep.dat").st_mtime
    (run / "out" / "a" / "deep.dat").write_text("two")
    os.utime(run / "out" / "a" / "deep.dat", (t + 1, t + 1))
    assert probed_fingerprint(tmp_path, "runs/r", ["out"]) != first


def test_fingerprint_from_ls_where_stat_is_missing(tmp_path):
    """Where ``stat -c`` does not work, ``ls -lnd`` fields are parsed, not its padded text."""
    lines_a = ["-rw-r--r-- 1 1000 1000    50 Nov 30 21:30 runs/r/out.dat",
               "-rw-r--r-- 1 1000 1000     4 Nov 30 21:30 runs/r/job.exit"]
    lines_b = ["-rw-r--r-- 3 1000 1000 50 Nov 30 21:30 runs/r/out.dat",
               "-rw-r--r-- 1 1000 1000  4 Nov 30 21:30 runs/r/job.exit"]
    runs = {"runs/r": ["*"]}
    assert scripts.fingerprints(lines_a, runs) == scripts.fingerprints(lines_b, runs)
    lines_c = lines_b[:1] + ["-rw-r--r-- 1 1000 1000  5 Nov 30 21:30 runs/r/job.exit"]
    assert scripts.fingerprints(lines_c, runs) != scripts.fingerprints(lines_b, runs)


def test_an_uploaded_geometry_is_read_only(tmp_path):
    """Run directories hold hard links to it: a job must not be able to change the upload."""
    proc = sh(scripts.upload_script(str(tmp_path), "g", "in.gmy", 3, '{"sig": "s"}'), tmp_path, b"abc")
    assert proc.returncode == 0, proc.stderr
    assert os.stat(tmp_path / "g" / "in.gmy").st_mode & 0o222 == 0
    again = sh(scripts.upload_script(str(tmp_path), "g", "in.gmy", 4, '{"sig": "t"}'), tmp_path, b"abcd")
    assert again.returncode == 0 and (tmp_path / "g" / "in.gmy").read_bytes() == b"abcd"


def test_a_wedged_scheduler_query_reads_as_no_answer_not_a_hang(tmp_path):
    """Issue 11.6: a squeue that never answers hung the probe and every wait."""
    import time
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "squeue").write_text("#!/bin/sh\nsleep 317\n")
    (bin_dir / "squeue").chmod(0o755)
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    (run / "job.id").write_text("42\n")
    runs = [("r", "runs/r", ["*"])]
    slurm = get("slurm")
    env = dict(os.environ, PATH="%s:%s" % (bin_dir, os.environ["PATH"]))
    started = time.monotonic()
    proc = subprocess.run([SHELL[0], "-c", scripts.probe_script(str(tmp_path), [], runs, slurm, query_timeout=2)],
                          cwd=tmp_path, capture_output=True, env=env, timeout=60)
    assert time.monotonic() - started < 10
    _stamps, jobs, queue = scripts.parse_probe(proc.stdout.decode(), slurm, runs)
    assert queue == {"42": (JobState.UNKNOWN, None)}
    # the query's whole process group is stopped, not only the wrapper script
    assert not [line for line in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
                if line.startswith("sleep 317")]


class _FakeScheduler:
    """Submits by running ``submit`` (shell) and records cancels in cancelled.txt."""

    def __init__(self, submit="id=777"):
        self.submit = submit

    def submit_snippet(self):
        return self.submit

    def cancel_snippet(self):
        return 'printf "%s\\n" "$ids" >> cancelled.txt'


def _request(rundir="runs/r", expected=""):
    return scripts.SubmitRequest("r", rundir, expected, "SIG", [], ["*"], "#!/bin/sh\ntrue\n")


def _submit(tmp_path, scheduler):
    proc = sh(scripts.submit_script(str(tmp_path), [_request()], scheduler), tmp_path)
    return scripts.parse_submit(proc.stdout.decode()).get("r")


def _lock(tmp_path, age, pid, host=None):
    import socket
    import time
    lock = tmp_path / "runs" / "r" / ".submit.lock"
    lock.mkdir(parents=True)
    (lock / "t").write_text("%d %d %s\n" % (time.time() - age, pid, host or socket.gethostname()))


def test_a_lock_whose_holder_lives_is_kept_however_old(tmp_path):
    """Issue 11.3: the lock was taken over after 120 s while its holder was still inside a slow
    sbatch; the second call submitted too, and the run had two jobs."""
    holder = subprocess.Popen(["sleep", "60"])
    try:
        _lock(tmp_path, age=3000, pid=holder.pid)
        assert _submit(tmp_path, _FakeScheduler()) == ("busy", "")
        assert not (tmp_path / "runs" / "r" / "job.id").exists()
    finally:
        holder.kill()
        holder.wait()
    assert _submit(tmp_path, _FakeScheduler()) == ("submitted", "777")        # its holder is gone now


def test_a_lock_from_another_node_is_kept_for_an_hour(tmp_path):
    _lock(tmp_path, age=600, pid=1, host="other-login-node")
    assert _submit(tmp_path, _FakeScheduler()) == ("busy", "")
    (tmp_path / "runs" / "r" / ".submit.lock" / "t").write_text("%d 1 other-login-node\n" % 1000)
    assert _submit(tmp_path, _FakeScheduler()) == ("submitted", "777")


def test_the_loser_of_a_race_to_record_its_job_cancels_it(tmp_path):
    """Issue 11.3: the first call's sbatch returned and overwrote job.id: two jobs ran in one
    directory.  Now job.id is only created, never overwritten, and the late job is cancelled."""
    racing = _FakeScheduler('id=778; printf "555\\n" > job.id')        # another hpcdo records 555 meanwhile
    assert _submit(tmp_path, racing) == ("changed", "555")
    run = tmp_path / "runs" / "r"
    assert (run / "job.id").read_text() == "555\n"
    assert (run / "cancelled.txt").read_text() == "778\n"
    assert not [p for p in os.listdir(run) if p.startswith(".job.id")]


@pytest.mark.parametrize("password", ["plain", "q'uote $HOME `id` \"x\"", ""])
def test_a_git_login_reaches_git_by_askpass_only(tmp_path, shell, password):
    """git gets the user and password from GIT_ASKPASS; its arguments carry neither."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").write_text(
        "#!/bin/sh\n"
        'printf "%%s\\n" "$*" >> %s/argv\n'
        '[ "$1" = clone ] || exit 0\n'
        '"$GIT_ASKPASS" "Username for \'http://h\': " > %s/user\n'
        '"$GIT_ASKPASS" "Password for \'http://u@h\': " > %s/password\n'
        'mkdir -p "$5/.git"\n' % (tmp_path, tmp_path, tmp_path))
    (bin_dir / "git").chmod(0o755)
    script = scripts.git_clone_script(str(tmp_path / "root"), "src", "http://h/repo", "main", "sig",
                                      "bot", password)
    env = dict(os.environ, PATH="%s:%s" % (bin_dir, os.environ["PATH"]), TMPDIR=str(tmp_path))
    subprocess.run([shell, "-s"], input=script.encode(), env=env, cwd=tmp_path, capture_output=True)
    assert (tmp_path / "user").read_text() == "bot\n"
    assert (tmp_path / "password").read_text() == password + "\n"
    argv = (tmp_path / "argv").read_text()
    assert "bot" not in argv and (not password or password not in argv), argv
    assert not list(tmp_path.glob("hpcdo-askpass.*"))          # removed on exit
