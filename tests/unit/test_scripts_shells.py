"""Every remote script runs under dash and bash, with fake scheduler, cmake and module commands.

The fakes are tiny sh scripts first on PATH in a temporary directory: each
logs its arguments one per line (``calls(name)``) and prints what the real
command would.  Values are hostile where a recipe or machine file could make
them so: they must reach the machine as data ("a b", "$(touch PWNED)", a
quote), never as code.
"""

import hashlib
import io
import os
import subprocess
import tarfile

import pytest

from hpcdo.remote import scripts
from hpcdo.schedulers import get

SHELLS = ["dash", "bash"]
NASTY = "a b $(touch PWNED) `touch PWNED` q'uote"

#: name: (what the fake submit command prints, the id hpcdo records, the cancel command)
SUBMITS = {
    "slurm": ("sbatch", 'echo "4242;cluster1"', "4242", "scancel"),
    "tianhe": ("yhbatch", 'echo "Submitted batch job 4242"', "4242", "yhcancel"),
    "sge": ("qsub", "echo 4242", "4242", "qdel"),
    "pbs": ("qsub", "echo 4242.pbs01", "4242.pbs01", "qdel"),
    "lsf": ("bsub", 'cat > /dev/null; echo "Job <4242> is submitted to queue <normal>."', "4242", "bkill"),
}


class Machine:
    """A work root, a bin directory of fakes, and a shell to run scripts with."""

    def __init__(self, tmp_path, shell):
        self.tmp, self.shell = tmp_path, shell
        self.root = tmp_path / "root"
        self.bin = tmp_path / "bin"
        self.log = tmp_path / "calls"
        self.bin.mkdir()
        self.log.mkdir()

    def fake(self, name, body="true"):
        path = self.bin / name
        path.write_text("#!/bin/sh\nfor a in \"$@\"; do printf '%%s\\n' \"$a\"; done >> '%s/%s'\n%s\n"
                        % (self.log, name, body))
        path.chmod(0o755)

    def calls(self, name):
        path = self.log / name
        return path.read_text().splitlines() if path.exists() else []

    def run(self, script, stdin=b""):
        env = dict(os.environ, PATH="%s:%s" % (self.bin, os.environ["PATH"]), HOME=str(self.tmp),
                   TMPDIR=str(self.tmp))
        proc = subprocess.run([self.shell, "-c", script], input=stdin, cwd=str(self.tmp), env=env,
                              capture_output=True, timeout=60)
        assert not list(self.tmp.rglob("PWNED")), "a value ran as code"
        return proc


@pytest.fixture(params=SHELLS)
def machine(request, tmp_path):
    return Machine(tmp_path, request.param)


def request(key="r", rundir="lb/runs/r", expected="", sig="SIG", jobscript="#!/bin/sh\necho hi\n", **kw):
    return scripts.SubmitRequest(key, rundir, expected, sig, kw.pop("links", []), kw.pop("patterns", ["out*"]),
                                 jobscript, **kw)


# -- jobs -------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SUBMITS))
def test_submit_records_the_job_with_each_scheduler(machine, name):
    command, prints, job_id, _cancel = SUBMITS[name]
    machine.fake(command, prints)
    (machine.root / "lb" / "build").mkdir(parents=True)
    (machine.root / "lb" / "build" / "app").write_text("binary")
    jobscript = "#!/bin/sh\n#SBATCH --time=1\necho '%s' \"$HOME\" ${x:-y} `date`\n" % NASTY
    req = request(NASTY, "lb/runs/" + NASTY, sig=NASTY, jobscript=jobscript, links=[("../../build/app", "app")])
    proc = machine.run(scripts.submit_script(str(machine.root), [req], get(name)))
    assert proc.stdout.decode() == "@submitted %s %s\n" % (NASTY, job_id)
    run = machine.root / "lb" / "runs" / NASTY
    assert (run / "job.id").read_text() == job_id + "\n"
    assert (run / "job.sig").read_text() == NASTY + "\n" and (run / "job.tries").read_text() == "1\n"
    assert (run / "job.sh").read_text() == jobscript                       # the heredoc keeps it byte for byte
    assert (run / "app").read_text() == "binary" and not (run / ".submit.lock").exists()
    assert machine.calls(command)[-1:] in (["./job.sh"], [])


