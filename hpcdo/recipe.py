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

Many runs come from a sweep: one run per combination of values, each with
its own signature, stamp and results (see :meth:`Recipe.sweep`)::

    recipe.sweep("flow", {"geometry": ["straight", "stenosis"], "steps": [1000, 2000]},
                 replicas=3, args=["--geometry", "{geometry}", "--steps", "{steps}",
                                   "--seed", "{replica}"])

Paths are relative to the project directory (where ``dodo.py`` is).  In
``args`` and in the values of a run's ``env``, ``{geometry}`` becomes the
geometry file's name inside the run directory, ``{run}`` the run's name,
and ``{cores}``, ``{threads}``, ``{tasks}`` and ``{nodes}`` its layout (see
below); every argument and value reaches the job's shell quoted, exactly as
written (``{{`` and ``}}`` for literal braces).  Jobs run in their own run
directory, which holds a snapshot of the executable and the geometry, so
rebuilding while a job waits in the queue never changes it.

Cores, threads, tasks and nodes
-------------------------------
``cores`` is every core the run uses: its tasks (MPI ranks, copies the
launcher starts) times ``threads``, the cores each task gets (OpenMP
threads; default 1).  ``cores=N`` on the command line overrides a run's
cores, and a run with no cores takes the machine's ``cores``.  With the
machine's ``corespernode`` C::

    tasks          = cores / threads        (cores must be a multiple of threads)
    tasks per node = C // threads           (threads must not exceed C)
    nodes          = the run's nodes=, which must hold the tasks
                     (nodes x tasks per node >= tasks, nodes <= tasks),
                     else ceil(tasks / tasks per node)
    cpn            = ceil(tasks / nodes)    (tasks per node the job asks for)

