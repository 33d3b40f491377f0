"""Per-run outcomes and the end-of-call summary, from what the session knows (no machine asked)."""

from types import SimpleNamespace as NS

import pytest

from hpcdo import HpcdoError, outcomes
from hpcdo.model import Job
from hpcdo.schedulers.base import JobState

NOW = 1_800_000_000.0


class FakeSession:
    def __init__(self, jobs, times):
        self.jobs, self._times = jobs, times

    def job(self, key):
        if self.jobs is None:
            raise HpcdoError("machine x: connection refused")
        return self.jobs.get(key, Job())

    def times(self, key):
        return dict(self._times.get(key, {}))


class FakeTarget:
    def __init__(self, name, runs):
        self.recipe = NS(name=name, runs={r.name: r for r in runs})

    def run_key(self, run):
        return "run:%s/%s" % (self.recipe.name, run.name)

    def results_dir(self, run):
        return "/p/results/m/%s" % run.name

    def submit_sig(self, run):
        return "S"

    def log_path(self, run):
        return "/w/lb/runs/%s/job.out" % run.name


def project(jobs, times=None, fetched=()):
    runs = [NS(name=n, walltime="00:05:00") for n in ("ok", "bad", "queued", "busy", "fresh")]
    target = FakeTarget("lb", runs)
    results = NS(fetch_current=lambda run: run.name in fetched)
    steps = NS(runs=lambda: [(target, r) for r in runs], results={"lb": results}, targets=[target])
    return NS(dir="/p", machine=NS(name="m"), session=FakeSession(jobs, times or {}), steps=steps)


def job(state, code=None, sig="S", id_="1"):
    return Job(sig=sig, id=id_).with_state(state, code)


JOBS = {"run:lb/ok": job(JobState.COMPLETED, 0, id_="11"), "run:lb/bad": job(JobState.FAILED, 3, id_="12"),
        "run:lb/queued": job(JobState.PENDING, id_="13"), "run:lb/busy": job(JobState.RUNNING, id_="14")}
TIMES = {"run:lb/ok": {"submitted": NOW - 100, "started": NOW - 90, "ended": NOW - 30},
         "run:lb/bad": {"submitted": NOW - 100, "started": NOW - 90, "ended": NOW - 89},
         "run:lb/queued": {"submitted": NOW - 50, "reason": "Priority", "started": NOW + 600},
         "run:lb/busy": {"submitted": NOW - 50, "started": NOW - 20, "reason": "None said"}}


def test_each_run_has_its_state_times_and_what_to_do():
    found = {o.run: o for o in outcomes.run_outcomes(project(JOBS, TIMES, fetched={"ok"}), now=NOW)}
    ok, bad, queued, busy, fresh = (found[n] for n in ("ok", "bad", "queued", "busy", "fresh"))
    assert (ok.state, ok.job_id, ok.exit_code, ok.elapsed, ok.walltime) == ("completed", "11", 0, 60, 300)
    assert ok.results == "results/m/ok/" and ok.fetched and not ok.log and not ok.retry
    assert (bad.state, bad.exit_code, bad.elapsed) == ("failed", 3, 1)
    assert bad.log == "/w/lb/runs/bad/job.out" and bad.retry == "doit machine=m retry bad"
    # a pending job has no start (Slurm's %S is an estimate) and no elapsed time, but its reason
    assert queued.started is None and queued.elapsed is None and queued.reason == "Priority"
    # a running one counts its elapsed time up to now
    assert busy.elapsed == 20 and busy.state == "running"
    assert fresh.state == "never_submitted" and fresh.job_id == "" and fresh.tries == 0
    assert bad.to_dict()["submitted"] == "2027-01-15T07:58:20Z" and bad.to_dict()["elapsed_seconds"] == 1


def test_summary_says_each_run_where_its_results_or_log_are_and_totals_at_the_bottom():
    text = outcomes.summary_text(project(JOBS, TIMES, fetched={"ok"}),
                                 ["clone", "submit:ok", "wait:bad", "fetch_results:bad"], now=NOW)
    lines = text.splitlines()
    assert lines[0].split() == ["run", "state", "job", "wall", "time", "results"]
    ok = next(l for l in lines if l.startswith("ok "))
    bad = next(l for l in lines if l.startswith("bad "))
    assert "completed" in ok and "0:01:00 of 0:05:00" in ok and "results/m/ok/" in ok
    assert "failed (exit 3)" in bad and "log: m:/w/lb/runs/bad/job.out" in bad
    assert "retry: doit machine=m retry bad" in bad
    assert lines[-1] == "2 runs on m: 1 completed, 1 failed"
    assert not any(l.startswith("queued") for l in lines)        # the call had no step of it


def test_summary_of_every_run_and_of_a_call_without_run_steps():
    text = outcomes.summary_text(project(JOBS, TIMES), None, now=NOW)
    assert text.splitlines()[-1] == ("5 runs on m: 1 completed, 1 running, 1 pending, 1 failed, "
                                     "1 never submitted")
    assert "results/m/ok/ (not fetched)" in text and "waiting: Priority" in text
    for names in ([], ["status"], ["clone", "compile", "send_geometry:g"], ["list"]):
        assert outcomes.summary_text(project(JOBS, TIMES), names, now=NOW) == ""


def test_summary_is_empty_when_the_machine_could_not_be_asked():
    assert outcomes.summary_text(project(None), ["fetch_results:ok"]) == ""


@pytest.mark.parametrize("secs,text", [(None, ""), (0, "0:00:00"), (61, "0:01:01"), (90061, "25:01:01")])
def test_duration(secs, text):
    assert outcomes.duration(secs) == text


def test_the_summary_of_this_call_takes_the_project_it_loaded(monkeypatch):
    monkeypatch.setattr(outcomes, "_CALL", [])
    assert outcomes.summary_text(None, ["fetch_results:ok"]) == ""          # nothing loaded: nothing said
    outcomes.set_call_project(project(JOBS, TIMES, fetched={"ok"}))
    assert outcomes.summary_text(None, ["fetch_results:ok"], now=NOW).splitlines()[-1] == \
        "1 run on m: 1 completed"
