"""max_jobs in the submit script, under dash and bash, with fake schedulers.

The script counts the user's jobs once (each scheduler's count snippet),
submits only into the free places, answers ``@deferred`` for the rest and
touches nothing of a deferred run; a scheduler that cannot be asked counts
as full.
"""

import pytest

from hpcdo.remote import scripts
from hpcdo.schedulers import get

from test_scripts_shells import Machine, request  # noqa: F401  (the same fakes)

SHELLS = ["dash", "bash"]

#: scheduler: (its submit command and what it prints, its queue command and a listing of 3 jobs)
QUEUES = {
    "slurm": ("sbatch", "echo $$", "squeue", "printf '11\\n12_1\\n12_2\\n'"),
    "sge": ("qsub", "echo $$", "qstat",
            "printf 'job-ID prior name\\n-----\\n11 0.5 a u r\\n12 0.5 b u qw 1\\n12 0.5 b u qw 2\\n'"),
    "lsf": ("bsub", 'cat >/dev/null; echo "Job <$$> is submitted to queue <normal>."', "bjobs",
            "printf '11 u RUN\\n12 u PEND\\n13 u PEND\\n'"),
}


@pytest.fixture(params=SHELLS)
def machine(request, tmp_path):
    return Machine(tmp_path, request.param)


def runs(n):
    return [request(key="r%d" % i, rundir="lb/runs/r%d" % i) for i in range(n)]


def answers(proc):
    return [line.split()[0] for line in proc.stdout.decode().splitlines()]


@pytest.mark.parametrize("name", sorted(QUEUES))
def test_only_the_free_places_are_submitted(machine, name):
    submit, prints, queue, listing = QUEUES[name]
    machine.fake(submit, prints)
    machine.fake(queue, listing)
    proc = machine.run(scripts.submit_script(str(machine.root), runs(5), get(name), max_jobs=5))
    # 3 jobs queued, 5 allowed: the first two runs go, the other three wait
    assert answers(proc) == ["@submitted"] * 2 + ["@deferred"] * 3, proc
    assert (machine.root / "lb/runs/r0/job.id").exists() and (machine.root / "lb/runs/r1/job.id").exists()
    for i in (2, 3, 4):                    # a deferred run is left as it was: not even its directory
        assert not (machine.root / "lb" / "runs" / ("r%d" % i)).exists()


def test_a_full_queue_defers_every_run_and_no_limit_submits_all(machine):
    machine.fake("sbatch", "echo $$")
    machine.fake("squeue", "seq 1 10")
    full = machine.run(scripts.submit_script(str(machine.root), runs(3), get("slurm"), max_jobs=10))
    assert answers(full) == ["@deferred"] * 3 and machine.calls("sbatch") == []
    asked = len(machine.calls("squeue"))
    free = machine.run(scripts.submit_script(str(machine.root), runs(3), get("slurm")))
    assert answers(free) == ["@submitted"] * 3 and len(machine.calls("squeue")) == asked


def test_a_scheduler_that_does_not_answer_counts_as_full(machine):
    machine.fake("sbatch", "echo $$")
    machine.fake("squeue", "echo 'slurm_load_jobs error: Unable to contact slurm controller' >&2; exit 1")
    proc = machine.run(scripts.submit_script(str(machine.root), runs(2), get("slurm"), max_jobs=50))
    assert answers(proc) == ["@deferred"] * 2 and machine.calls("sbatch") == []


def test_squeue_is_asked_for_each_array_element(machine):
    machine.fake("sbatch", "echo $$")
    machine.fake("squeue", "true")
    machine.run(scripts.submit_script(str(machine.root), runs(1), get("slurm"), max_jobs=2))
    assert "-r" in machine.calls("squeue")


def test_pbs_with_no_answer_is_full_and_a_scheduler_without_a_count_takes_the_known_jobs(machine):
    machine.fake("qsub", "echo $$.srv")
    proc = machine.run(scripts.submit_script(str(machine.root), runs(4), get("pbs"), max_jobs=3, known=1)
                       .replace("qstat", "false"))        # qstat refuses: the PBS count fails
    assert answers(proc) == ["@deferred"] * 4
    bare = scripts.submit_script(str(machine.root), runs(4), get("slurm"), max_jobs=3, known=1)
    count = get("slurm").count_snippet()
    assert count in bare
    proc = machine.run(bare.replace(count, "n=-"))        # the base count: "-", the caller's record stands
    assert answers(proc) == ["@submitted"] * 2 + ["@deferred"] * 2


def test_the_local_count_sees_the_jobs_running_in_the_background(machine):
    reqs = [request(key="r%d" % i, rundir="lb/runs/r%d" % i, jobscript="#!/bin/sh\nsleep 3\n") for i in range(4)]
    proc = machine.run(scripts.submit_script(str(machine.root), reqs, get("local"), max_jobs=2))
    # the user's other local jobs (tests side by side) count too: at most two places, in order
    placed = answers(proc).count("@submitted")
    assert placed <= 2 and answers(proc) == ["@submitted"] * placed + ["@deferred"] * (4 - placed), proc
    again = machine.run(scripts.submit_script(str(machine.root), reqs[placed:], get("local"), max_jobs=2))
    assert answers(again) == ["@deferred"] * (4 - placed), again       # the first two still run


def test_a_run_whose_lock_is_held_is_busy_and_takes_no_place(machine):
    machine.fake("sbatch", "echo $$")
    machine.fake("squeue", "true")
    lock = machine.root / "lb/runs/r0/.submit.lock"
    lock.mkdir(parents=True)
    (lock / "t").write_text("%d 1 elsewhere\n" % 4102444800)
    proc = machine.run(scripts.submit_script(str(machine.root), runs(3), get("slurm"), max_jobs=2))
    assert answers(proc) == ["@busy", "@submitted", "@submitted"], proc


@pytest.mark.parametrize("name", ["slurm", "sge", "pbs", "lsf", "local", "tianhe"])
def test_the_max_jobs_script_passes_shellcheck(name):
    import shutil
    import subprocess
    from test_shellcheck import EXCLUDED
    if not shutil.which("shellcheck"):
        pytest.fail("shellcheck is not installed: run tests/run, which installs it")
    text = scripts.submit_script("~/hpcdo", runs(2), get(name), max_jobs=10, known=3)
    proc = subprocess.run(["shellcheck", "-s", "sh", "-f", "gcc", "-e", ",".join(EXCLUDED), "-"],
                          input=text, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_bad_max_jobs_or_pack_is_one_line_naming_file_and_line(tmp_path):
    from hpcdo import ConfigError
    from hpcdo.config import Catalogue
    (tmp_path / "machines").mkdir()
    for key, value, wants in (("max_jobs", "-1", "a whole number"), ("pack", "arrays", "unknown pack 'arrays'")):
        (tmp_path / "machines" / "m.yml").write_text("m:\n  scheduler: slurm\n  remote_root: /x\n  %s: %s\n"
                                                    % (key, value))
        with pytest.raises(ConfigError) as err:
            Catalogue(str(tmp_path)).machine("m")
        line = str(err.value)
        assert "\n" not in line and "m.yml:4" in line and key in line and wants in line, line
