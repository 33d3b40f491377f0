"""The recipe API: all a recipe author needs to read.

A recipe is a Python file in ``recipes/`` that creates one :class:`Recipe`
at module level.  It says where the code comes from, how CMake builds it,
which geometry files it reads and which runs to make::

    from hpcdo.recipe import Recipe, LocalTree

    recipe = Recipe(
        name="lbflow",
        source=LocalTree("demo/lbflow"),        # or Git(url, ref)
        executable="lbflow",                    # built file, relative to the build dir
        cmake_options={"CMAKE_BUILD_TYPE": "Release"},
        machine_cmake_options={"archer2": {"CMAKE_C_COMPILER": "cc"}},
        geometries={"straight": "demo/geometries/straight.gmy"},
        outputs=["summary.json", "velocity.csv"],
    )
    recipe.run("straight", geometry="straight",
               args=["--geometry", "{geometry}", "--steps", 3000],
               cores=1, walltime="00:05:00")

Paths are relative to the project directory (where ``dodo.py`` is).  In
``args``, ``{geometry}`` becomes the geometry file's name inside the run
directory, ``{cores}`` the run's core count and ``{run}`` its name; every
argument reaches the job's shell quoted, exactly as written.  Jobs run in
their own run directory, which holds a snapshot of the executable and the
geometry, so rebuilding while a job waits in the queue never changes it.
"""

import re
import string

from . import ConfigError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
WALLTIME_RE = re.compile(r"^(\d+-)?\d{1,3}:\d{2}:\d{2}\Z")
OPTION_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(:[A-Z]+)?\Z")
ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
# output patterns are expanded by the remote shell, so only safe glob text
OUTPUT_RE = re.compile(r"^[A-Za-z0-9_.*?\[\]-]+(/[A-Za-z0-9_.*?\[\]-]+)*\Z")
ARG_FIELDS = ("geometry", "cores", "run")


def check_name(kind, value):
    """Names become task names and directory names: keep them plain."""
    if not isinstance(value, str) or not NAME_RE.match(value) or value in (".", ".."):
        raise ConfigError("%s name %r: use 1-64 letters, digits, '_', '.', '-' (starting with a "
                          "letter or digit)" % (kind, value))
    return value


def _check_options(label, options):
    if not isinstance(options, dict):
        raise ConfigError("%s must be a dict of CMake option names to values" % label)
    for key, value in options.items():
        if not isinstance(key, str) or not OPTION_RE.match(key):
            raise ConfigError("%s: %r is not a CMake option name" % (label, key))
        if not isinstance(value, (str, int, float, bool)):
            raise ConfigError("%s: value of %s must be a string, number or bool" % (label, key))
    return dict(options)


def _check_env(label, env):
    env = dict(env or {})
    for key, value in env.items():
        if not isinstance(key, str) or not ENV_RE.match(key):
            raise ConfigError("%s: %r is not an environment variable name" % (label, key))
        if not isinstance(value, (str, int, float)):
            raise ConfigError("%s: value of %s must be a string or number" % (label, key))
    return {k: str(v) for k, v in env.items()}


def _check_outputs(label, outputs):
    if isinstance(outputs, str):
        outputs = [outputs]
    outputs = list(outputs)
    for pattern in outputs:
        if not isinstance(pattern, str) or not OUTPUT_RE.match(pattern) or \
                ".." in pattern.split("/"):
            raise ConfigError("%s: output pattern %r may use only letters, digits, '_.-/' and "
                              "glob characters, relative to the run directory" % (label, pattern))
    return outputs


class LocalTree:
    """Source taken from a directory on this computer and synced to the machine.

    Uncommitted edits count: the content of the files decides what is stale.
    ``exclude`` adds fnmatch patterns (matched against each path component)
    to the defaults (version control, caches, object files).
    """

    kind = "local"

    def __init__(self, path, exclude=()):
        if not isinstance(path, str) or not path:
            raise ConfigError("LocalTree needs a directory path")
        self.path = path
        self.exclude = tuple(exclude)

    def describe(self):
        return "local tree %s" % self.path


class Git:
    """Source cloned on the machine itself from ``url`` at ``ref``.

    The commit that ``ref`` resolved to at clone time is recorded; pin a tag
    or a commit for reproducible runs (a branch is not re-resolved until the
    ``cold`` task or a change of ``ref``).
    """

    kind = "git"

    def __init__(self, url, ref="HEAD"):
        if not isinstance(url, str) or not url or url.startswith("-"):
            raise ConfigError("Git needs a repository URL")
        if not isinstance(ref, str) or not ref or ref.startswith("-"):
            raise ConfigError("Git ref must be a branch, tag or commit")
        self.url = url
        self.ref = ref

    def describe(self):
        return "git %s @ %s" % (self.url, self.ref)


