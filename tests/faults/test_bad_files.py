"""Bad machine files, recipes and templates: one clear line, naming the file (and line), non-zero
exit, no traceback.

Typos are the commonest fault of all.  Each case writes one mistake into a
fresh copy of the project and runs the real doit.  (tests/e2e/test_errors.py
covers a YAML syntax error in machines/test.yml, a misspelt machine key, an
unknown scheduler, a recipe raising ZeroDivisionError, a bad run name and an
undefined template variable in the ``jobscript`` task.)
"""

import os
import re

import pytest

from faults_helpers import no_traceback


def one_error_line(out, *patterns):
    """Exactly one ``hpcdo: error:`` line, matching every regex in ``patterns``."""
    assert out.rc != 0, out
    no_traceback(out)
    errors = [line for line in out.out.splitlines() if line.startswith("hpcdo: error:")]
    assert len(errors) == 1, out
    for pattern in patterns:
        assert re.search(pattern, errors[0]), "%r not in %r" % (pattern, errors[0])
    return errors[0]


def append(project, rel, text, mode="a"):
    path = project.file(rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, mode) as fh:
        fh.write(text)
    with open(path, "rb") as fh:
        return len(fh.read().splitlines())


MACHINE_CASES = {
    # name: (file, text, machine, patterns)
    "wrong type": ("machines/test.yml", "bad:\n  host: example.org\n  cores: many\n", "bad",
                   [r"machines/test\.yml:\d+:", r"'cores'", r"not a string"]),
    "list wanted": ("machines/test.yml", "bad:\n  host: example.org\n  modules: gcc/12\n", "bad",
                    [r"machines/test\.yml:\d+:", r"'modules'", r"list"]),
    "unknown key in user file": ("machines/machines_user.yml", "testslurm:\n  acount: e123\n", "testslurm",
                                 [r"machines/machines_user\.yml:2:", r"unknown key 'acount'", r"account"]),
    "syntax error in user file": ("machines/machines_user.yml", "testslurm:\n  account: [e123\n", "testslurm",
                                  [r"machines/machines_user\.yml:\d+:", r"YAML syntax error"]),
    "tab indentation": ("machines/test.yml", "bad:\n\thost: example.org\n", "bad",
                        [r"machines/test\.yml:\d+:", r"YAML"]),
    "top level list": ("machines/extra.yml", "- host: example.org\n", "testslurm",
                       [r"machines/extra\.yml:1:", r"mapping"]),
    "entry not a mapping": ("machines/extra.yml", "bad: 3\n", "bad",
                            [r"machines/extra\.yml:1:", r"'bad'", r"mapping"]),
    "empty remote_root": ("machines/test.yml", "bad:\n  host: example.org\n  remote_root: ''\n", "bad",
                          [r"machines/test\.yml:\d+:", r"remote_root"]),
    "extends unknown machine": ("machines/test.yml", "bad:\n  extends: testslurmm\n", "bad",
                                [r"machines/test\.yml:\d+:", r"testslurmm"]),
    "host missing for ssh settings": ("machines/test.yml",
                                      "bad:\n  user: jbloggs\n  port: 2222\n  scheduler: slurm\n", "bad",
                                      [r"machines/test\.yml:\d+:", r"host"]),
}


@pytest.mark.parametrize("case", sorted(MACHINE_CASES))
def test_bad_machine_file(local_project, case):
    rel, text, machine, patterns = MACHINE_CASES[case]
    append(local_project, rel, text, mode="w" if rel.endswith(("user.yml", "extra.yml")) else "a")
    out = local_project.doit("list", "machine=%s" % machine, ok=None)
    one_error_line(out, *patterns)


def test_machine_file_that_is_not_utf8(local_project):
    with open(local_project.file("machines/extra.yml"), "wb") as fh:
        fh.write(b"# caf\xe9 machines\nbad:\n  host: example.org\n")
    out = local_project.doit("list", "machine=bad", ok=None)
    one_error_line(out, r"machines/extra\.yml", r"UTF-8|utf-8|encoding")


