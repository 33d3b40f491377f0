"""Which files are a run's results: the same choice as the shell's expansion of the patterns.

The reference is a real ``sh`` (dash here) expanding each pattern in the run
directory and ``find`` walking what it names, which is what the probe and
the fetch did before they stopped expanding patterns on the machine.
"""

import os
import random
import subprocess

import pytest

from hpcdo import outputs
from hpcdo.remote import scripts

NAMES = ["a.dat", "b.dat", ".hidden.dat", "out", "out2", "x", "job.out", "summary.json", "deep", "v1.csv",
         "v10.csv", "weird name.dat", "-dash"]
PATTERNS = ["*", "*.dat", "out", "out/*", "out*", "deep/*/*.csv", "v?.csv", "v[0-9]*.csv", ".*", "*/x",
            "nothing*", "job.out", "deep", "[!a]*.dat", "./a.dat"]


def make_tree(root, rng):
    files = []
    for _ in range(40):
        depth = rng.randint(1, 3)
        parts = [rng.choice(NAMES) for _ in range(depth)]
        path = os.path.join(root, *parts)
        if any(os.path.isfile(os.path.join(root, *parts[:k])) for k in range(1, depth)) or os.path.isdir(path):
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write("x")
        files.append("/".join(parts))
    return files


def shell_choice(root, pattern):
    """The files the shell's expansion of ``pattern`` names in ``root``, walking directories."""
    # ``.*`` also names ``.`` and ``..`` in the shell: never results (the run directory and its parent)
    loop = 'for f in %s; do case $f in .|..) continue;; esac; if [ -e "$f" ]; then find "./$f" -type f; fi; done'
    proc = subprocess.run(["sh", "-c", loop % pattern], cwd=root, capture_output=True, text=True, check=True)
    return {os.path.normpath(line) for line in proc.stdout.splitlines()}


@pytest.mark.parametrize("seed", range(6))
def test_matches_is_the_shells_expansion(tmp_path, seed):
    rng = random.Random(seed)
    root = str(tmp_path)
    files = make_tree(root, rng)
    for pattern in PATTERNS:
        chosen = {f for f in files if outputs.matches(f, [pattern])}
        assert chosen == shell_choice(root, pattern), (seed, pattern)


@pytest.mark.parametrize("seed", range(3))
def test_the_machines_selection_holds_every_match(tmp_path, seed):
    """``find``'s looser tests never leave out a file the exact choice wants."""
    rng = random.Random(seed)
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    files = make_tree(str(run), rng)
    for pattern in PATTERNS:
        proc = subprocess.run(["sh", "-c", "find r -type f %s" % outputs.find_tests([pattern])],
                              cwd=run.parent, capture_output=True, text=True, check=True)
        selected = {line[2:] for line in proc.stdout.splitlines()}
        assert {f for f in files if outputs.matches(f, [pattern])} <= selected, pattern


def test_names_with_a_newline_or_backslash_are_left_out(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    for name in ("ok.dat", "new\nline.dat", "back\\slash.dat"):
        (run / name).write_text("x")
    proc = subprocess.run(["sh", "-c", "find r -type f %s" % outputs.find_tests(["*"])],
                          cwd=tmp_path, capture_output=True, text=True, check=True)
    assert proc.stdout == "r/ok.dat\n"


def test_own_files_and_snapshots_are_never_results():
    assert not outputs.is_result("job.tries", ["*"])
    assert not outputs.is_result("previous/123/out.dat", ["*"])
    assert not outputs.is_result("job.cancelled", ["*"])
    assert outputs.is_result("job.exit", ["nothing"])
    assert outputs.is_fetched("job.out", ["nothing"])
    assert not outputs.is_fetched("tool", ["*"], skip=["tool"])
    assert outputs.is_fetched("sub/tool", ["*"], skip=["tool"])


def test_many_files_are_listed_and_fetched_without_an_argument_list(tmp_path):
    """Issue 11.9: 20,000 result files; the old fetch built its list in a quadratic shell loop and
    then passed it to ``tar`` as arguments, beyond the system's limit."""
    run = tmp_path / "runs" / "r"
    (run / "out").mkdir(parents=True)
    (run / "job.exit").write_text("0 1\n")
    long = "f" * 120
    for i in range(20000):
        (run / "out" / ("%s%05d" % (long, i))).write_bytes(b"x")
    proc = subprocess.run(["sh", "-c", scripts.fetch_script(str(tmp_path), "runs/r", ["out/*"])],
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-500:]
    header, _, archive = proc.stdout.partition(b"@tar\n")
    assert len(header.splitlines()) == 20001
    import io
    import tarfile
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r|") as tar:
        names = {m.name for m in tar}
    assert len([n for n in names if n.startswith("r/out/")]) == 20000