def test_a_resubmission_keeps_the_previous_attempt_and_counts_tries(machine):
    machine.fake("sbatch", 'n=$(( $(cat %s/n 2>/dev/null || echo 100) + 1 )); echo "$n" > %s/n; echo "$n"'
                 % (machine.tmp, machine.tmp))
    slurm = get("slurm")
    first = machine.run(scripts.submit_script(str(machine.root), [request()], slurm))
    assert first.stdout == b"@submitted r 101\n"
    run = machine.root / "lb" / "runs" / "r"
    (run / "job.exit").write_text("1 17\n")
    (run / "out.dat").write_text("old")
    again = machine.run(scripts.submit_script(str(machine.root), [request(expected="101")], slurm))
    assert again.stdout == b"@submitted r 102\n"
    assert (run / "previous" / "101" / "out.dat").read_text() == "old"
    assert (run / "previous" / "101" / "job.exit").exists() and not (run / "job.exit").exists()
    assert (run / "job.tries").read_text() == "2\n"
    fresh = machine.run(scripts.submit_script(str(machine.root), [request(expected="102", fresh=True)], slurm))
    assert fresh.stdout == b"@submitted r 103\n" and (run / "job.tries").read_text() == "1\n"


def test_a_changed_id_or_a_refused_job_is_said_and_nothing_submitted(machine):
    machine.fake("sbatch", 'echo "sbatch: error: Invalid account $1" >&2; exit 1')
    slurm = get("slurm")
    proc = machine.run(scripts.submit_script(str(machine.root), [request(), request("s", "lb/runs/s")], slurm))
    found = scripts.parse_submit(proc.stdout.decode())
    assert found["r"][0] == found["s"][0] == "error"
    assert "refused" in found["r"][1] and "Invalid account --parsable" in found["r"][1]
    (machine.root / "lb" / "runs" / "r" / "job.id").write_text("55\n")
    proc = machine.run(scripts.submit_script(str(machine.root), [request(expected="54")], slurm))
    assert proc.stdout == b"@changed r 55\n" and len(machine.calls("sbatch")) == 4     # two runs, two words


def test_a_rebuilt_executable_stops_the_submission(machine):
    machine.fake("sbatch", "echo 1")
    build = machine.root / "lb" / "build"
    build.mkdir(parents=True)
    (build / "app").write_text("new")
    (build / ".hpcdo-compile").write_text('{"sig": "s", "binary": "other"}\n')
    req = request(links=[("../../build/app", "app")], binary="mine", build_stamp="../../build/.hpcdo-compile")
    proc = machine.run(scripts.submit_script(str(machine.root), [req], get("slurm")))
    assert proc.stdout.startswith(b"@error r the executable on the machine is no longer")
    assert machine.calls("sbatch") == [] and not (machine.root / "lb" / "runs" / "r" / "app").exists()


@pytest.mark.parametrize("name", sorted(SUBMITS))
def test_cancel_marks_the_runs_and_asks_the_scheduler(machine, name):
    _command, _prints, _id, cancel = SUBMITS[name]
    machine.fake(cancel)
    for rundir in ("runs/a", "runs/" + NASTY):
        (machine.root / rundir).mkdir(parents=True)
    proc = machine.run(scripts.cancel_script(str(machine.root), [("runs/a", "11"), ("runs/" + NASTY, "12.x"),
                                                                 ("runs/gone", "13")], get(name)))
    assert proc.returncode == 0, proc.stderr
    assert machine.calls(cancel) == ["11", "12.x", "13"]
    assert (machine.root / "runs" / NASTY / "job.cancelled").exists() and not (machine.root / "runs" / "gone").exists()


