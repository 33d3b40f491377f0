"""Bad input gives one clear line and a non-zero exit, never a traceback."""

import os


def one_error_line(out, *needles):
    assert out.rc != 0, out
    assert "Traceback" not in out.out, out
    errors = [line for line in out.out.splitlines() if line.startswith("hpcdo: error:")]
    assert len(errors) == 1, out
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def test_unknown_machine(local_project):
    out = local_project.doit("list", ok=None)
    assert out.rc == 0
    out = local_project.doit("list", "machine=archer", ok=None)
    # doit takes the last machine= word
    one_error_line(out, "unknown machine 'archer'", "did you mean 'archer2'", "known machines:",
                   "localhost, lumi, minerva", "tianhe2 (also th2a, tianhe)")


def test_bad_yaml_names_file_and_line(local_project):
    with open(local_project.file("machines/test.yml"), "a") as fh:
        fh.write("broken: [1, 2\n")
    out = local_project.doit("list", ok=None)
    one_error_line(out, "machines/test.yml:", "YAML syntax error")


def test_misspelt_machine_key(local_project):
    with open(local_project.file("machines/test.yml"), "a") as fh:
        fh.write("typo:\n  host: example.org\n  shceduler: slurm\n")
    out = local_project.doit("list", "machine=typo", ok=None)
    one_error_line(out, "machines/test.yml:", "unknown key 'shceduler'", "did you mean 'scheduler'")


def test_unknown_scheduler(local_project):
    out = local_project.doit("list", "scheduler=pbspro", ok=None)
    one_error_line(out, "unknown scheduler 'pbspro'", "slurm")


def test_broken_recipe_names_file_and_line(local_project):
    with open(local_project.file("recipes/lbflow.py"), "a") as fh:
        fh.write("\nrecipe.run('x', geometry='straight', args=[1 / 0])\n")
    out = local_project.doit("list", ok=None)
    line = one_error_line(out, "recipes/lbflow.py:", "ZeroDivisionError")
    n = len(open(local_project.file("recipes/lbflow.py")).read().splitlines())
    assert "recipes/lbflow.py:%d:" % n in line


def test_recipe_api_misuse_is_reported_where_it_happens(local_project):
    with open(local_project.file("recipes/lbflow.py"), "a") as fh:
        fh.write("\nrecipe.run('bad name', geometry='straight')\n")
    out = local_project.doit("list", ok=None)
    one_error_line(out, "recipes/lbflow.py:", "run name 'bad name'")


def test_undefined_template_variable_fails_the_task(local_project):
    os.makedirs(local_project.file("jobscripts"), exist_ok=True)
    with open(local_project.file("jobscripts/bad.sh.j2"), "w") as fh:
        fh.write('{% extends "local.sh.j2" %}{% block directives %}# {{ no_such_thing }}{% endblock %}')
    out = local_project.doit("jobscript", "straight", "jobscript=bad.sh.j2", ok=False)
    assert "jobscript template bad.sh.j2: 'no_such_thing' is undefined" in out.out, out
    assert "Traceback" not in out.out


def test_jobscript_task_prints_without_submitting(local_project):
    out = local_project.doit("jobscript", "straight")
    assert "./lbflow --geometry straight.gmy --steps 3000" in out.out
    assert not os.path.exists(os.path.join(local_project.remote_root, "lbflow", "runs"))


def test_machine_file_errors_name_file_line_and_key(local_project):
    """Issue 4: a misspelt key, a wrong type and an unknown scheduler: one line each, with file, line and key."""
    cases = {
        "misspelt": ("  host: h.example.org\n  scheduler: slurm\n  partiton: debug\n", 4,
                     ["unknown key 'partiton'", "did you mean 'partition'"]),
        "wrongtype": ("  host: h.example.org\n  scheduler: slurm\n  cores: many\n", 4,
                      ["key 'cores' must be a positive integer, not a string"]),
        "badsched": ("  host: h.example.org\n  scheduler: pbspro\n", 3,
                     ["unknown scheduler 'pbspro'", "did you mean 'pbs'", "known schedulers:", "sge"]),
        "badlauncher": ("  host: h.example.org\n  scheduler: slurm\n  launcher: mpirn\n", 4,
                        ["unknown launcher 'mpirn'", "did you mean 'mpirun'"]),
    }
    for name, (body, line, needles) in cases.items():
        with open(local_project.file("machines/bad.yml"), "w") as fh:
            fh.write("%s:\n%s" % (name, body))
        out = local_project.doit("list", "machine=" + name, ok=None)
        one_error_line(out, "machines/bad.yml:%d:" % line, "machine '%s'" % name, *needles)


import pytest


@pytest.mark.parametrize("name", ["123", "true", "~", "<<"])
def test_a_top_level_key_that_is_no_machine_name(local_project, name):
    """Issue 11.13: YAML reads these as a number, a bool, null and a merge: a KeyError traceback."""
    with open(local_project.file("machines/test.yml"), "a") as fh:
        fh.write("%s:\n  extends: localhost\n" % name)
    out = local_project.doit("list", ok=None)
    one_error_line(out, "machines/test.yml:", "is not a machine name")


def test_a_trace_file_that_cannot_be_written_stops_before_any_remote_work(local_project):
    """Issue 11.13: HPCDO_TRACE in a missing directory raised after the remote operation ran."""
    out = local_project.doit("fetch_results", ok=None, env={"HPCDO_TRACE": "/nonexistent/dir/t.jsonl"})
    one_error_line(out, "HPCDO_TRACE=/nonexistent/dir/t.jsonl cannot be written")
    assert out.ran == [] and not os.path.exists(local_project.remote_root)


@pytest.mark.parametrize("template,needle", [
    (b"#!/bin/bash\n\xff\n", "not UTF-8 text"),
    (b'{% extends "slurm.sh.j2" %}{% block command %}{{ cores / 0 }}{% endblock %}\n', "ZeroDivisionError"),
    (b'{% extends "mine.sh.j2" %}\n', "extends or includes itself"),
])
def test_a_broken_jobscript_template_is_one_line(local_project, template, needle):
    """Issue 11.13: each of these was a traceback."""
    os.makedirs(local_project.file("jobscripts"), exist_ok=True)
    with open(local_project.file("jobscripts/mine.sh.j2"), "wb") as fh:
        fh.write(template)
    out = local_project.doit("jobscript", "straight", "jobscript=mine.sh.j2", ok=None)
    assert out.rc != 0 and "Traceback" not in out.out, out
    lines = [line for line in out.out.splitlines() if needle in line]
    assert len(lines) == 1 and "mine.sh.j2" in lines[0], out
