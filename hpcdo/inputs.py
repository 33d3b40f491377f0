"""Input files and directories of runs (part of the recipe API).

A recipe names its inputs once, each a file or a whole directory, and each
run picks the ones it reads::

    recipe = Recipe(..., inputs={"mesh": "data/mesh/", "params": "data/p.txt"})
    recipe.run("a", inputs=["mesh", "params"], args=["--mesh", "{inputs[mesh]}"])
    recipe.sweep("s", {"n": [1, 2]}, inputs=["params"], args=["-p", "{inputs[params]}"])

On the machine each input is stored once per content, under
``<recipe>/inputs/<digest>/content``, where ``<digest>`` hashes the file's
bytes and mode, or every file of the directory (its path, bytes and mode;
empty directories do not count).  The task ``send_input:<name>`` uploads it
as one sealed tar stream (nothing is stamped until the whole stream arrived)
only when the machine lacks that digest, so an input shared by a hundred
runs crosses the wire once, and changing one file of it uploads it again,
once.  Each run's directory holds it under the input's name: a file as a
hard link (or a copy), a directory as a symbolic link to the stored tree.
The stored copy is read-only, so a job cannot change what other runs read;
a run that must write next to its inputs writes into its own directory.
``{inputs[NAME]}`` in ``args`` and ``env`` values is that name, relative to
the run directory, where jobs start.  A run's signature holds the digests of
its inputs, so a changed input reruns exactly the runs that use it.
"""

import os

from . import ConfigError, signature
from .outputs import OWN_FILES

#: the {field} of args and env values that names a run's input: {inputs[mesh]}
FIELD = "inputs"


class Input:
    """One declared input: its name, its path (relative to the project) and, once read, its digest."""

    def __init__(self, name, path):
        self.name, self.path = name, path

    def local(self, project_dir):
        return os.path.join(project_dir, self.path)

    def is_dir(self, project_dir):
        return os.path.isdir(self.local(project_dir))

    def digest(self, project_dir, label):
        """The content digest: a file's bytes and mode, or every file of a directory."""
        path = self.local(project_dir)
        if os.path.isdir(path):
            files = tree_files(path)
            return signature.digest("input-tree", [(rel, signature.file_sha256(os.path.join(path, rel)),
                                                    _executable(os.path.join(path, rel))) for rel in files])
        if os.path.isfile(path):
            return signature.digest("input-file", signature.file_sha256(path), _executable(path))
        raise ConfigError("%s: input %s: %s does not exist" % (label, self.name, self.path))


def tree_files(root):
    """Every regular file under ``root`` (symbolic links to files count by their content;
    linked directories are not followed), as sorted '/' paths relative to it."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        reldir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        reldir = "" if reldir == "." else reldir + "/"
        dirnames[:] = sorted(d for d in dirnames if not os.path.islink(os.path.join(dirpath, d)))
        for name in filenames:
            rel = reldir + name
            if "\n" in rel or "\r" in rel:
                raise ConfigError("input file name with a newline is not supported: %r" % rel)
            if os.path.isfile(os.path.join(dirpath, name)):
                found.append(rel)
    return sorted(found)


def _executable(path):
    return os.access(path, os.X_OK)


def reserved_name(name, executable):
    """True if a run directory entry called ``name`` would clash with one hpcdo writes there."""
    return name in OWN_FILES or name.startswith(("job.", ".hpcdo")) or \
        name == executable.rsplit("/", 1)[-1]


def check_declared(label, inputs, executable, check_name):
    """A recipe's ``inputs=``: {name: path}, each name plain and not one hpcdo uses in run directories."""
    if inputs is None:
        return {}
    if not isinstance(inputs, dict):
        raise ConfigError("%s: inputs must be a dict of names to file or directory paths" % label)
    declared = {}
    for name, path in inputs.items():
        check_name("input", name)
        if not isinstance(path, str) or not path.strip("/") or path.startswith("/") or \
                ".." in path.split("/") or "\n" in path:
            raise ConfigError("%s: input %s needs a file or directory path inside the project, not %r"
                              % (label, name, path))
        if reserved_name(name, executable):
            raise ConfigError("%s: input %s: run directories hold it under its name, which is one hpcdo "
                              "uses there (job.*, submit.log, previous, the executable); rename it"
                              % (label, name))
        declared[name] = Input(name, path)
    return declared


