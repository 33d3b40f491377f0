"""Schedulers: recorded outputs parsed, snippets run under sh with fake commands, jobscripts rendered.

The fixtures in tests/data/schedulers/ are the schedulers' own output (Grid
Engine and the Slurm PBS wrappers recorded on the test cluster; PBS Pro,
TORQUE and LSF written after their documented formats): each file says where
it comes from in its ``##`` lines, which the tests drop.  Each snippet runs
under ``dash -c 'set -u; ...'`` and ``bash -c ...`` as the probe and the submit script run it, with
fake scheduler commands first on a PATH that holds nothing else but the few
tools the snippets use, so nothing real is ever asked.
"""

import os
import shutil
import subprocess

import pytest

from hpcdo import ConfigError, jobscript
from hpcdo.remote import scripts
from hpcdo.schedulers import SCHEDULERS, get
from hpcdo.schedulers.base import JobState, combine

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "schedulers")
TOOLS = ("awk", "cat", "grep", "head", "id", "ls", "mkdir", "paste", "printf", "sed", "tr")

PENDING, RUNNING, COMPLETED, FAILED = JobState.PENDING, JobState.RUNNING, JobState.COMPLETED, JobState.FAILED
CANCELLED, TIMEOUT, NODE_FAIL, PREEMPTED = (JobState.CANCELLED, JobState.TIMEOUT, JobState.NODE_FAIL,
                                            JobState.PREEMPTED)


def fixture(name):
    with open(os.path.join(DATA, name)) as fh:
        return "".join(line for line in fh if not line.startswith("##"))


class Fakes:
    """A bin directory of fake scheduler commands and the few real tools the snippets need."""

    def __init__(self, tmp_path, shell):
        self.shell = shutil.which(shell)
        self.bin = tmp_path / "bin"
        self.log = tmp_path / "calls"
        self.bin.mkdir()
        self.log.mkdir()
        for tool in TOOLS:
            real = shutil.which(tool)
            if real:
                os.symlink(real, str(self.bin / tool))

    def add(self, name, body):
        """A fake ``name``: logs its arguments, then runs ``body`` (``show FILE`` prints a fixture)."""
        path = self.bin / name
        path.write_text("#!/bin/sh\nprintf '%%s\\n' \"$*\" >> %s/%s\n"
                        "show() { grep -v '^##' %s/\"$1\"; }\n%s\n" % (self.log, name, DATA, body))
        path.chmod(0o755)

    def calls(self, name):
        path = self.log / name
        return path.read_text().splitlines() if path.exists() else []

    def run(self, script, cwd, **env):
        full = {"PATH": str(self.bin), "HOME": str(cwd)}
        full.update(env)
        return subprocess.run([self.shell, "-c", "set -u\n" + script], cwd=str(cwd), env=full,
                              capture_output=True, text=True)

    def status(self, sched, ids, cwd):
        proc = self.run('ids=%s\n%s' % (ids, sched.status_snippet()), cwd)
        assert proc.returncode == 0, proc.stderr
        return proc

    def submit(self, sched, cwd, **env):
        return self.run('%s\nrc=$?; printf "\\n@id=%%s\\n" "${id:-}"; exit $rc' % sched.submit_snippet(),
                        cwd, **env)


@pytest.fixture(params=["dash", "bash"])
def fakes(tmp_path, request):
    """Fake commands, and the shell the snippets run under: dash (Debian's sh) and bash."""
    return Fakes(tmp_path, request.param)


def submitted_id(proc):
    return proc.stdout.rsplit("@id=", 1)[1].strip()


def test_every_scheduler_is_registered_with_its_template():
    assert sorted(SCHEDULERS) == ["local", "lsf", "pbs", "pjm", "sge", "slurm", "tianhe", "torque"]
    for name in SCHEDULERS:
        sched = get(name)
        assert sched.name == name
        assert os.path.isfile(os.path.join(jobscript.BUILTIN_DIR, sched.template))


# -- the marker and the queue --------------------------------------------------

def test_combine_prefers_the_exit_marker():
    assert combine("", "", None) == (JobState.NONE, None)
    assert combine("1", "0 17", None) == (COMPLETED, 0)
    assert combine("1", "2 17", COMPLETED) == (FAILED, 2)
    assert combine("1", "143 17", CANCELLED) == (CANCELLED, 143)
    assert combine("1", "0 17", CANCELLED, 137) == (COMPLETED, 0)
    assert combine("1", "143 17", TIMEOUT, 137) == (TIMEOUT, 143)
    assert combine("1", "", RUNNING) == (RUNNING, None)
    assert combine("1", "", None) == (JobState.LOST, None)
    assert combine("1", "", CANCELLED) == (CANCELLED, None)


def test_combine_takes_the_accounting_code_without_a_marker():
    assert combine("1", "", CANCELLED, 137) == (CANCELLED, 137)
    assert combine("1", "", TIMEOUT, 140) == (TIMEOUT, 140)
    assert combine("1", "", FAILED, 3) == (FAILED, 3)
    assert combine("1", "", None, 3) == (JobState.LOST, None)


def test_job_names_are_cut_and_cleaned():
    slurm = get("slurm")
    assert slurm.job_name("lbflow", "a.b-c", 64) == "lbflow-a.b-c"
    assert slurm.job_name("lbflow", "straight", 8) == "lbflow-s"
    assert slurm.job_name("x y", "z", 64) == "x_y-z"
    # PBS wants a letter first
    assert get("pbs").job_name("3d", "r1", None) == "j3d-r1"
    assert get("torque").job_name("3d", "r1", 4) == "j3d-"
    assert get("pbs").job_name("lb", "r1", None) == "lb-r1"


