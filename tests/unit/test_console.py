"""The ``hpcdo`` command: init, machines, --version, and bad input as one line.

(``hpcdo init`` then the example pipeline, from a built wheel in a fresh virtual
environment: tests/e2e/test_wheel_init.py.)
"""

import os
import re
import subprocess
import sys

import pytest

from hpcdo import __version__, console

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXPECTED = [".gitignore", "dodo.py", "inputs/rod.txt", "machines/example.yml", "pyproject.toml",
            "recipes/heat.py", "src/heat/CMakeLists.txt", "src/heat/heat.c"]


def hpcdo(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "hpcdo.console"] + list(args), cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def files_under(path):
    return sorted(os.path.relpath(os.path.join(d, f), path) for d, _s, fs in os.walk(path) for f in fs)


def test_init_writes_a_project_and_names_the_next_command(tmp_path):
    proc = hpcdo("init", str(tmp_path / "proj"))
    assert proc.returncode == 0, proc.stderr
    assert files_under(tmp_path / "proj") == EXPECTED
    assert "cd %s && doit fetch_results" % (tmp_path / "proj") in proc.stdout
    pyproject = (tmp_path / "proj" / "pyproject.toml").read_text()
    assert 'loader = "hpcdo"' in pyproject and 'hpcdo = "hpcdo.cli:Loader"' in pyproject
    ignored = (tmp_path / "proj" / ".gitignore").read_text().split()
    assert "/.hpcdo/" in ignored and "/results/" in ignored
    assert os.listdir(tmp_path) == ["proj"]          # no staging directory left behind


