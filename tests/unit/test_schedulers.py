"""Scheduler state parsing and the marker/queue combination."""

from hpcdo.schedulers import get
from hpcdo.schedulers.base import JobState, combine


def test_slurm_parse_squeue_and_sacct_lines():
    slurm = get("slurm")
    text = "101 PENDING\n102 RUNNING\n103 COMPLETING\n104 CANCELLED by 1000\n105 TIMEOUT\n106 NODE_FAIL\n" \
           "107 OUT_OF_MEMORY\n108 PREEMPTED\n109 COMPLETED\n\ngarbage\n"
    states = slurm.parse_status(text)
    assert states == {"101": JobState.PENDING, "102": JobState.RUNNING, "103": JobState.RUNNING,
                      "104": JobState.CANCELLED, "105": JobState.TIMEOUT, "106": JobState.NODE_FAIL,
                      "107": JobState.FAILED, "108": JobState.PREEMPTED, "109": JobState.COMPLETED}


def test_combine_prefers_the_exit_marker():
    assert combine("", "", None) == (JobState.NONE, None)
    assert combine("1", "0 17", None) == (JobState.COMPLETED, 0)
    assert combine("1", "2 17", JobState.COMPLETED) == (JobState.FAILED, 2)
    assert combine("1", "143 17", JobState.CANCELLED) == (JobState.CANCELLED, 143)
    assert combine("1", "", JobState.RUNNING) == (JobState.RUNNING, None)
    assert combine("1", "", None) == (JobState.LOST, None)
    assert combine("1", "", JobState.CANCELLED) == (JobState.CANCELLED, None)


def test_job_names_are_cut_and_cleaned():
    slurm = get("slurm")
    assert slurm.job_name("lbflow", "a.b-c", 64) == "lbflow-a.b-c"
    assert slurm.job_name("lbflow", "straight", 8) == "lbflow-s"
    assert slurm.job_name("x y", "z", 64) == "x_y-z"