# -- Slurm and Tianhe ------------------------------------------------------------

SLURM_STATES = {
    "101": (PENDING, None), "102": (RUNNING, None), "103": (RUNNING, None),
    "201": (COMPLETED, 0), "202": (FAILED, 2), "203": (CANCELLED, 143), "204": (TIMEOUT, 143),
    "205": (NODE_FAIL, 0), "206": (FAILED, 0), "207": (PREEMPTED, 143), "208": (FAILED, 1),
}


def test_slurm_parse_squeue_and_sacct_lines():
    assert get("slurm").parse_status(fixture("slurm/squeue-sacct.txt")) == SLURM_STATES
    # squeue-only lines, and sacct lines without ExitCode
    text = "104 CANCELLED by 1000\n105 TIMEOUT\n\ngarbage\n106|NODE_FAIL\n107|BOGUS|0:0\n"
    assert get("slurm").parse_status(text) == {"104": (CANCELLED, None), "105": (TIMEOUT, None),
                                               "106": (NODE_FAIL, None)}


@pytest.mark.parametrize("name,prefix", [("slurm", "s"), ("tianhe", "yh")])
def test_slurm_status_snippet_asks_sacct_only_for_forgotten_jobs(fakes, tmp_path, name, prefix):
    text = fixture("slurm/squeue-sacct.txt")
    queue = "".join(l + "\n" for l in text.splitlines() if "|" not in l)
    acct = "".join(l + "\n" for l in text.splitlines() if "|" in l)
    (tmp_path / "squeue.txt").write_text(queue)
    (tmp_path / "sacct.txt").write_text(acct)
    fakes.add(prefix + "queue" if prefix == "yh" else "squeue", 'cat %s/squeue.txt' % tmp_path)
    fakes.add(prefix + "acct" if prefix == "yh" else "sacct", 'cat %s/sacct.txt' % tmp_path)
    proc = fakes.status(get(name), "101,102,201,202,203,204,205,206,207,208,299", tmp_path)
    assert get(name).parse_status(proc.stdout) == SLURM_STATES
    squeue, sacct = ("yhqueue", "yhacct") if prefix == "yh" else ("squeue", "sacct")
    assert fakes.calls(squeue) == ['-h -t all -u %s -o %%i %%T %%V %%S %%l %%r' % os.popen("id -un").read().strip()]
    assert fakes.calls(sacct) == ["-n -X -P -j 201,202,203,204,205,206,207,208,299 -o "
                                  "JobID,State,ExitCode,Submit,Start,End,Elapsed,Timelimit,Reason"]


def test_slurm_and_tianhe_submit(fakes, tmp_path):
    fakes.add("sbatch", 'echo "4242;cluster1"')
    proc = fakes.submit(get("slurm"), tmp_path)
    assert proc.returncode == 0 and submitted_id(proc) == "4242"
    assert fakes.calls("sbatch") == ["--parsable ./job.sh"]
    # yhbatch gets the script's plain #SBATCH lines as options too
    (tmp_path / "job.sh").write_text(render("tianhe.sh.j2", directives=["-C knl", "--gres=gpu:1"]))
    fakes.add("yhbatch", "show slurm/yhbatch.txt")
    proc = fakes.submit(get("tianhe"), tmp_path)
    assert proc.returncode == 0 and submitted_id(proc) == "6001"
    assert fakes.calls("yhbatch") == ["--job-name=lb-r1 --ntasks=6 --nodes=2 --ntasks-per-node=4 --time=1-02:03:04 "
                                      "--output=job.out --partition=debug --account=proj1 --qos=normal --mem=768M "
                                      "--gres=gpu:1 ./job.sh"]
    fakes.add("yhbatch", 'echo "yhbatch: error: Batch job submission failed: Invalid partition" >&2; exit 1')
    proc = fakes.submit(get("tianhe"), tmp_path)
    assert proc.returncode != 0 and "Invalid partition" in proc.stderr


# -- Grid Engine ---------------------------------------------------------------

SGE_QUEUE = {"101": (RUNNING, None), "102": (PENDING, None), "103": (PENDING, None),
             "104": (FAILED, None), "105": (RUNNING, None), "106": (RUNNING, None),
             "107": (PENDING, None), "108": (RUNNING, None), "109": (RUNNING, None)}
SGE_ACCOUNTED = {"201": (COMPLETED, 0), "202": (FAILED, 3), "203": (CANCELLED, 137),
                 "204": (TIMEOUT, 137), "205": (TIMEOUT, 137), "206": (FAILED, 0),
                 "207": (NODE_FAIL, 0), "208": (COMPLETED, 0)}


def test_sge_parse_qstat_and_qacct():
    text = fixture("sge/qstat-u.txt") + "".join(fixture("sge/qacct-%d.txt" % i) for i in range(201, 209))
    assert get("sge").parse_status(text) == dict(SGE_QUEUE, **SGE_ACCOUNTED)


def test_sge_accounting_tells_a_memory_kill_from_a_timeout():
    sge = get("sge")
    record = {"failed": "37  : qmaster enforced h_rt, h_cpu, or h_vmem limit", "exit_status": "137  (Killed)",
              "ru_wallclock": "20s", "category": "-l h_rt=3600,h_vmem=1G"}
    assert sge.accounting_state(record) == (FAILED, 137)
    assert sge.accounting_state(dict(record, ru_wallclock="3601.5")) == (TIMEOUT, 137)
    assert sge.accounting_state(dict(record, category="NONE")) == (TIMEOUT, 137)