def test_init_in_the_current_directory(tmp_path):
    proc = hpcdo("init", cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert files_under(tmp_path) == EXPECTED
    assert "next: doit fetch_results" in proc.stdout


def test_init_never_overwrites_and_writes_nothing_then(tmp_path):
    (tmp_path / "dodo.py").write_text("mine\n")
    proc = hpcdo("init", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.startswith("hpcdo: error: %s already has dodo.py; nothing was written" % tmp_path)
    assert len(proc.stderr.splitlines()) == 1
    assert files_under(tmp_path) == ["dodo.py"]
    assert (tmp_path / "dodo.py").read_text() == "mine\n"


def test_init_where_a_file_stands_for_a_directory_writes_nothing(tmp_path):
    (tmp_path / "src").write_text("a file\n")
    proc = hpcdo("init", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr == "hpcdo: error: %s exists and is not a directory; nothing was written\n" \
        % (tmp_path / "src")
    assert files_under(tmp_path) == ["src"]


def test_init_of_a_file_is_one_line(tmp_path):
    (tmp_path / "f").write_text("")
    proc = hpcdo("init", str(tmp_path / "f"))
    assert (proc.returncode, proc.stderr) == (2, "hpcdo: error: %s exists and is not a directory\n"
                                              % (tmp_path / "f"))


def test_a_failure_while_writing_takes_back_what_was_written(tmp_path, monkeypatch):
    real = os.rename
    calls = []

    def rename(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(src, dst)
    monkeypatch.setattr(console.os, "rename", rename)
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "notes.txt").write_text("mine\n")
    with pytest.raises(console.HpcdoError, match="No space left on device; nothing was written"):
        console.init(str(tmp_path / "proj"))
    assert files_under(tmp_path) == ["proj/notes.txt"]
    assert sorted(os.listdir(tmp_path)) == ["proj"]


def test_templates_refuse_undefined_names(tmp_path):
    template = tmp_path / "t.j2"
    template.write_text("name: {{ nmae }}\n")
    with pytest.raises(Exception, match="nmae"):
        console.render(str(template), {"name": "x", "version": "1"})


def test_every_scaffold_file_renders_to_its_text(tmp_path):
    """Only dodo.py and pyproject.toml use template names; the code and recipe come out as written."""
    for rel, template in console.scaffold_files().items():
        raw = open(template).read()
        out = console.render(template, {"name": "proj", "version": __version__})
        if "{{" not in raw:
            assert out == raw, rel


def test_version():
    proc = hpcdo("--version")
    assert (proc.returncode, proc.stdout) == (0, "hpcdo %s\n" % __version__)


@pytest.mark.parametrize("args, message", [
    (["bogus"], "hpcdo: error: argument COMMAND: invalid choice: 'bogus'"),
    (["init", "a", "b"], "hpcdo: error: unrecognized arguments: b"),
    (["machines", "--project", "/nonexistent/x"], "hpcdo: error: /nonexistent/x is not a directory"),
    (["--frobnicate"], "hpcdo: error: unrecognized arguments: --frobnicate"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    proc = hpcdo(*args)
    assert proc.returncode == 2
    assert proc.stderr.startswith(message)
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr


def test_machines_lists_catalogue_project_and_user_machines(tmp_path):
    console.init(str(tmp_path))
    (tmp_path / "machines" / "site.yml").write_text(
        "mycluster:\n  host: login.example.org\n  scheduler: pbs\n")
    (tmp_path / "machines" / "machines_user.yml").write_text("archer2:\n  user: jb\n  account: e1\n")
    proc = hpcdo("machines", cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split(None, 3)[1:] for line in proc.stdout.splitlines()[1:]}
    assert rows["localhost"] == ["-", "local", "built in"]
    assert rows["myriad"] == ["-", "sge", "catalogue (hpcdo/catalogue/myriad.yml)"]
    assert rows["mycluster"] == ["-", "pbs", "machines/site.yml"]
    assert rows["archer2"] == ["-", "slurm", "catalogue (hpcdo/catalogue/archer2.yml), machines/machines_user.yml"]
    assert proc.stdout.splitlines()[0].split() == ["machine", "aliases", "scheduler", "defined", "in"]


def test_machines_with_a_broken_machine_file_is_one_line(tmp_path):
    (tmp_path / "machines").mkdir()
    (tmp_path / "machines" / "bad.yml").write_text("x:\n  schedulr: slurm\n")
    proc = hpcdo("machines", cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "schedulr" in proc.stdout


def test_the_wheel_ships_the_scaffold():
    text = open(os.path.join(ROOT, "pyproject.toml")).read()
    assert 'hpcdo = "hpcdo.console:main"' in text
    depth = max(rel.count("/") for rel in console.scaffold_files())
    for level in range(depth + 1):
        assert '"scaffold/%s*.j2"' % ("*/" * level) in text


def readme_first_screen():
    text = open(os.path.join(ROOT, "README.md")).read()
    first = text.split("\n---\n", 1)[0]
    return text, re.findall(r"```sh\n(.*?)```", first, re.S)


def test_readme_first_screen_shows_exactly_two_set_up_commands():
    _text, blocks = readme_first_screen()
    assert len(blocks) == 2, blocks
    demo, suite = (b.strip() for b in blocks)
    assert "\n" not in demo and suite == "tests/run"
    # Debian's and Ubuntu's Python refuse pip install outside a virtual environment (PEP 668)
    assert demo.startswith("python3 -m venv .venv && .venv/bin/pip install ")
    assert "-e '.[demo]'" in demo            # the demo's report picture needs matplotlib
    assert demo.endswith(".venv/bin/doit fetch_results")
    assert "python3 -m pip" not in demo


def test_ci_runs_the_readmes_test_command():
    _text, blocks = readme_first_screen()
    ci = open(os.path.join(ROOT, ".ci", "run")).read()
    assert re.search(r"^exec %s$" % re.escape(blocks[1].strip()), ci, re.M)


def test_readme_starts_a_project_with_hpcdo_init_and_links_the_docs():
    text, _blocks = readme_first_screen()
    assert "## Start your own project: `hpcdo init`" in text
    for doc in ("docs/progress.md", "docs/ci.md", "docs/reports.md"):
        assert "](%s)" % doc in text


def test_init_where_nothing_can_be_written_is_one_line(tmp_path):
    (tmp_path / "f").write_text("")
    proc = hpcdo("init", str(tmp_path / "f" / "proj"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("hpcdo: error: cannot write in %s: " % (tmp_path / "f"))
    assert proc.stderr.endswith("; nothing was written\n") and "Traceback" not in proc.stderr