Without ``corespernode`` nodes are the run's ``nodes`` or 1.  So
``cores=256, threads=4`` on 128-core nodes is 64 tasks of 4 threads, 32 per
node, on 2 nodes: Slurm ``--ntasks=64 --nodes=2 --ntasks-per-node=32
--cpus-per-task=4``, PBS ``select=2:ncpus=128:mpiprocs=32:ompthreads=4``,
LSF ``-n 64 -R "span[ptile=32] affinity[core(4)]"``, Grid Engine 256 slots
of the machine's ``pe``.  A job whose run has threads > 1 exports
``OMP_NUM_THREADS`` (and, under Slurm, ``SRUN_CPUS_PER_TASK``) = threads,
before the run's own ``env``; the launcher gets its thread option where it
has one (see :mod:`hpcdo.launchers`).  Any layout that cannot be met is one
error line before anything is submitted.
"""

import collections

from . import ConfigError, figures, sweep
from . import inputs as input_store
from .analysis import Analysis
from .loop import Loop
from .outputs import OWN_FILES
# the checks on names, fields and values (NAME_RE and check_name are part of the API)
from .recipe_checks import (ARG_FIELDS, NAME_RE, OUTPUT_RE, WALLTIME_RE,  # noqa: F401
                            check_env, check_fields, check_options, check_outputs, positive,
                            check_name)
from .sources import Git, LocalTree

__all__ = ["Recipe", "Run", "LocalTree", "Git", "Layout", "check_name"]

#: one run's place on a machine (see the module docstring): cores = tasks x threads,
#: cpn = tasks per node the job asks for
Layout = collections.namedtuple("Layout", "cores threads tasks nodes cpn")


class Run:
    """One job: a geometry, arguments, cores, threads, nodes and a wall time."""

    def __init__(self, recipe, name, geometry, args, cores, walltime, env, outputs, nodes, threads=1,
                 params=None, gpus=None, inputs=None):
        self.recipe = recipe
        self.name = check_name("run", name)
        label = self.label = "run %s" % name
        #: a sweep run's own {fields}: its parameters' values and its replica (else empty)
        self.params = dict(params or {})
        if geometry is not None and geometry not in recipe.geometries:
            raise ConfigError("%s: unknown geometry %r (the recipe has: %s)"
                              % (label, geometry, ", ".join(sorted(recipe.geometries)) or "none"))
        self.geometry = geometry
        self.inputs = input_store.check_run(label, recipe, inputs, geometry)
        if isinstance(args, (str, bytes)):
            raise ConfigError("%s: args must be a list of arguments, not one string" % label)
        self.args = []
        for arg in args:
            if not isinstance(arg, (str, int, float)) or isinstance(arg, bool):
                raise ConfigError("%s: argument %r must be a string or number" % (label, arg))
            self.args.append(check_fields(label, "argument", str(arg), geometry, self.params, self.inputs))
        if cores is not None and not positive(cores):
            raise ConfigError("%s: cores must be a positive integer" % label)
        self.cores = cores
        if not positive(threads):
            raise ConfigError("%s: threads must be a positive integer" % label)
        self.threads = threads
        if cores is not None and cores % threads:
            raise ConfigError("%s: cores=%d is not a multiple of threads=%d (cores counts every core: "
                              "tasks x threads)" % (label, cores, threads))
        if nodes is not None and not positive(nodes):
            raise ConfigError("%s: nodes must be a positive integer" % label)
        self.nodes = nodes
        if gpus is not None and not positive(gpus):
            raise ConfigError("%s: gpus must be a positive integer (GPUs per node)" % label)
        #: GPUs per node the job asks for (None: none); the scheduler template writes the request
        self.gpus = gpus
        if not isinstance(walltime, str) or not WALLTIME_RE.match(walltime):
            raise ConfigError("%s: walltime %r must look like HH:MM:SS or D-HH:MM:SS" % (label, walltime))
        self.walltime = walltime
        self.env = check_env(label, env)
        for key, value in self.env.items():
            check_fields(label, "env %s value" % key, value, geometry, self.params, self.inputs)
        self.outputs = recipe.outputs if outputs is None else check_outputs(label, outputs)

    def layout(self, cores, corespernode, cores_from="", machine=""):
        """The run's :data:`Layout` for ``cores`` on nodes of ``corespernode`` cores (None: unknown).

        ``cores_from`` says where ``cores`` came from and ``machine`` names the
        machine, for the one-line error when the layout cannot be met.
        """
        label, threads = self.label, self.threads
        said = "cores=%d%s" % (cores, " (%s)" % cores_from if cores_from else "")
        if cores % threads:
            raise ConfigError("%s: %s is not a multiple of threads=%d (cores counts every core: "
                              "tasks x threads)" % (label, said, threads))
        tasks = cores // threads
        nodes = self.nodes
        if corespernode:
            on = "corespernode=%d%s" % (corespernode, " of machine %s" % machine if machine else "")
            if threads > corespernode:
                raise ConfigError("%s: threads=%d do not fit on one node (%s)" % (label, threads, on))
            per_node = corespernode // threads
            needed = -(-tasks // per_node)
            if nodes is None:
                nodes = needed
            elif nodes < needed:
                raise ConfigError("%s: nodes=%d cannot hold %d tasks of %d threads (%s): a node holds "
                                  "%d, so %s needs nodes=%d or more"
                                  % (label, nodes, tasks, threads, on, per_node, said, needed))
        nodes = nodes or 1
        if nodes > tasks:
            raise ConfigError("%s: nodes=%d is more than its %d task%s (%s, threads=%d): a node would "
                              "have nothing to run" % (label, nodes, tasks, "s"[:tasks != 1], said, threads))
        return Layout(cores, threads, tasks, nodes, -(-tasks // nodes))

    def fields(self, layout, geometry_file):
        """The values of the {fields} in args and env, for one layout."""
        return dict(self.params, geometry=geometry_file or "", cores=layout.cores, threads=layout.threads,
                    tasks=layout.tasks, nodes=layout.nodes, run=self.name, **input_store.fields(self.inputs))

    def argv(self, fields):
        """The arguments with their {fields} filled in."""
        return [arg.format(**fields) for arg in self.args]

    def environment(self, fields):
        """The run's env with its {fields} filled in."""
        return {key: value.format(**fields) for key, value in self.env.items()}

    def spec(self):
        """Everything about the run that decides its result (for its signature)."""
        spec = {"name": self.name, "geometry": self.geometry, "args": self.args,
                "cores": self.cores, "threads": self.threads, "nodes": self.nodes,
                "walltime": self.walltime, "env": self.env, "outputs": self.outputs}
        if self.gpus:
            spec["gpus"] = self.gpus         # only a GPU run's: other signatures stay what they were
        if self.inputs:
            spec["inputs"] = list(self.inputs)      # their digests: Target.submit_sig
        if self.params:
            # only a sweep run's: a plain run's signature stays what it was
            spec["params"] = {k: sweep.field_text(v) for k, v in self.params.items()}
        return spec