def check_run(label, recipe, names, geometry):
    """A run's ``inputs=``: a list of declared input names, none twice, none named as its geometry's file."""
    if names is None:
        return ()
    geometry_file = geometry and os.path.basename(recipe.geometries[geometry])
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise ConfigError("%s: inputs must be a list of input names" % label)
    for name in names:
        if name not in recipe.inputs:
            raise ConfigError("%s: unknown input %r (the recipe has: %s)"
                              % (label, name, ", ".join(sorted(recipe.inputs)) or "none"))
        if name == geometry_file:
            raise ConfigError("%s: input %s has the name of its geometry file; rename one" % (label, name))
    if len(set(names)) != len(names):
        raise ConfigError("%s: an input is named twice in inputs=%r" % (label, list(names)))
    return tuple(names)


def fields(names):
    """A run's {inputs[NAME]} values: each input's name in the run directory (none without inputs)."""
    return {FIELD: {n: n for n in names}} if names else {}


def is_field(field):
    """True for a {field} about inputs: ``inputs``, ``inputs[...]``, ``inputs.x``."""
    return field == FIELD or field.startswith((FIELD + "[", FIELD + "."))


def check_field(label, what, text, field, run_inputs):
    """A ``{inputs[NAME]}`` field: NAME must be one of the run's inputs."""
    key = field[len(FIELD):]
    if not (key.startswith("[") and key.endswith("]")) or "[" in key[1:]:
        raise ConfigError("%s: %s %r: write an input's name as {inputs[NAME]}" % (label, what, text))
    name = key[1:-1]
    if name not in run_inputs:
        raise ConfigError("%s: %s %r uses {inputs[%s]} but the run's inputs are: %s"
                          % (label, what, text, name, ", ".join(run_inputs) or "none"))


# -- on a machine: what hpcdo.target.Target and the steps ask of a run's inputs

def digest(target, iname):
    """The content digest of input ``iname`` of the target's recipe, worked out once per call."""
    label = "recipe %s" % target.recipe.name
    return target._memo("input:" + iname, lambda: target.recipe.inputs[iname].digest(target.project_dir, label))


def key(target, sig):
    """The stamp key of the input of digest ``sig``: by content, so inputs of the same content share it."""
    return "input:%s/%s" % (target.recipe.name, sig)


def store_dir(target, sig):
    """Where the input of digest ``sig`` is on the machine (its payload is ``content`` in it)."""
    return "%s/inputs/%s" % (target.dir, sig)


def probe_stamps(target):
    """(key, stamp path, [paths that must exist]) of every input of the recipe, for the probe."""
    items = []
    for iname in target.recipe.inputs:
        sig = digest(target, iname)
        items.append((key(target, sig), store_dir(target, sig) + "/.hpcdo-stamp", [store_dir(target, sig) + "/content"]))
    return items


def signed(target, run, geometry):
    """What a run's submit signature takes in the geometry's place: the geometry's digest,
    with the run's inputs and their digests beside it when it has inputs (a run without
    inputs keeps its signature)."""
    if not run.inputs:
        return geometry
    return (geometry, tuple((n, digest(target, n)) for n in run.inputs))


def links(target, run):
    """(source relative to the run directory, name): each of the run's inputs in the store."""
    return [("../../inputs/%s/content" % digest(target, n), n) for n in run.inputs]


class Sample(dict):
    """A value of the right type for {inputs[...]}, to try a format spec early."""

    def __missing__(self, key):
        return "input"