def test_sge_state_letters():
    sge = get("sge")
    assert sge.state_of("qw") is PENDING and sge.state_of("hRwq") is PENDING
    assert sge.state_of("Rr") is RUNNING and sge.state_of("dRs") is RUNNING
    assert sge.state_of("EhRqw") is FAILED and sge.state_of("Ehqw") is FAILED
    assert sge.state_of("hpcuser") is None and sge.state_of("11/24/2026") is None


def test_sge_status_snippet_asks_qacct_only_for_ids_qstat_lost(fakes, tmp_path):
    fakes.add("qstat", 'show sge/qstat-u.txt')
    fakes.add("qacct", '[ -f %s/sge/qacct-"$2".txt ] && show sge/qacct-"$2".txt && exit 0\n'
                       'echo "error: job id $2 not found" >&2; exit 1' % DATA)
    ids = ",".join(sorted(SGE_QUEUE)) + ",201,202,203,204,205,206,207,208,299"
    proc = fakes.status(get("sge"), ids, tmp_path)
    assert get("sge").parse_status(proc.stdout) == dict(SGE_QUEUE, **SGE_ACCOUNTED)
    assert fakes.calls("qstat") == ["-u " + os.popen("id -un").read().strip()]
    assert fakes.calls("qacct") == ["-j %d" % i for i in range(201, 209)] + ["-j 299"]


def test_sge_status_says_only_qfail_when_qstat_fails_and_skips_a_missing_qacct(fakes, tmp_path):
    fakes.add("qstat", 'echo "error: commlib error: got select error (Connection refused)" >&2; exit 1')
    fakes.add("qacct", 'show sge/qacct-201.txt')
    proc = fakes.status(get("sge"), "101,201", tmp_path)
    assert proc.stdout == "@qfail\n" and fakes.calls("qacct") == []
    fakes.add("qstat", 'show sge/qstat-u.txt')
    os.remove(str(fakes.bin / "qacct"))
    proc = fakes.status(get("sge"), "101,201", tmp_path)
    assert get("sge").parse_status(proc.stdout) == SGE_QUEUE          # and nothing on 201


@pytest.mark.parametrize("output,expected", [("sge/qsub-terse.txt", "2"), ("sge/qsub-plain.txt", "3")])
def test_sge_submit(fakes, tmp_path, output, expected):
    fakes.add("qsub", "show %s" % output)
    proc = fakes.submit(get("sge"), tmp_path)
    assert proc.returncode == 0 and submitted_id(proc) == expected
    assert fakes.calls("qsub") == ["-terse ./job.sh"]


def test_sge_submit_failure_is_reported(fakes, tmp_path):
    fakes.add("qsub", 'echo "Unable to run job: Job was rejected because job requests unknown queue \\"x\\"." >&2; '
                      'exit 1')
    proc = fakes.submit(get("sge"), tmp_path)
    assert proc.returncode != 0 and "unknown queue" in proc.stderr and submitted_id(proc) == ""


# -- PBS Pro, TORQUE, the Slurm PBS wrappers -------------------------------------

PBSPRO = {"3001.pbs01": (PENDING, None), "3002.pbs01": (RUNNING, None), "3003.pbs01": (PENDING, None),
          "3004.pbs01": (RUNNING, None), "3005.pbs01": (COMPLETED, 0), "3006.pbs01": (FAILED, 3),
          "3007.pbs01": (TIMEOUT, -29), "3008.pbs01": (CANCELLED, 143), "3009.pbs01": (TIMEOUT, 137),
          "3010.pbs01": (NODE_FAIL, -20), "3012.pbs01": (PENDING, None), "3013.pbs01": (RUNNING, None),
          "3015.pbs01": (FAILED, 137)}
TORQUE = {"4001.torque01.example.org": (COMPLETED, 0), "4002.torque01.example.org": (FAILED, 1),
          "4003.torque01.example.org": (TIMEOUT, -11), "4004.torque01.example.org": (CANCELLED, 143),
          "4005.torque01.example.org": (RUNNING, None), "4006.torque01.example.org": (PENDING, None),
          "4007.torque01.example.org": (PENDING, None), "4008.torque01.example.org": (RUNNING, None)}
WRAPPER = {"5002": (PENDING, None), "5003": (RUNNING, None)}    # 5001 ended: no word on how


def test_pbspro_parse_qstat_fx():
    # 3011 finished with no Exit_status and 3014 moved away: nothing said, the marker decides
    assert get("pbs").parse_status(fixture("pbs/qstat-fx.txt")) == PBSPRO


def test_pbs_matches_the_ids_qsub_printed():
    text = "@ids 3002.pbs01.example.org,3005.pbs01\n" + fixture("pbs/qstat-fx.txt")
    found = get("pbs").parse_status(text)
    assert found["3002.pbs01.example.org"] == (RUNNING, None) and "3002.pbs01" not in found
    assert found["3005.pbs01"] == (COMPLETED, 0)


def test_torque_parse_text_and_xml():
    assert get("torque").parse_status(fixture("torque/qstat-f.txt")) == TORQUE
    xml = get("torque").parse_status(fixture("torque/qstat-fx.xml"))
    assert xml == TORQUE
    # "pbs" on a TORQUE server reads the same XML; -11 is no walltime code for PBS Pro,
    # but the job used up its walltime
    assert get("pbs").parse_status(fixture("torque/qstat-fx.xml")) == TORQUE