def test_probe_asks_the_scheduler_and_reads_every_stamp(machine):
    machine.fake("squeue", 'echo "31 RUNNING"')
    machine.fake("sacct", 'echo "32|COMPLETED|0:0"')
    for run, job_id in (("r1", "31"), ("r2", "32")):
        (machine.root / "lb" / "runs" / run).mkdir(parents=True)
        (machine.root / "lb" / "runs" / run / "job.id").write_text(job_id + "\n")
    (machine.root / NASTY).mkdir()
    (machine.root / NASTY / "st").write_text('{"sig": "%s"}\n' % NASTY)
    runs = [("r1", "lb/runs/r1", ["*"]), ("r2", "lb/runs/r2", ["*"])]
    slurm = get("slurm")
    proc = machine.run(scripts.probe_script(str(machine.root), [(NASTY, NASTY + "/st", [NASTY])], runs, slurm,
                                            query_timeout=20))
    assert proc.returncode == 0, proc.stderr
    stamps, jobs, queue = scripts.parse_probe(proc.stdout.decode(), slurm, runs)
    assert stamps == {NASTY: '{"sig": "%s"}' % NASTY}
    assert jobs["r1"]["id"] == "31" and queue["31"][0].name == "RUNNING" and queue["32"][0].name == "COMPLETED"
    assert machine.calls("sacct")[-3:] == ["32", "-o", "JobID,State,ExitCode,Submit,Start,End,Elapsed,Timelimit,Reason"]


def test_tail_and_fetch_and_remove(machine):
    run = machine.root / "lb" / "runs" / NASTY
    run.mkdir(parents=True)
    (run / "job.out").write_text("".join("line %d\n" % i for i in range(30)))
    (run / "job.exit").write_text("0 1\n")
    (run / "out 1.dat").write_text("x")
    (run / "app").write_text("snapshot")
    tail = machine.run(scripts.tail_script(str(machine.root), "lb/runs/" + NASTY, 3))
    assert tail.stdout == b"line 27\nline 28\nline 29\n"
    fetch = machine.run(scripts.fetch_script(str(machine.root), "lb/runs/" + NASTY, ["out*"], ["app"]))
    assert fetch.returncode == 0, fetch.stderr
    listing, archive = fetch.stdout.split(b"@tar\n", 1)
    names = tarfile.open(fileobj=io.BytesIO(archive)).getnames()
    assert NASTY + "/out 1.dat" in names and NASTY + "/job.out" in names and NASTY + "/app" not in names
    assert scripts.fetch_fingerprint(listing.decode().splitlines(), "lb/runs/" + NASTY, ["out*"])
    gone = machine.run(scripts.fetch_script(str(machine.root), "lb/runs/none", ["*"]))
    assert gone.returncode == 3 and b"gone" in gone.stderr
    (machine.tmp / "keep").write_text("outside")
    machine.run(scripts.remove_script(str(machine.root), ["lb/runs/" + NASTY, "*"]))
    assert not run.exists() and (machine.root / "lb").exists() and (machine.tmp / "keep").exists()


# -- source and build ---------------------------------------------------------

def _tar(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("lock_dir", [None, "lb"])
def test_sync_unpacks_deletes_and_stamps_only_a_sealed_stream(machine, lock_dir):
    src = machine.root / "lb" / "src"
    src.mkdir(parents=True)
    (src / "old.c").write_text("old")
    (src / NASTY).write_text("nasty")
    stamp = '{"sig": "%s"}' % NASTY
    script = scripts.sync_script(str(machine.root), "lb/src", stamp, "seal-1", lock_dir=lock_dir)
    cut = machine.run(script, _tar({"main.c": b"int main;"}))
    assert cut.returncode == 1 and b"cut short" in cut.stderr and not (src / ".hpcdo-stamp").exists()
    proc = machine.run(script, _tar({"main.c": b"int main;", ".hpcdo-delete": ("old.c\n%s\n" % NASTY).encode(),
                                     ".hpcdo-end": b"seal-1\n"}))
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(src)) == [".hpcdo-stamp", "main.c"]
    assert (src / ".hpcdo-stamp").read_text() == stamp + "\n"
    assert not (machine.root / "lb" / ".hpcdo-build.lock").exists()
    manifest = machine.run(scripts.manifest_script(str(machine.root), "lb/src"))
    assert scripts.parse_manifest(manifest.stdout.decode()) == {"main.c": hashlib.sha256(b"int main;").hexdigest()}