class Recipe:
    """How to build one code and which runs to make with it."""

    def __init__(self, name, source, executable, cmake_options=None, machine_cmake_options=None,
                 make_jobs=None, geometries=None, outputs=("*",), modules=(), env=None,
                 build_target=None, inputs=None):
        self.name = check_name("recipe", name)
        label = "recipe %s" % name
        if not isinstance(source, (LocalTree, Git)):
            raise ConfigError("%s: source must be LocalTree(path) or Git(url, ref)" % label)
        self.source = source
        if not isinstance(executable, str) or not executable or executable.startswith("/") \
                or ".." in executable.split("/") or not OUTPUT_RE.match(executable) or "*" in executable:
            raise ConfigError("%s: executable must be a plain path relative to the build directory" % label)
        self.executable = executable
        self.cmake_options = check_options(label + ": cmake_options", cmake_options or {})
        self.machine_cmake_options = {}
        for machine, options in (machine_cmake_options or {}).items():
            self.machine_cmake_options[machine] = check_options(
                "%s: machine_cmake_options[%s]" % (label, machine), options)
        if make_jobs is not None and (not isinstance(make_jobs, int) or make_jobs < 1):
            raise ConfigError("%s: make_jobs must be a positive integer" % label)
        self.make_jobs = make_jobs
        self.geometries = {}
        for gname, path in (geometries or {}).items():
            check_name("geometry", gname)
            if not isinstance(path, str) or not path:
                raise ConfigError("%s: geometry %s needs a file path" % (label, gname))
            base = path.rstrip("/").rsplit("/", 1)[-1]
            if base in OWN_FILES or base.startswith(("job.", ".hpcdo")) or \
                    base == executable.rsplit("/", 1)[-1]:
                # the run directory holds a hard link to the geometry under this
                # name: a job log or the executable would overwrite the upload
                raise ConfigError("%s: geometry %s: file name %r is one hpcdo uses in run directories "
                                  "(job.*, submit.log, previous, the executable); rename the file"
                                  % (label, gname, base))
            self.geometries[gname] = path
        self.outputs = check_outputs(label, outputs)
        self.inputs = input_store.check_declared(label, inputs, executable, check_name)
        if isinstance(modules, str) or not all(isinstance(m, str) for m in modules):
            raise ConfigError("%s: modules must be a list of strings" % label)
        self.modules = list(modules)
        self.env = check_env(label, env)
        if build_target is not None and not NAME_RE.match(str(build_target)):
            raise ConfigError("%s: build_target must be a plain target name" % label)
        self.build_target = build_target
        self.runs = {}
        self.analyses = {}
        #: loop name -> hpcdo.loop.Loop: see :meth:`loop`
        self.loops = {}
        #: figure name -> (results file, key): see :meth:`figure`
        self.figures = {}
        #: set by the loader: the recipe file, for messages
        self.path = None

    def run(self, name, geometry=None, args=(), cores=None, walltime="00:10:00", env=None,
            outputs=None, nodes=None, threads=1, gpus=None, inputs=None):
        """Add a run: one job of the recipe's executable.

        ``cores``: every core of the run, tasks x ``threads`` (default: the
        machine's ``cores``; ``cores=N`` on the command line wins).
        ``threads``: cores per task (OpenMP threads), default 1; cores must be
        a multiple of it.  ``gpus``: GPUs per node the job asks for (Slurm
        ``--gpus-per-node``, PBS ``ngpus=``, LSF ``-gpu``; default none).
        ``nodes``: how many nodes to spread the tasks over
        (default: as few as the machine's ``corespernode`` allows).  The
        module docstring gives the arithmetic.  ``args`` and ``env`` values
        may use {geometry}, {cores}, {threads}, {tasks}, {nodes} and {run}.
        ``inputs``: names of the recipe's inputs it reads ({inputs[NAME]}; see :mod:`hpcdo.inputs`).
        """
        if name in self.runs:
            raise ConfigError("recipe %s: run %r is defined twice" % (self.name, name))
        run = Run(self, name, geometry, args, cores, walltime, env, outputs, nodes, threads, gpus=gpus,
                  inputs=inputs)
        self.runs[name] = run
        return run

    def sweep(self, name, parameters, replicas=1, zip=False, names=None, geometry=None, args=(),
              cores=None, walltime="00:10:00", env=None, outputs=None, nodes=None, threads=1, gpus=None,
              inputs=None):
        """Add one run per combination of ``parameters``' values, ``replicas`` times each.

        ``parameters``: a dict of names to lists of values (strings or
        numbers); the runs take their product, or with ``zip=True`` their
        zip.  Each parameter is a {field} of ``args`` and ``env`` values, as
        is ``{replica}`` (1 to ``replicas``); a parameter called
        ``geometry`` picks the run's geometry by name.  Runs are named from
        ``name`` and their values (see :mod:`hpcdo.sweep`), or by the
        pattern ``names`` (e.g. ``"f{force}-r{replica}"``).  The other
        arguments are :meth:`run`'s, shared by every run.  Returns the runs.
        """
        label = "recipe %s: sweep %s" % (self.name, name)
        check_name("sweep", name)
        if not positive(replicas):
            raise ConfigError("%s: replicas must be a positive integer" % label)
        if names is not None and not isinstance(names, str):
            raise ConfigError("%s: names must be a pattern string such as 'f{force}-r{replica}'" % label)
        reserved = set(ARG_FIELDS) - {"geometry"} | {"replica", input_store.FIELD}
        rows = sweep.combinations(label, sweep.check_parameters(label, parameters, reserved), zip)
        if "geometry" in parameters and geometry is not None:
            raise ConfigError("%s: geometry is both a parameter and given; give one" % label)
        made = []
        for values, replica, run_name in sweep.run_names(label, name, rows, replicas, names):
            fields = {k: v for k, v in values.items() if k != "geometry"}
            fields["replica"] = replica
            if run_name in self.runs:
                raise ConfigError("%s: run %r is defined twice" % (label, run_name))
            run = Run(self, run_name, values.get("geometry", geometry), args, cores, walltime, env, outputs,
                      nodes, threads, params=fields, gpus=gpus, inputs=inputs)
            self.runs[run_name] = run
            made.append(run)
        return made

    def analysis(self, name, outputs, runs=None):
        """Declare a local analysis of fetched results, as a decorator (see :mod:`hpcdo.analysis`)::

            @recipe.analysis("report", outputs=["report.md"])
            def report(results, out): ...

        ``results`` maps each run of ``runs`` (default: all the recipe's runs)
        to its fetched results directory; the function writes ``outputs``
        into the directory ``out``, and they land in ``results/<machine>/``.
        """
        check_name("analysis", name)
        if name in self.analyses:
            raise ConfigError("recipe %s: analysis %r is defined twice" % (self.name, name))

        def declare(function):
            self.analyses[name] = Analysis(self, name, function, runs, outputs)
            return function
        return declare

    def figure(self, name, file, key):
        """Name a number each run writes (the JSON ``file`` of its results, at ``key``), shown per
        run and machine by ``doit machine=a,b,c``: ``recipe.figure("MLUPS", "summary.json", "mlups")``
        (see :mod:`hpcdo.figures`)."""
        self.figures[name] = figures.check(self.name, self.figures, name, file, key)

    def loop(self, name, first, max_iterations=8, **settings):
        """Declare an iterative workflow, as a decorator: ``@recipe.loop("calib", first={"force": 1e-5},
        args=["--force", "{force}"])`` over ``def calib(results, params, history)``, which returns
        ``Next(value, **params)`` or ``Converged(value)``; ``settings`` are :meth:`run`'s (see
        :mod:`hpcdo.loop`).  Iteration k is the run ``<name>-0k``."""
        check_name("loop", name)
        if name in self.loops:
            raise ConfigError("recipe %s: loop %r is defined twice" % (self.name, name))

        def declare(function):
            self.loops[name] = Loop(self, name, function, first, max_iterations, settings, Run)
            return function
        return declare

    def cmake_options_for(self, machine):
        """The recipe's options, then the machine file's, then the recipe's per-machine ones."""
        options = dict(self.cmake_options)
        options.update(machine.cmake_options or {})
        options.update(self.machine_cmake_options.get(machine.name, {}))
        return options