def test_slurm_pbs_wrapper_parse():
    assert get("torque").parse_status(fixture("torque/slurm-wrapper-qstat-f.txt")) == WRAPPER
    assert get("pbs").parse_status(fixture("torque/slurm-wrapper-qstat-f.txt")) == WRAPPER


def test_pbs_status_snippet_on_pbspro(fakes, tmp_path):
    fakes.add("qstat", '[ "$1" = -Q ] && exit 0\n'
                       'show pbs/qstat-fx.txt; show pbs/qstat-unknown.txt >&2; exit 35')
    ids = ",".join(sorted(PBSPRO)) + ",3099.pbs01"
    proc = fakes.status(get("pbs"), ids, tmp_path)
    assert get("pbs").parse_status(proc.stdout) == PBSPRO
    # the server is asked apart whether it answers: qstat fails for forgotten ids anyway
    assert fakes.calls("qstat") == ["-Q", "-f -x " + ids.replace(",", " ")]
    assert "@qfail" not in proc.stdout


def test_pbs_status_snippet_falls_back_on_the_slurm_wrappers(fakes, tmp_path):
    fakes.add("qstat", 'for a in "$@"; do [ "$a" = -x ] && { echo "Unknown option: x" >&2; exit 2; }; done\n'
                       'show torque/slurm-wrapper-qstat-f.txt')
    proc = fakes.status(get("pbs"), "5001,5002,5003,5004", tmp_path)
    assert get("pbs").parse_status(proc.stdout) == WRAPPER
    assert fakes.calls("qstat") == ["-Q", "-f -x 5001 5002 5003 5004", "-f 5001 5002 5003 5004"]


def test_pbs_status_snippet_on_torque(fakes, tmp_path):
    fakes.add("qstat", '[ "$2" = -x ] && { show torque/qstat-fx.xml; exit 0; }; show torque/qstat-f.txt')
    ids = ",".join(sorted(TORQUE))
    assert get("pbs").parse_status(fakes.status(get("pbs"), ids, tmp_path).stdout) == TORQUE
    assert get("torque").parse_status(fakes.status(get("torque"), ids, tmp_path).stdout) == TORQUE
    assert fakes.calls("qstat")[-1] == "-f " + ids.replace(",", " ")


def render(name, **changes):
    context = dict(CONTEXT, **changes)
    return jobscript.render(jobscript.environment("/nonexistent"), name, context)


def test_pbs_submit(fakes, tmp_path):
    (tmp_path / "job.sh").write_text(render("pbs.sh.j2"))
    fakes.add("qsub", "show pbs/qsub.txt")
    proc = fakes.submit(get("pbs"), tmp_path)
    assert proc.returncode == 0 and submitted_id(proc) == "3001.pbs01"
    assert fakes.calls("qsub") == ["./job.sh"]       # real PBS reads the #PBS lines itself


@pytest.mark.parametrize("template,resources", [
    ("pbs.sh.j2", "select=2:ncpus=4:mpiprocs=4:mem=768mb,walltime=26:03:04,mem=1gb"),
    ("torque.sh.j2", "nodes=2:ppn=4,pmem=256mb,walltime=26:03:04,mem=1gb")])
def test_pbs_submit_through_the_slurm_wrappers_passes_the_directives(fakes, tmp_path, template, resources):
    (tmp_path / "job.sh").write_text(render(template, directives=["-l mem=1gb", '-W x="a b"', "-V"]))
    # the wrapper is a Perl script that runs sbatch
    fakes.add("qsub", "# like Slurm's qsub.pl, which runs sbatch\necho 5002")
    proc = fakes.submit(get(template.split(".")[0]), tmp_path)
    assert proc.returncode == 0 and submitted_id(proc) == "5002"
    assert fakes.calls("qsub") == ["-N lb-r1 -q debug -A proj1 -o job.out -j oe -l %s ./job.sh" % resources]


def test_pbs_submit_failure_is_reported(fakes, tmp_path):
    (tmp_path / "job.sh").write_text(render("pbs.sh.j2"))
    fakes.add("qsub", 'echo "qsub: Unknown queue" >&2; exit 169')
    proc = fakes.submit(get("pbs"), tmp_path)
    assert proc.returncode != 0 and "Unknown queue" in proc.stderr


# -- LSF -----------------------------------------------------------------------

LSF = {"4321": (PENDING, None), "4322": (RUNNING, None), "4323": (COMPLETED, 0), "4324": (FAILED, 3),
       "4325": (TIMEOUT, 140), "4326": (CANCELLED, 130), "4327": (PREEMPTED, 143),
       "4328": (NODE_FAIL, None), "4329": (RUNNING, None), "4330": (PENDING, None),
       "4331": (RUNNING, None), "4332": (CANCELLED, 137), "4333": (RUNNING, None)}


def test_lsf_parse_bjobs():
    assert get("lsf").parse_status(fixture("lsf/bjobs.txt")) == LSF
    assert get("lsf").parse_status(fixture("lsf/bjobs-old.txt")) == {
        "4321": (PENDING, None), "4323": (COMPLETED, 0), "4325": (FAILED, 140)}


def test_lsf_status_snippet(fakes, tmp_path):
    fakes.add("bjobs", 'show lsf/bjobs.txt')
    ids = ",".join(sorted(LSF)) + ",4399"
    proc = fakes.status(get("lsf"), ids, tmp_path)
    assert get("lsf").parse_status(proc.stdout) == LSF
    assert fakes.calls("bjobs") == ["-a -noheader -o jobid stat exit_code exit_reason submit_time start_time "
                                    "finish_time pend_reason delimiter='|' " + ids.replace(",", " ")]


