"""Content signatures: what a step's inputs were, in one hex string.

A step is stale when the signature of its inputs differs from the one its
stamp on the machine records.  Signatures are computed locally from file
contents and settings, never from modification times, so a fresh clone of
the project computes the same ones as the checkout that did the work.
"""

import fnmatch
import hashlib
import json
import os
import subprocess

from . import ConfigError

#: never synced: version control, caches, build products
DEFAULT_EXCLUDE = (".git", ".hg", ".svn", "__pycache__", "*.pyc", "*.o", ".hpcdo*",
                   "CMakeCache.txt", "CMakeFiles", ".DS_Store", "*.swp", "*~")

#: files whose content decides whether CMake must configure again
CMAKE_FILES = ("CMakeLists.txt", "*.cmake", "CMakePresets.json")


def digest(*parts):
    """Hash any JSON-able values into a 64-character hex string."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _excluded(rel, patterns):
    parts = rel.split("/")
    return any(fnmatch.fnmatchcase(part, pat) for part in parts for pat in patterns)


def tree_manifest(root, exclude=DEFAULT_EXCLUDE):
    """Map each file under ``root`` (relative '/' path) to its sha256.

    In a git checkout, the files are those git would show: tracked ones and
    untracked ones that ``.gitignore`` (and ``.git/info/exclude``, and the
    user's global excludes) does not exclude, so a local ``build/`` or a data
    file the project ignores never travels.  Elsewhere every file counts.
    ``exclude`` applies in both cases.  Symlinked files count by their
    content; symlinked directories are not followed.  Names that a POSIX
    shell line cannot carry (newlines) are refused rather than silently
    dropped.
    """
    if not os.path.isdir(root):
        raise ConfigError("source directory %s does not exist" % root)
    listed = git_files(root)
    if listed is None:
        return _walk(root, exclude)
    manifest = {}
    for rel in listed:
        if _excluded(rel, exclude):
            continue
        path = os.path.join(root, rel)
        if os.path.isdir(path) and not os.path.islink(path):
            # a submodule: git lists it as one entry; its files count
            manifest.update({rel + "/" + k: v for k, v in _walk(path, exclude).items()})
        elif os.path.isfile(path):
            _check_name(rel)
            manifest[rel] = file_sha256(path)
    return manifest


def git_files(root):
    """The files of ``root`` git does not ignore, relative to it; None when it is no git checkout."""
    try:
        proc = subprocess.run(["git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                              capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None             # not in a work tree (or no git): every file counts
    names = proc.stdout.decode("utf-8", "surrogateescape").split("\0")
    return sorted({name.rstrip("/") for name in names if name})


def _check_name(rel):
    if "\n" in rel or "\r" in rel:
        raise ConfigError("source file name with a newline is not supported: %r" % rel)


def _walk(root, exclude):
    manifest = {}
    for dirpath, dirnames, filenames in os.walk(root):
        reldir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        reldir = "" if reldir == "." else reldir + "/"
        dirnames[:] = sorted(d for d in dirnames
                             if not _excluded(reldir + d, exclude)
                             and not os.path.islink(os.path.join(dirpath, d)))
        for name in sorted(filenames):
            rel = reldir + name
            if _excluded(rel, exclude):
                continue
            _check_name(rel)
            path = os.path.join(dirpath, name)
            if not os.path.isfile(path):
                continue
            manifest[rel] = file_sha256(path)
    return manifest


def manifest_digest(manifest, only=None):
    """Hash a manifest, or the part of it whose names match ``only``."""
    items = sorted(manifest.items())
    if only is not None:
        items = [(k, v) for k, v in items if any(fnmatch.fnmatchcase(k.rsplit("/", 1)[-1], p) for p in only)]
    return digest(items)
