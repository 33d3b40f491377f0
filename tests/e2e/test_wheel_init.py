"""A new user's first minutes, from a built wheel in a fresh virtual environment.

The wheel is built from a copy of this checkout (``pip wheel --no-deps``),
installed into a new ``python3 -m venv`` with its dependencies from the package
registry, and used as a user would: ``hpcdo --version``, ``hpcdo init proj``,
then ``doit fetch_results`` in proj on the built-in ``localhost`` machine,
twice: the second call reruns nothing.  Nothing of this checkout is on the
path (PYTHONPATH is removed), so a file the wheel lacks fails here.
"""

import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCES = ("pyproject.toml", "README.md", "hpcdo")


def run(args, cwd, env, timeout=600):
    proc = subprocess.run(args, cwd=str(cwd), env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, "%s failed (%d):\n%s\n%s" % (" ".join(map(str, args)), proc.returncode,
                                                            proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh virtual environment with hpcdo installed from its wheel; (bin directory, environment)."""
    base = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    src = base / "src"
    src.mkdir()
    for name in SOURCES:
        path = os.path.join(ROOT, name)
        if os.path.isdir(path):
            shutil.copytree(path, str(src / name), ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(path, str(src / name))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(base / "dist"), str(src)],
        base, env)
    wheels = os.listdir(str(base / "dist"))
    assert len(wheels) == 1 and wheels[0].endswith(".whl"), wheels
    run([sys.executable, "-m", "venv", str(base / "venv")], base, env)
    bindir = base / "venv" / "bin"
    run([str(bindir / "python"), "-m", "pip", "install", "-q", str(base / "dist" / wheels[0])], base, env)
    env["PATH"] = "%s%s%s" % (bindir, os.pathsep, env.get("PATH", ""))
    env["VIRTUAL_ENV"] = str(base / "venv")
    return bindir, env, base


def test_the_wheel_holds_hpcdo_and_its_scaffold_only(venv):
    bindir, env, _base = venv
    proc = run([str(bindir / "python"), "-c", "import hpcdo, os; print(os.path.dirname(hpcdo.__file__))"],
               "/", env)
    where = proc.stdout.strip()
    assert where.startswith(env["VIRTUAL_ENV"]), where       # the installed copy, not the checkout
    assert os.path.isfile(os.path.join(where, "scaffold", "src", "heat", "heat.c.j2"))


def test_init_then_the_example_pipeline_on_localhost(venv):
    bindir, env, base = venv
    version = run([str(bindir / "hpcdo"), "--version"], base, env)
    assert re.match(r"^hpcdo \d+\.\d+", version.stdout), version.stdout
    init = run([str(bindir / "hpcdo"), "init", "proj"], base, env)
    assert "cd proj && doit fetch_results" in init.stdout
    proj = base / "proj"
    work = "remote_root=%s" % (base / "machine")       # the test's own work root on localhost
    first = run([str(bindir / "doit"), work, "fetch_results"], proj, env)
    ran = re.findall(r"^\.  (\S+)$", first.stdout, re.M)
    for step in ("clone", "configure", "compile", "submit:short", "submit:long", "fetch_results:short",
                 "fetch_results:long"):
        assert step in ran, first.stdout
    for run_name, steps in (("short", "100"), ("long", "2000")):
        results = proj / "results" / "localhost" / run_name
        csv = (results / "temperature.csv").read_text().splitlines()
        assert csv[0] == "position,temperature" and len(csv) == 9
        assert (results / "hpcdo-provenance.json").is_file()
        assert "%s steps" % steps in (results / "job.out").read_text()
    again = run([str(bindir / "doit"), work, "fetch_results"], proj, env)
    assert re.findall(r"^\.  (\S+)$", again.stdout, re.M) == [], again.stdout
    assert "-- fetch_results:short" in again.stdout
    machines = run([str(bindir / "hpcdo"), "machines"], proj, env)
    # columns: machine, aliases ('-' for none), scheduler, where it is defined
    assert re.search(r"^localhost\s+-\s+local\s+built in$", machines.stdout, re.M), machines.stdout
    assert re.search(r"^archer2\s+-\s+slurm\s+catalogue", machines.stdout, re.M), machines.stdout
    assert re.search(r"^tianhe2\s+th2a, tianhe\s+tianhe\s+catalogue", machines.stdout, re.M), machines.stdout


def test_the_readmes_first_command_runs_the_demo_in_a_copy_of_the_checkout(tmp_path):
    """Exactly the README's first command, in a copy of this checkout, with its own home (the
    localhost machine's work root, ~/hpcdo-localhost, is the test's own)."""
    readme = open(os.path.join(ROOT, "README.md")).read().split("\n---\n", 1)[0]
    command = re.findall(r"```sh\n(.*?)```", readme, re.S)[0].strip()
    copy = tmp_path / "hpcdo"
    copy.mkdir()
    for name in SOURCES + ("dodo.py", "recipes", "machines", "demo", "jobscripts"):
        path = os.path.join(ROOT, name)
        if os.path.isdir(path):
            shutil.copytree(path, str(copy / name), ignore=shutil.ignore_patterns(
                "__pycache__", "*.pyc", "machines_user.yml"))
        else:
            shutil.copy(path, str(copy / name))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["HOME"] = str(tmp_path / "home")
    os.mkdir(env["HOME"])
    first = run(["bash", "-c", command], copy, env, timeout=900)
    for geometry in ("straight", "bifurcation", "stenosis"):
        assert (copy / "results" / "localhost" / geometry / "summary.json").is_file()
    assert (tmp_path / "home" / "hpcdo-localhost").is_dir()
    # the demo's report, picture included: the command installs the [demo] extra (matplotlib)
    assert re.findall(r"^\.  (\S+)$", first.stdout, re.M)[-1] == "analyse:report", first.stdout
    report = copy / "results" / "localhost"
    table = (report / "report.md").read_text()
    for geometry in ("straight", "bifurcation", "stenosis"):
        assert re.search(r"^\| %s \| %s \| 3000 \| [0-9.]+ \| " % (geometry, geometry), table, re.M), table
    assert "matplotlib is not installed" not in table
    assert (report / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stamps = {n: os.stat(str(report / n)).st_mtime_ns for n in ("report.md", "report.png")}
    again = run([str(copy / ".venv" / "bin" / "doit"), "fetch_results"], copy, env)
    assert re.findall(r"^\.  (\S+)$", again.stdout, re.M) == [], again.stdout
    assert "-- analyse:report" in again.stdout
    assert {n: os.stat(str(report / n)).st_mtime_ns for n in stamps} == stamps