def test_lsf_status_snippet_without_exit_reason(fakes, tmp_path):
    fakes.add("bjobs", 'case "$4" in *exit_reason*) echo "exit_reason: Illegal field name." >&2; exit 255;; esac\n'
                       'show lsf/bjobs-old.txt')
    proc = fakes.status(get("lsf"), "4321,4323,4325,4399", tmp_path)
    assert get("lsf").parse_status(proc.stdout) == {
        "4321": (PENDING, None), "4323": (COMPLETED, 0), "4325": (FAILED, 140)}
    assert len(fakes.calls("bjobs")) == 2


def test_lsf_submit_reads_the_script_from_stdin(fakes, tmp_path):
    (tmp_path / "job.sh").write_text(render("lsf.sh.j2"))
    fakes.add("bsub", 'grep -q "^#BSUB -J lb-r1$" || exit 3\nshow lsf/bsub.txt')
    proc = fakes.submit(get("lsf"), tmp_path)
    assert proc.returncode == 0 and submitted_id(proc) == "4321"
    assert fakes.calls("bsub") == [""]
    fakes.add("bsub", 'echo "Bad argument: -W" >&2; echo "Request aborted by esub. Job not submitted."; exit 255')
    proc = fakes.submit(get("lsf"), tmp_path)
    assert proc.returncode != 0 and "Job not submitted" in proc.stdout


# -- inside the probe -------------------------------------------------------------

PROBE_CASES = {
    # scheduler: (fake commands, running id, vanished id, what the queue says of the vanished one)
    "slurm": ({"squeue": "echo '101 RUNNING'", "sacct": "echo '204|TIMEOUT|0:15'"}, "101", "204",
              (TIMEOUT, 143)),
    "tianhe": ({"yhqueue": "echo '101 RUNNING'", "yhacct": "echo '203|CANCELLED by 7|0:9'"}, "101", "203",
               (CANCELLED, 137)),
    "sge": ({"qstat": "show sge/qstat-u.txt", "qacct": "show sge/qacct-$2.txt"}, "101", "204", (TIMEOUT, 137)),
    "pbs": ({"qstat": "show pbs/qstat-fx.txt"}, "3002.pbs01", "3007.pbs01", (TIMEOUT, -29)),
    "torque": ({"qstat": "show torque/qstat-f.txt"}, "4005.torque01.example.org", "4003.torque01.example.org",
               (TIMEOUT, -11)),
    "lsf": ({"bjobs": "show lsf/bjobs.txt"}, "4322", "4325", (TIMEOUT, 140)),
}


def probe_three_runs(fakes, tmp_path, name, commands, id1, id2):
    """Probe, with scheduler ``name``'s commands faked by ``commands``, runs r1 and r2 (jobs ``id1`` and
    ``id2``, no exit marker) and r3 (job 1, exit marker 0): (process, jobs, queue)."""
    for command, body in commands.items():
        fakes.add(command, body)
    root = tmp_path / "root"
    for run, job_id, marker in (("r1", id1, None), ("r2", id2, None), ("r3", "1", "0 17")):
        (root / "runs" / run).mkdir(parents=True)
        (root / "runs" / run / "job.id").write_text(job_id + "\n")
        if marker:
            (root / "runs" / run / "job.exit").write_text(marker + "\n")
    runs = [(r, "runs/" + r, []) for r in ("r1", "r2", "r3")]
    sched = get(name)
    proc = fakes.run(scripts.probe_script(str(root), [], runs, sched), tmp_path)
    _stamps, jobs, queue = scripts.parse_probe(proc.stdout, sched, runs)
    return proc, jobs, queue


@pytest.mark.parametrize("name", sorted(PROBE_CASES))
def test_status_snippets_work_inside_the_probe(fakes, tmp_path, name):
    commands, running, vanished, said = PROBE_CASES[name]
    proc, jobs, queue = probe_three_runs(fakes, tmp_path, name, commands, running, vanished)
    assert proc.returncode == 0, proc.stderr
    assert queue[running] == (RUNNING, None) and queue[vanished] == said
    assert combine(jobs["r2"]["id"], jobs["r2"]["exit"], *queue.get(vanished, (None, None))) == said
    assert combine(jobs["r3"]["id"], jobs["r3"]["exit"], *queue.get("1", (None, None))) == (COMPLETED, 0)


# -- times and reasons, from the same one query --------------------------------

def at(text):
    """Epoch seconds of a local time written ``YYYY-MM-DD HH:MM:SS``."""
    import time
    return time.mktime(time.strptime(text, "%Y-%m-%d %H:%M:%S"))