class Run:
    """One job: a geometry, arguments, cores and a wall time."""

    def __init__(self, recipe, name, geometry, args, cores, walltime, env, outputs, nodes):
        self.recipe = recipe
        self.name = check_name("run", name)
        label = "run %s" % name
        if geometry is not None and geometry not in recipe.geometries:
            raise ConfigError("%s: unknown geometry %r (the recipe has: %s)"
                              % (label, geometry, ", ".join(sorted(recipe.geometries)) or "none"))
        self.geometry = geometry
        if isinstance(args, (str, bytes)):
            raise ConfigError("%s: args must be a list of arguments, not one string" % label)
        self.args = []
        for arg in args:
            if not isinstance(arg, (str, int, float)) or isinstance(arg, bool):
                raise ConfigError("%s: argument %r must be a string or number" % (label, arg))
            arg = str(arg)
            if "\r" in arg or "\0" in arg:
                # a jobscript line with a carriage return reads as a DOS file
                # to sbatch; a NUL cannot pass through a shell at all
                raise ConfigError("%s: argument %r holds a carriage return or NUL byte, which no "
                                  "jobscript can carry" % (label, arg))
            for _text, field, _spec, _conv in string.Formatter().parse(arg):
                if field is not None and field not in ARG_FIELDS:
                    raise ConfigError("%s: argument %r uses {%s}; only {geometry}, {cores} and {run} "
                                      "are known (write {{ and }} for literal braces)" % (label, arg, field))
                if field == "geometry" and geometry is None:
                    raise ConfigError("%s: argument %r uses {geometry} but the run has none" % (label, arg))
            self.args.append(arg)
        if cores is not None and (not isinstance(cores, int) or isinstance(cores, bool) or cores < 1):
            raise ConfigError("%s: cores must be a positive integer" % label)
        self.cores = cores
        if nodes is not None and (not isinstance(nodes, int) or isinstance(nodes, bool) or nodes < 1):
            raise ConfigError("%s: nodes must be a positive integer" % label)
        self.nodes = nodes
        if not isinstance(walltime, str) or not WALLTIME_RE.match(walltime):
            raise ConfigError("%s: walltime %r must look like HH:MM:SS or D-HH:MM:SS" % (label, walltime))
        self.walltime = walltime
        self.env = _check_env(label, env)
        self.outputs = recipe.outputs if outputs is None else _check_outputs(label, outputs)

    def argv(self, cores, geometry_file):
        """The arguments with {geometry}, {cores} and {run} filled in."""
        values = {"geometry": geometry_file or "", "cores": cores, "run": self.name}
        return [arg.format(**values) for arg in self.args]

    def spec(self):
        """Everything about the run that decides its result (for its signature)."""
        return {"name": self.name, "geometry": self.geometry, "args": self.args,
                "cores": self.cores, "nodes": self.nodes, "walltime": self.walltime,
                "env": self.env, "outputs": self.outputs}


class Recipe:
    """How to build one code and which runs to make with it."""

    def __init__(self, name, source, executable, cmake_options=None, machine_cmake_options=None,
                 make_jobs=None, geometries=None, outputs=("*",), modules=(), env=None,
                 build_target=None):
        self.name = check_name("recipe", name)
        label = "recipe %s" % name
        if not isinstance(source, (LocalTree, Git)):
            raise ConfigError("%s: source must be LocalTree(path) or Git(url, ref)" % label)
        self.source = source
        if not isinstance(executable, str) or not executable or executable.startswith("/") \
                or ".." in executable.split("/") or not OUTPUT_RE.match(executable) or "*" in executable:
            raise ConfigError("%s: executable must be a plain path relative to the build directory" % label)
        self.executable = executable
        self.cmake_options = _check_options(label + ": cmake_options", cmake_options or {})
        self.machine_cmake_options = {}
        for machine, options in (machine_cmake_options or {}).items():
            self.machine_cmake_options[machine] = _check_options(
                "%s: machine_cmake_options[%s]" % (label, machine), options)
        if make_jobs is not None and (not isinstance(make_jobs, int) or make_jobs < 1):
            raise ConfigError("%s: make_jobs must be a positive integer" % label)
        self.make_jobs = make_jobs
        self.geometries = {}
        for gname, path in (geometries or {}).items():
            check_name("geometry", gname)
            if not isinstance(path, str) or not path:
                raise ConfigError("%s: geometry %s needs a file path" % (label, gname))
            self.geometries[gname] = path
        self.outputs = _check_outputs(label, outputs)
        if isinstance(modules, str) or not all(isinstance(m, str) for m in modules):
            raise ConfigError("%s: modules must be a list of strings" % label)
        self.modules = list(modules)
        self.env = _check_env(label, env)
        if build_target is not None and not NAME_RE.match(str(build_target)):
            raise ConfigError("%s: build_target must be a plain target name" % label)
        self.build_target = build_target
        self.runs = {}
        #: set by the loader: the recipe file, for messages
        self.path = None

    def run(self, name, geometry=None, args=(), cores=None, walltime="00:10:00", env=None,
            outputs=None, nodes=None):
        """Add a run; ``cores`` defaults to the machine's ``cores`` setting."""
        if name in self.runs:
            raise ConfigError("recipe %s: run %r is defined twice" % (self.name, name))
        run = Run(self, name, geometry, args, cores, walltime, env, outputs, nodes)
        self.runs[name] = run
        return run

    def cmake_options_for(self, machine):
        """The recipe's options, then the machine file's, then the recipe's per-machine ones."""
        options = dict(self.cmake_options)
        options.update(machine.cmake_options or {})
        options.update(self.machine_cmake_options.get(machine.name, {}))
        return options