def test_wrong_type_on_the_command_line(local_project):
    out = local_project.doit("list", "cores=many", ok=None)
    one_error_line(out, r"command line", r"'cores'", r"not a string")


RECIPE_CASES = {
    "syntax error": ("\nrecipe.run('x', geometry='straight'\n", [r"syntax error"]),
    "missing required argument": ("\nfrom hpcdo.recipe import Recipe as R\nother = R(name='other', source=None)\n",
                                  [r"TypeError|executable"]),
    "wrong type": ("\nrecipe.run('x', geometry='straight', cores='four')\n", [r"cores"]),
    "unknown geometry": ("\nrecipe.run('x', geometry='nowhere')\n", [r"geometry 'nowhere'|'nowhere'"]),
    "exception": ("\nraise RuntimeError('recipe author was here')\n", [r"RuntimeError", r"recipe author was here"]),
    "import error": ("\nimport no_such_module_hpcdo\n", [r"no_such_module_hpcdo"]),
}


@pytest.mark.parametrize("case", sorted(RECIPE_CASES))
def test_bad_recipe(local_project, case):
    text, patterns = RECIPE_CASES[case]
    n = append(local_project, "recipes/lbflow.py", text)
    out = local_project.doit("list", ok=None)
    # the line of the mistake (the last line written; a syntax error may be reported one further)
    one_error_line(out, r"recipes/lbflow\.py:(%d|%d|%d):" % (n - 1, n, n + 1), *patterns)


def test_undefined_template_variable_during_submit(local_project):
    """The real pipeline, not only the jobscript task: the submit fails with one line naming
    the template file and line; nothing is submitted."""
    project = local_project
    n = append(project, "jobscripts/bad.sh.j2",
               '{% extends "local.sh.j2" %}\n{% block directives %}\n# {{ no_such_thing }}\n{% endblock %}\n',
               mode="w")
    assert n == 4
    out = project.doit("fetch_results", "jobscript=bad.sh.j2", ok=False)
    no_traceback(out)
    lines = [line for line in out.out.splitlines() if "no_such_thing" in line]
    assert len(lines) == 1, out
    assert re.search(r"bad\.sh\.j2:3\b", lines[0]), lines[0]
    assert not [t for t in out.ran if t.startswith("wait:")], out
    assert not os.path.exists(os.path.join(project.remote_root, "lbflow", "runs", "straight", "job.id"))


def test_template_syntax_error_names_file_and_line(local_project):
    project = local_project
    append(project, "jobscripts/broken.sh.j2", '{% extends "local.sh.j2" %}\n{% block directives %}\n{% if %}\n',
           mode="w")
    out = project.doit("jobscript", "straight", "jobscript=broken.sh.j2", ok=False)
    no_traceback(out)
    assert re.search(r"broken\.sh\.j2:3: jobscript template syntax error", out.out), out


def test_a_half_written_doit_record_is_dropped(local_project):
    """A call killed while doit wrote its record leaves half a JSON file; the next call must not
    stop on it (it is a cache: the machine and results/ hold the truth) and must redo nothing."""
    project = local_project
    first = project.doit("fetch_results")
    record = os.path.join(project.path, ".hpcdo", "doit-%s.json" % project.machine)
    with open(record) as fh:
        text = fh.read()
    assert len(text) > 20, text
    with open(record, "w") as fh:
        fh.write(text[:len(text) // 2])
    again = project.doit("fetch_results")
    no_traceback(again)
    # nothing on the machine is redone; a local analysis, whose record is doit's own (docs/architecture),
    # is made again from the fetched results, and only that
    assert [t for t in again.ran if not t.startswith("analyse:")] == [], again
    assert len(again.uptodate) + len(again.ran) >= len(first.ran), again
    assert [t for t in again.trace if t.get("what") != "probe"] == [], again.trace