# what each scheduler's status snippet prints (its one query), and what is read of times and reasons
DETAIL_CASES = {
    # the fakes print the fields they are asked for (-o), as squeue, sacct and bjobs do
    "slurm": ({"squeue": "[ \"${SLURM_TIME_FORMAT:-}\" = standard ] || exit 1   # whatever the user's format\n"
                         "case \"$*\" in *'%i %T %V %S %l %r'*) ;; *) echo '301 PENDING'; echo '302 RUNNING'; exit;; esac\n"
                         "echo '301 PENDING 2026-11-24T04:30:00 N/A 5:00 ReqNodeNotAvail, UnavailableNodes:n[1-2]'\n"
                         "echo '302 RUNNING 2026-11-24T04:30:00 2026-11-24T04:31:00 1-00:00:00 None'",
               "sacct": "case \"$*\" in *Submit,Start,End,Elapsed,Timelimit,Reason*) ;; *) echo '303|FAILED|3:0'; exit;; esac\n"
                        "echo '303|FAILED|3:0|2026-11-24T04:30:00|2026-11-24T04:30:05|2026-11-24T04:30:09|"
                        "00:00:04|00:05:00|None'"},
              "301,302,303",
              {"301": {"submitted": at("2026-11-24 04:30:00"), "limit": 300,
                       "reason": "ReqNodeNotAvail, UnavailableNodes:n[1-2]"},
               "302": {"submitted": at("2026-11-24 04:30:00"), "started": at("2026-11-24 04:31:00"),
                       "limit": 86400},
               "303": {"submitted": at("2026-11-24 04:30:00"), "started": at("2026-11-24 04:30:05"),
                       "ended": at("2026-11-24 04:30:09"), "limit": 300}}),
    "sge": ({"qstat": "show sge/qstat-u.txt", "qacct": "show sge/qacct-$2.txt"}, "101,102,204",
            {"101": {"started": at("2026-11-24 04:21:54")}, "102": {"submitted": at("2026-11-24 04:21:54")},
             "204": {"submitted": at("2026-11-24 04:21:54"), "started": at("2026-11-24 04:22:03"),
                     "ended": at("2026-11-24 04:22:14"), "limit": 10}}),
    "pbs": ({"qstat": "show pbs/qstat-fx.txt"}, "3001.pbs01,3002.pbs01",
            {"3001": None, "3001.pbs01": {"submitted": at("2026-11-24 04:30:00"), "limit": 600,
                                          "reason": "Not Running: Insufficient amount of resource: ncpus"}}),
    "lsf": ({"bjobs": "case \"$*\" in *'submit_time start_time finish_time pend_reason'*) ;; "
                      "*) echo '4401|PEND|-|-'; echo '4402|EXIT|3|-'; exit;; esac\n"
                      "echo '4401|PEND|-|-|Nov 24 04:30|-|-|New job is waiting for scheduling;'\n"
                      "echo '4402|EXIT|3|-|Nov 24 04:30:00 2026|Nov 24 04:30:05 2026|Nov 24 04:30:09 2026|-'"},
            "4401,4402",
            {"4402": {"submitted": at("2026-11-24 04:30:00"), "started": at("2026-11-24 04:30:05"),
                      "ended": at("2026-11-24 04:30:09")}}),
}


@pytest.mark.parametrize("name", sorted(DETAIL_CASES))
def test_status_snippets_say_times_and_reasons_in_the_same_query(fakes, tmp_path, name):
    from hpcdo.remote import jobinfo
    commands, ids, expected = DETAIL_CASES[name]
    for command, body in commands.items():
        fakes.add(command, body)
    sched = get(name)
    out = fakes.status(sched, ids, tmp_path).stdout
    found = jobinfo.details(sched.family, out)
    for job_id, values in expected.items():
        if values is None:
            assert job_id not in found
        else:
            assert found[job_id] == values, found
    # the states read from the same lines are unchanged by the extra fields
    states = sched.parse_status(out)
    assert all(i in states for i in ids.split(",")), states
    # no query more than the states took: squeue then sacct for the rest; qstat then qacct for each
    # job it lost; qstat -Q (is the server up) then qstat -f -x; one bjobs
    calls = {"slurm": {"squeue": 1, "sacct": 1}, "sge": {"qstat": 1, "qacct": 1}, "pbs": {"qstat": 2},
             "lsf": {"bjobs": 1}}[name]
    assert {c: len(fakes.calls(c)) for c in commands} == calls


def test_lsf_time_without_a_year_is_this_year_or_last():
    from hpcdo.remote import jobinfo
    now = at("2026-01-02 00:00:00")
    assert jobinfo.when("Jan  1 08:30", now=now) == at("2026-01-01 08:30:00")
    assert jobinfo.when("Dec 31 08:30 E", now=now) == at("2025-12-31 08:30:00")
    assert jobinfo.when("N/A") is None and jobinfo.when("Unknown") is None and jobinfo.when("") is None


# -- cancel ----------------------------------------------------------------------

@pytest.mark.parametrize("name,command", [("slurm", "scancel"), ("tianhe", "yhcancel"), ("sge", "qdel"),
                                          ("pbs", "qdel"), ("torque", "qdel"), ("lsf", "bkill")])
def test_cancel_snippets(fakes, tmp_path, name, command):
    fakes.add(command, "exit 1")                   # some ids may be gone already: never an error
    proc = fakes.run("ids=11,12.srv\n" + get(name).cancel_snippet(), tmp_path)
    assert proc.returncode == 0 and fakes.calls(command) == ["11 12.srv"]


# -- jobscripts --------------------------------------------------------------------

CONTEXT = dict(job_name="lb-r1", recipe="lb", run="r1", machine="cluster", cores=6, threads=1, tasks=6,
               nodes=2, cpn=4, corespernode=4, walltime="1-02:03:04", partition="debug", account="proj1",
               qos="normal",
               pe="mpi", memory="1.5G", directives=["--extra=1"], setup=["module load gcc/12"],
               command="mpirun -n 6 ./lb")

