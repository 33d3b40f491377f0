"""Every remote script, rendered for every scheduler, passes ``shellcheck -s sh``.

shellcheck is a Debian package that tests/run installs (through
tests/cluster/up); without it this test fails rather than skip, so that CI
never passes having checked nothing.
"""

import shutil
import subprocess

import pytest

from hpcdo.remote import machine_check, scripts, shell
from hpcdo.schedulers import SCHEDULERS, get
from hpcdo.steps import check

#: codes left out, each for a reason that holds for every script:
EXCLUDED = [
    # single quotes that keep $ from expanding are meant: a value quoted by q()
    # (the askpass program, a failed setup line in its message): quoted values are data
    "SC2016",
    # the helper functions (h, s) every script gets whether it calls them or not
    "SC2317",
    # "A && B || C" means "C if A or B fails" everywhere: mkdir -p d && cd d || fail
    "SC2015",
    # a module system's init file exists on the machine only
    "SC1091",
]


def rendered():
    """(name, script) for every remote script, with representative values, for each scheduler."""
    setup = scripts.setup_lines(["gcc/12", "swap cray-mpich mpich/4"], "/usr/share/lmod/lmod/init/sh",
                                {"OMP_NUM_THREADS": 4, "LB_NAME": "a b"})
    yield "prelude", scripts.prelude("$WORK/hpcdo")
    yield "askpass", shell.read("askpass.sh")           # the program git_auth writes on the machine
    yield "manifest", scripts.manifest_script("~/hpcdo", "lbflow/src")
    yield "sync", scripts.sync_script("~/hpcdo", "lbflow/src", '{"sig": "1"}', "seal1")
    yield "sync-locked", scripts.sync_script("~/hpcdo", "lbflow/src", '{"sig": "1"}', "seal1", lock_dir="lbflow")
    yield "git_clone", scripts.git_clone_script("~/hpcdo", "lbflow/src", "https://h/r.git", "main", "s1")
    yield "git_clone-login", scripts.git_clone_script("~/hpcdo", "lbflow/src", "https://h/r.git", "v1", "s1",
                                                      "bot", "pa ss")
    for fresh in (False, True):
        yield "configure-%s" % fresh, scripts.configure_script(
            "~/hpcdo", "lbflow", setup, "cmake -G Ninja", {"A": True, "B": "x y"}, fresh, "cache", "stamp",
            source_sig="s1")
    yield "configure-bare", scripts.configure_script("/w", "lbflow", [], "cmake", {}, False, "c", "s")
    yield "compile", scripts.compile_script("~/hpcdo", "lbflow", setup, "cmake", 4, "lbflow", "lbflow", "s2",
                                            source_sig="s1")
    yield "compile-bare", scripts.compile_script("~/hpcdo", "lbflow", [], "cmake", 1, None, "bin/app", "s2")
    yield "upload", scripts.upload_script("~/hpcdo", "lbflow/geometry/straight", "straight.gmy", 10, "st")
    yield "input", scripts.input_script("~/hpcdo", "lbflow/inputs/abc", "mesh", "seal1", '{"sig": "abc"}')
    yield "tail", scripts.tail_script("~/hpcdo", "lbflow/runs/r")
    yield "fetch", scripts.fetch_script("~/hpcdo", "lbflow/runs/r", ["summary.json", "out/*.csv"], ["lbflow"])
    yield "remove", scripts.remove_script("~/hpcdo", ["lbflow/src", "lbflow/build"])
    for name in sorted(SCHEDULERS):
        sched = get(name)
        runs = [("r1", "lbflow/runs/r1", ["summary.json", "*.csv"]), ("r2", "other/runs/r2", []),
                ("r3", "top", ["out"])]
        yield "probe-" + name, scripts.probe_script(
            "~/hpcdo", [("clone", "lbflow/src/.hpcdo-stamp", ["lbflow/src"]), ("none", "x", [])], runs, sched,
            [("head", "https://h/r.git", "main", None, None), ("private", "https://h/p.git", "v1", "u", "p")],
            query_timeout=30)
        yield "poll-" + name, scripts.poll_script("~/hpcdo", runs[:1], sched)
        requests = [
            scripts.SubmitRequest("r1", "lbflow/runs/r1", "", "sig1", [("../../build/lbflow", "lbflow")],
                                  ["summary.json"], "#!/bin/sh\necho hi\n"),
            scripts.SubmitRequest("r2", "lbflow/runs/r2", "123", "sig2",
                                  [("../../build/lbflow", "lbflow"), ("../../geometry/g/g.gmy", "g.gmy")],
                                  [], "#!/bin/sh\ntrue", fresh=True, binary="abc",
                                  build_stamp="../../build/.hpcdo-compile")]
        yield "submit-" + name, scripts.submit_script("~/hpcdo", requests, sched)
        yield "cancel-" + name, scripts.cancel_script("~/hpcdo", [("lbflow/runs/r1", "1"), ("x/r2", "2")], sched)
        yield "check-" + name, machine_check.check_script(
            "$WORK/hpcdo", sched, check.kind(sched), ["gcc/12", "swap cray-mpich mpich/4"],
            "/usr/share/lmod/lmod/init/sh", {"OMP_NUM_THREADS": 4, "LB_NAME": "a b"}, "cmake -G Ninja",
            {"cc": "/opt/gcc/bin/gcc"}, "#!/bin/bash\n#X --partition=debug\ntrue\n", "debug", "acct",
            launcher="srun")
        yield "check-bare-" + name, machine_check.check_script("~/hpcdo", sched, check.kind(sched))


CASES = dict(rendered())


def test_every_script_is_checked():
    public = {f[:-len("_script")] for module in (scripts, machine_check)
              for f in dir(module) if f.endswith("_script") and not f.startswith("_")}
    assert public == {name.split("-")[0] for name in CASES} - {"prelude", "askpass"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_shellcheck_is_clean(name):
    if not shutil.which("shellcheck"):
        pytest.fail("shellcheck is not installed: run tests/run (or tests/cluster/up, or apt-get install "
                    "shellcheck), which installs it")
    proc = subprocess.run(["shellcheck", "-s", "sh", "-f", "gcc", "-e", ",".join(EXCLUDED), "-"],
                          input=CASES[name], capture_output=True, text=True)
    lines = CASES[name].splitlines()
    found = []
    for finding in proc.stdout.splitlines():
        _file, line, _col, message = finding.split(":", 3)
        found.append("line %s: %s\n    %s" % (line, message.strip(), lines[int(line) - 1][:200]))
    assert proc.returncode == 0 and not found, "\n".join(found) + proc.stderr
