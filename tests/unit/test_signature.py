"""Which files of a local source tree count (and travel to the machine)."""

import subprocess

from hpcdo import signature


def write(root, rel, text="x"):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def git(root, *args):
    subprocess.run(["git", "-C", str(root)] + list(args), check=True, capture_output=True)


def test_a_git_checkout_honours_gitignore(tmp_path):
    """Issue 10.8: a local build/ that .gitignore excludes was uploaded, and made configure stale."""
    repo = tmp_path / "repo"
    code = repo / "code"
    write(repo, ".gitignore", "build/\n*.dat\n")
    write(code, "CMakeLists.txt")
    write(code, "src/main.c")
    write(code, "build/CMakeCache.txt")
    write(code, "build/app")
    write(code, "input.dat")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    write(code, "new.c")                     # untracked but not ignored: it counts
    write(code, ".git-local/x")              # not ignored either
    (code / "CMakeLists.txt").write_text("edited")
    manifest = signature.tree_manifest(str(code))
    assert sorted(manifest) == [".git-local/x", "CMakeLists.txt", "new.c", "src/main.c"]
    assert manifest["CMakeLists.txt"] == signature.tree_manifest(str(code))["CMakeLists.txt"]
    (code / "src" / "main.c").unlink()       # deleted but still tracked: gone from the manifest
    assert "src/main.c" not in signature.tree_manifest(str(code))


def test_outside_git_every_file_counts_but_the_default_excludes(tmp_path):
    write(tmp_path, "CMakeLists.txt")
    write(tmp_path, "build/app")
    write(tmp_path, "a.o")
    write(tmp_path, ".gitignore", "build/\n")
    assert sorted(signature.tree_manifest(str(tmp_path))) == [".gitignore", "CMakeLists.txt", "build/app"]