DIRECTIVES = {
    "slurm.sh.j2": ["#SBATCH --job-name=lb-r1", "#SBATCH --ntasks=6", "#SBATCH --nodes=2",
                    "#SBATCH --ntasks-per-node=4", "#SBATCH --time=1-02:03:04", "#SBATCH --output=job.out",
                    "#SBATCH --partition=debug",
                    "#SBATCH --account=proj1", "#SBATCH --qos=normal", "#SBATCH --mem=768M",
                    "#SBATCH --extra=1"],
    "sge.sh.j2": ["#$ -N lb-r1", "#$ -S /bin/bash", "#$ -cwd", "#$ -o job.out -j y", "#$ -l h_rt=26:03:04",
                  "#$ -pe mpi 6", "#$ -q debug", "#$ -P proj1", "#$ -l h_vmem=1536M", "#$ --extra=1"],
    "pbs.sh.j2": ["#PBS -N lb-r1", "#PBS -l select=2:ncpus=4:mpiprocs=4:mem=768mb",
                  "#PBS -l walltime=26:03:04", "#PBS -q debug", "#PBS -A proj1", "#PBS -o job.out",
                  "#PBS -j oe", "#PBS --extra=1"],
    "torque.sh.j2": ["#PBS -N lb-r1", "#PBS -l nodes=2:ppn=4", "#PBS -l pmem=256mb",
                     "#PBS -l walltime=26:03:04", "#PBS -q debug", "#PBS -A proj1", "#PBS -o job.out",
                     "#PBS -j oe", "#PBS --extra=1"],
    "lsf.sh.j2": ["#BSUB -J lb-r1", "#BSUB -n 6", '#BSUB -R "span[ptile=4]"', "#BSUB -W 26:04",
                  "#BSUB -q debug", "#BSUB -P proj1", "#BSUB -o job.out", "#BSUB -e job.out",
                  "#BSUB --extra=1"],
    "local.sh.j2": [],
}
DIRECTIVES["tianhe.sh.j2"] = DIRECTIVES["slurm.sh.j2"]
MINIMAL = dict(nodes=1, cpn=1, cores=1, threads=1, tasks=1, corespernode=None, walltime=None, partition=None,
               account=None, qos=None, pe=None, memory=None, directives=[])
MINIMAL_DIRECTIVES = {
    "slurm.sh.j2": ["#SBATCH --job-name=lb-r1", "#SBATCH --ntasks=1", "#SBATCH --output=job.out"],
    "sge.sh.j2": ["#$ -N lb-r1", "#$ -S /bin/bash", "#$ -cwd", "#$ -o job.out -j y"],
    "pbs.sh.j2": ["#PBS -N lb-r1", "#PBS -l select=1:ncpus=1:mpiprocs=1", "#PBS -o job.out", "#PBS -j oe"],
    "torque.sh.j2": ["#PBS -N lb-r1", "#PBS -l nodes=1:ppn=1", "#PBS -o job.out", "#PBS -j oe"],
    "lsf.sh.j2": ["#BSUB -J lb-r1", "#BSUB -n 1", "#BSUB -o job.out", "#BSUB -e job.out"],
    "local.sh.j2": [],
}
MINIMAL_DIRECTIVES["tianhe.sh.j2"] = MINIMAL_DIRECTIVES["slurm.sh.j2"]


def directive_lines(text):
    prefixes = ("#SBATCH", "#$", "#PBS", "#BSUB")
    return [line for line in text.splitlines() if line.startswith(prefixes)]


@pytest.mark.parametrize("template", sorted(DIRECTIVES))
def test_templates_render_their_directives(template):
    text = render(template)
    assert directive_lines(text) == DIRECTIVES[template]
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash"
    # the directives come first, each one line, before any command
    first_command = next(i for i, l in enumerate(lines) if l and not l.startswith("#"))
    assert all(i < first_command for i, l in enumerate(lines) if l in DIRECTIVES[template])
    assert "module load gcc/12 || " in text and "\nmpirun -n 6 ./lb\n" in text
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0


@pytest.mark.parametrize("template", sorted(MINIMAL_DIRECTIVES))
def test_templates_leave_out_what_the_machine_does_not_set(template):
    assert directive_lines(render(template, **MINIMAL)) == MINIMAL_DIRECTIVES[template]


@pytest.mark.parametrize("template", sorted(DIRECTIVES))
def test_templates_are_strict_about_missing_values(template):
    context = dict(CONTEXT)
    del context["command"]
    with pytest.raises(ConfigError, match="undefined"):
        jobscript.render(jobscript.environment("/nonexistent"), template, context)


@pytest.mark.parametrize("template", sorted(t for t in DIRECTIVES if t != "local.sh.j2"))
@pytest.mark.parametrize("key,value", [("partition", "debug;rm -rf ~"), ("account", "a\n#SBATCH --x"),
                                       ("job_name", "lb r1"), ("account", "a$(id)"), ("walltime", "1:00\n")])
def test_templates_refuse_unsafe_directive_values(template, key, value):
    with pytest.raises(ConfigError, match="cannot go into a scheduler directive"):
        render(template, **{key: value})


@pytest.mark.parametrize("template", sorted(t for t in DIRECTIVES if t != "local.sh.j2"))
@pytest.mark.parametrize("extra", ["--x=1\nrm -rf ~", "--x=1\r", "-l a\n"])
def test_templates_refuse_a_line_break_in_an_extra_directive(template, extra):
    with pytest.raises(ConfigError, match="must be one line"):
        render(template, directives=["--ok", extra])


def test_sge_pe_needs_a_plain_name():
    with pytest.raises(ConfigError):
        render("sge.sh.j2", pe="mpi;x")


@pytest.mark.parametrize("walltime,hms,lsf", [
    ("00:10:00", "00:10:00", "0:10"), ("00:00:30", "00:00:30", "0:01"), ("01:30:01", "01:30:01", "1:31"),
    ("2-00:00:00", "48:00:00", "48:00"), ("99:59:59", "99:59:59", "100:00"), ("0:59:59", "00:59:59", "1:00")])