@pytest.mark.parametrize("lock_dir", [None, "lb"])
def test_a_cut_sync_touches_neither_the_source_nor_its_stamp(machine, lock_dir):
    """A sync whose stream was cut (its connection died, its process perhaps still waiting for
    the build lock) must not remove the stamp a later sync wrote, nor change the tree it names.
    It removed the stamp first thing: test_source_sync_cut_midway_is_sent_again then saw a
    whole sync followed by 'clone' being stale again, about one run in four."""
    src = machine.root / "lb" / "src"
    first = scripts.sync_script(str(machine.root), "lb/src", '{"sig": "one"}', "seal-1", lock_dir=lock_dir)
    proc = machine.run(first, _tar({"main.c": b"one", ".hpcdo-end": b"seal-1\n"}))
    assert proc.returncode == 0, proc.stderr
    late = scripts.sync_script(str(machine.root), "lb/src", '{"sig": "two"}', "seal-2", lock_dir=lock_dir)
    cut = machine.run(late, _tar({"main.c": b"two", "new.c": b"new"}))
    assert cut.returncode == 1 and b"cut short" in cut.stderr
    assert (src / ".hpcdo-stamp").read_text() == '{"sig": "one"}\n'
    assert sorted(os.listdir(src)) == [".hpcdo-stamp", "main.c"] and (src / "main.c").read_text() == "one"
    assert sorted(os.listdir(machine.root / "lb")) == ["src"]          # no staging directory left


def test_a_sync_that_waits_for_the_build_lock_applies_its_stream(machine):
    """The build lock's holder check reads the holder's time into ``t``; the sync kept its
    staging directory in ``$t`` too, and after a wait tried to cd into a time.  Two checkouts
    syncing at once failed with "can't cd to 1796094662"."""
    import socket
    import threading
    import time
    lock = machine.root / "lb" / ".hpcdo-build.lock"
    lock.mkdir(parents=True)
    holder = subprocess.Popen(["sleep", "30"])
    (lock / "t").write_text("%d %d %s\n" % (time.time(), holder.pid, socket.gethostname()))

    def build_ends():
        time.sleep(1.5)
        (lock / "t").unlink()
        lock.rmdir()
        holder.kill()
    threading.Thread(target=build_ends).start()
    script = scripts.sync_script(str(machine.root), "lb/src", '{"sig": "s"}', "seal-1", lock_dir="lb")
    proc = machine.run(script, _tar({"main.c": b"int main;", ".hpcdo-end": b"seal-1\n"}))
    assert proc.returncode == 0, proc.stderr
    src = machine.root / "lb" / "src"
    assert (src / "main.c").read_text() == "int main;" and (src / ".hpcdo-stamp").exists()


def _fake_cmake(machine):
    # configure: record the arguments; build: make the executable named by the target
    machine.fake("cmake", 'if [ "$1" = --build ]; then [ -f fail ] && { echo "error: it broke"; exit 2; }\n'
                          '  echo built; printf "exe" > app; exit 0; fi\n'
                          'echo configured; : > CMakeCache.txt')
    machine.fake("module")


SETUP = scripts.setup_lines(["gcc/12", "swap a " + NASTY], None, {"LB_X": NASTY})


@pytest.mark.parametrize("fresh", [False, True])
def test_configure_passes_each_option_as_one_word_and_stamps(machine, fresh):
    _fake_cmake(machine)
    (machine.root / "lb" / "src").mkdir(parents=True)
    (machine.root / "lb" / "src" / ".hpcdo-stamp").write_text('{"sig": "S1"}\n')
    (machine.root / "lb" / "build" / "CMakeFiles" / "3.25").mkdir(parents=True)
    script = scripts.configure_script(str(machine.root), "lb", SETUP, "cmake -G 'Unix Makefiles'",
                                      {"A": True, "B": NASTY}, fresh, "cache " + NASTY, "stamp " + NASTY,
                                      source_sig="S1")
    proc = machine.run(script)
    assert proc.returncode == 0, proc.stderr
    build = machine.root / "lb" / "build"
    assert machine.calls("cmake") == ["-G", "Unix Makefiles", "-DA=ON", "-DB=" + NASTY, "../src"]
    assert machine.calls("module") == ["load", "gcc/12", "swap", "a", "a", "b", "$(touch", "PWNED)",
                                       "`touch", "PWNED`", "q'uote"]
    assert (build / ".hpcdo-configure").read_text() == "stamp %s\n" % NASTY
    assert (build / ".hpcdo-cache").read_text() == "cache %s\n" % NASTY
    assert (build / ".hpcdo-configure.log").read_text() == "configured\n"
    assert (build / "CMakeFiles" / "3.25").exists() != fresh
    other = machine.run(scripts.configure_script(str(machine.root), "lb", [], "cmake", {}, False, "c", "s",
                                                 source_sig="S2"))
    assert other.returncode == 96 and b"not the one this call sent" in other.stderr
    assert len(machine.calls("cmake")) == 5                    # not run again


