"""A submission that takes long, with clocks that disagree, still gives one job per run (issue 11.3).

A wrapper sbatch on the machine's PATH takes 8 s, as a loaded controller
does; a second call, whose ``date`` runs three hours ahead (another login
node's clock), comes while the first is inside it.  The lock's holder is
alive, so the second call waits for it and then finds its job.
"""

import time

import anyproject
from conftest import reaped


def test_a_slow_sbatch_and_a_skewed_clock_give_one_job(slurm_project, tmp_path):
    project = slurm_project
    anyproject.make(project, [("slow", ["--bytes", 3, "s.dat"])])
    project.doit("compile")
    anyproject.make(project, [("slow", ["--bytes", 3, "s.dat"])])
    wrap = project.remote_root + "-wrap"
    slow, skewed = wrap + "/slow", wrap + "/skewed"
    project.cluster.ssh(
        "mkdir -p %(slow)s %(skewed)s && "
        "printf '#!/bin/sh\\nsleep 8\\nexec /usr/bin/sbatch \"$@\"\\n' > %(slow)s/sbatch && "
        "printf '#!/bin/sh\\ncase \"$1\" in +%%%%s) echo $(( $(/bin/date +%%%%s) + 10800 ));; "
        "*) exec /bin/date \"$@\";; esac\\n' > %(skewed)s/date && chmod +x %(slow)s/sbatch %(skewed)s/date"
        % {"slow": slow, "skewed": skewed})
    skew = project.cluster.ssh("PATH=$HOME/%s:$PATH; echo $(( $(date +%%s) - $(/bin/date +%%s) ))" % skewed)
    assert 10790 < int(skew.stdout) < 10810, skew       # the wrapper does skew the clock
    try:
        first = project.popen("submit", "shell_setup=['PATH=$HOME/%s:$PATH']" % slow)
        with reaped(first):
            deadline = time.monotonic() + 60
            while not project.remote("ls tool/runs/slow/.submit.lock 2>/dev/null; echo x").strip("x\n") \
                    and time.monotonic() < deadline:
                time.sleep(0.2)
            # another checkout of the project (a CI runner, a second laptop): no local lock is shared
            other = project.clone_to(tmp_path / "other")
            second = other.doit("submit", "shell_setup=['PATH=$HOME/%s:$PATH']" % skewed, timeout=120)
            out, err = first.communicate(timeout=120)
        assert first.returncode == 0, out + err
    finally:
        project.cluster.ssh("rm -rf %s" % wrap, check=False)
    assert "Traceback" not in second.out
    jobs = project.cluster.squeue(project.remote_root + "/tool/runs/slow")
    assert len(jobs) == 1, jobs
    assert project.remote("cat tool/runs/slow/job.id").strip() == jobs[0][0]
    assert project.remote("ls tool/runs/slow/previous 2>/dev/null").strip() == ""