def test_walltime_conversions(walltime, hms, lsf):
    assert "#$ -l h_rt=%s" % hms in render("sge.sh.j2", walltime=walltime)
    assert "#PBS -l walltime=%s" % hms in render("pbs.sh.j2", walltime=walltime)
    assert "#BSUB -W %s\n" % lsf in render("lsf.sh.j2", walltime=walltime)


@pytest.mark.parametrize("memory,per_job,per_node2", [("4G", "4096", "2048"), ("500M", "500", "250"),
                                                      ("1.5GB", "1536", "768"), ("1t", "1048576", "524288"),
                                                      ("100K", "1", "1")])
def test_memory_conversions(memory, per_job, per_node2):
    assert "#$ -l h_vmem=%sM" % per_job in render("sge.sh.j2", memory=memory)
    assert "#SBATCH --mem=%sM" % per_node2 in render("slurm.sh.j2", memory=memory, nodes=2)
    assert ":mem=%smb\n" % per_job in render("pbs.sh.j2", memory=memory, nodes=1)
    assert "#PBS -l mem=%smb" % per_job in render("torque.sh.j2", memory=memory, nodes=1)


@pytest.mark.parametrize("template,variable", [("pbs.sh.j2", "PBS_O_WORKDIR"), ("torque.sh.j2", "PBS_O_WORKDIR"),
                                               ("lsf.sh.j2", "LS_SUBCWD")])
def test_jobscripts_go_back_to_their_run_directory(tmp_path, template, variable):
    rundir, home = tmp_path / "run", tmp_path / "home"
    rundir.mkdir()
    home.mkdir()
    (rundir / "job.sh").write_text(render(template, setup=[], command="pwd > where"))
    env = {"PATH": os.environ["PATH"], "HOME": str(home), variable: str(rundir)}
    proc = subprocess.run(["bash", str(rundir / "job.sh")], cwd=str(home), env=env, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert (rundir / "where").read_text().strip() == str(rundir)
    assert (rundir / "job.exit").read_text().startswith("0 ")
    assert not (home / "job.started").exists()


def test_a_project_template_can_extend_a_builtin_one(tmp_path):
    (tmp_path / "jobscripts").mkdir()
    (tmp_path / "jobscripts" / "site.sh.j2").write_text(
        '{% extends "pbs.sh.j2" %}\n{% block resources %}\n#PBS -l nodes=1:ppn=28:fast\n{% endblock %}\n')
    text = jobscript.render(jobscript.environment(str(tmp_path)), "site.sh.j2", CONTEXT)
    assert directive_lines(text)[:2] == ["#PBS -N lb-r1", "#PBS -l nodes=1:ppn=28:fast"]
    assert 'cd "$PBS_O_WORKDIR"' in text


@pytest.mark.parametrize("name,commands", [
    ("slurm", {"squeue": "echo 'slurm_load_jobs error: Unable to contact slurm controller' >&2; exit 1",
               "sacct": "echo '204|COMPLETED|0:0'"}),
    ("sge", {"qstat": "echo 'error: unable to contact qmaster' >&2; exit 1"}),
    ("pbs", {"qstat": "echo 'Cannot connect to PBS server' >&2; exit 15"}),
    ("lsf", {"bjobs": "echo 'LSF is down. Please wait ...'"}),
])
def test_a_scheduler_that_does_not_answer_makes_jobs_unknown_not_gone(fakes, tmp_path, name, commands):
    """Scheduler down: unmarked jobs are UNKNOWN (still active: never resubmitted), marked ones keep their marker."""
    _proc, jobs, queue = probe_three_runs(fakes, tmp_path, name, commands, "101", "204")
    for run, job_id in (("r1", "101"), ("r2", "204")):
        state, _code = combine(jobs[run]["id"], jobs[run]["exit"], *queue.get(job_id, (None, None)))
        assert state is JobState.UNKNOWN and state.active
    assert combine(jobs["r3"]["id"], jobs["r3"]["exit"], *queue.get("1", (None, None))) == (COMPLETED, 0)


def test_transient_submission_failures_are_told_from_refusals():
    slurm = get("slurm")
    assert slurm.transient("sbatch: error: Batch job submission failed: Unable to contact slurm controller "
                           "(connect failure)")
    assert slurm.transient("error: unable to contact qmaster using port 6444 on host vm")
    assert not slurm.transient("sbatch: error: Batch job submission failed: Invalid account or "
                               "account/partition combination specified")
    assert not slurm.transient("sbatch: error: invalid partition specified: nosuch")


def test_a_job_the_queue_holds_again_is_active_whatever_its_marker_says():
    """Issue 11.4: a requeued job is PENDING with its first attempt's exit marker (143)."""
    from hpcdo.schedulers.base import JobState, combine
    assert combine("7", "143 1700000000", JobState.PENDING) == (JobState.PENDING, None)
    assert combine("7", "1 1700000000", JobState.RUNNING) == (JobState.RUNNING, None)
    assert combine("7", "143 1700000000", JobState.CANCELLED) == (JobState.CANCELLED, 143)
    assert combine("7", "143 1700000000", None) == (JobState.FAILED, 143)


def test_grid_engine_and_pbs_job_names_start_with_a_letter():
    """Found by the generated projects: qsub refused '1aaZ-...' ('cannot start with a digit'),
    so a recipe whose name starts with a digit could submit nothing on Grid Engine."""
    assert get("sge").job_name("1aaZ", "r", 0) == "j1aaZ-r"
    assert get("pbs").job_name("9x", "r", 0) == "j9x-r"
    assert get("slurm").job_name("1aaZ", "r", 0) == "1aaZ-r"