def test_compile_hashes_the_executable_and_stops_at_a_failed_build_or_setup(machine):
    _fake_cmake(machine)
    build = machine.root / "lb" / "build"
    build.mkdir(parents=True)
    proc = machine.run(scripts.compile_script(str(machine.root), "lb", SETUP, "cmake", 4, NASTY, "app", "S"))
    assert proc.returncode == 0, proc.stderr
    digest = hashlib.sha256(b"exe").hexdigest()
    assert proc.stdout.decode().splitlines()[-1] == "@binary " + digest
    assert machine.calls("cmake") == ["--build", ".", "-j", "4", "--target", NASTY]
    assert (build / ".hpcdo-compile").read_text() == '{"sig": "S", "binary": "%s"}\n' % digest
    (build / "fail").write_text("")
    failed = machine.run(scripts.compile_script(str(machine.root), "lb", [], "cmake", 1, None, "app", "S"))
    assert failed.returncode == 2 and b"it broke" in failed.stdout and not (build / ".hpcdo-compile").exists()
    (build / "fail").unlink()
    missing = machine.run(scripts.compile_script(str(machine.root), "lb", [], "cmake", 1, None, NASTY, "S"))
    assert missing.returncode == 1 and ("did not make " + NASTY).encode() in missing.stderr
    machine.fake("module", "exit 1")
    setup = machine.run(scripts.compile_script(str(machine.root), "lb", SETUP, "cmake", 1, None, "app", "S"))
    assert setup.returncode == 98 and b"build setup failed: module load gcc/12" in setup.stderr


def test_a_build_lock_left_by_a_dead_process_is_taken_over(machine):
    import socket
    _fake_cmake(machine)
    lock = machine.root / "lb" / ".hpcdo-build.lock"
    lock.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (lock / "t").write_text("%d %d %s\n" % (int(__import__("time").time()), dead.pid, socket.gethostname()))
    (machine.root / "lb" / "build").mkdir()
    proc = machine.run(scripts.compile_script(str(machine.root), "lb", [], "cmake", 1, None, "app", "S"))
    assert proc.returncode == 0, proc.stderr
    assert not lock.exists()


def test_the_prelude_enters_a_work_root_with_any_name(machine):
    root = machine.tmp / NASTY
    proc = machine.run(scripts.prelude(str(root)) + 'pwd; printf x | h\n')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().splitlines() == [str(root), hashlib.sha256(b"x").hexdigest()]
    (machine.tmp / "file").write_text("")
    blocked = machine.run(scripts.prelude(str(machine.tmp / "file" / "sub")) + "echo unreachable\n")
    assert blocked.returncode == 97 and blocked.stdout == b""


def test_a_build_going_on_is_waited_for_not_taken_for_another_executable(machine):
    """Two checkouts on one work root: while the other one compiles (holding the build lock,
    its compile stamp removed until it ends), a submission waits for the build, and goes on when
    the build made the same executable.  It failed with "no longer the one this call built"."""
    import socket
    import threading
    import time
    machine.fake("sbatch", "echo 7")
    build = machine.root / "lb" / "build"
    build.mkdir(parents=True)
    (build / "app").write_text("same")
    lock = machine.root / "lb" / ".hpcdo-build.lock"
    lock.mkdir()
    builder = subprocess.Popen(["sleep", "30"])                  # the other checkout's build, alive
    (lock / "t").write_text("%d %d %s\n" % (time.time(), builder.pid, socket.gethostname()))

    def build_ends():
        time.sleep(2)
        (build / ".hpcdo-compile").write_text('{"sig": "s", "binary": "mine"}\n')
        (lock / "t").unlink()
        lock.rmdir()
        builder.kill()
    threading.Thread(target=build_ends).start()
    req = request(links=[("../../build/app", "app")], binary="mine", build_stamp="../../build/.hpcdo-compile")
    start = time.monotonic()
    proc = machine.run(scripts.submit_script(str(machine.root), [req], get("slurm")))
    assert proc.stdout == b"@submitted r 7\n", proc
    assert time.monotonic() - start > 1.5
    assert (machine.root / "lb" / "runs" / "r" / "app").read_text() == "same" and not lock.exists()
