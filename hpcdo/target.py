"""One recipe on one machine: where its things are, and what each step's inputs are.

A :class:`Target` is the value the planning and the steps share.  It names
the recipe's places on the machine (source, build, geometries, run
directories) and the keys of their stamps in the probe's answer, and it
computes, without touching the machine, each step's signature, each run's
layout (cores, threads, tasks, nodes) and its jobscript.  Signatures chain
the steps together the way ``make`` would, but by content:

==============  ==========================================================
step            signature covers
==============  ==========================================================
clone           git URL and ref; a local tree: that it is on the machine
                (configure and compile sync a local tree's edits first)
configure       CMake options, CMakeLists/*.cmake contents, modules, env
compile         configure's signature and the whole source tree
send_geometry   the geometry file's content
send_input      the input's content (hpcdo.inputs: stored by digest)
submit          the executable's hash, the geometry's, the run's
                settings, its inputs' digests, and the jobscript's
                templates and values
wait            the submitted job has completed with exit code 0
fetch_results   the local copy holds the results the machine now has
==============  ==========================================================

Every step's stamp lives on the machine (see :mod:`hpcdo.remote.scripts`),
so a fresh clone of the project, with no local state, reruns only what the
machine lacks.  The submit signature uses the *built* executable's hash, so
a rebuild that produces the same binary (a scratch purge of the build
directory, a comment edit) does not spend core hours on the same jobs again.
The two signatures that depend on what the machine holds (the cloned commit,
the built executable's hash) read the session's probe answer.
"""

import os
import re
import threading

from . import ConfigError
from . import jobscript as jobscripts
from . import config, launchers, signature
from . import inputs as input_store
from .recipe import Git
from .recipe_checks import OPTION_RE
from .remote import scripts

#: a Git ref that is a whole commit id: it never moves, so it is never looked up
COMMIT_RE = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?\Z")


class Target:
    """One recipe on the machine of ``session``; ``templates`` is the jobscript environment."""

    def __init__(self, session, recipe, project_dir, templates):
        self.session = session
        self.machine = session.machine
        self.recipe = recipe
        self.project_dir = project_dir
        self.templates = templates
        name = recipe.name
        self.dir = name
        self.src = name + "/src"
        self.build = name + "/build"
        self.keys = {"clone": "clone:" + name, "configure": "configure:" + name,
                     "compile": "compile:" + name, "cache": "cache:" + name, "head": "head:" + name}
        self._cache = {}
        self._lock = threading.RLock()

    def geometry_key(self, gname):
        return "geometry:%s/%s" % (self.recipe.name, gname)

    def geometry_dir(self, gname):
        return "%s/geometry/%s" % (self.dir, gname)

    def geometry_file(self, gname):
        return os.path.basename(self.recipe.geometries[gname])

    def run_key(self, run):
        return "run:%s/%s" % (self.recipe.name, run.name)

    def run_dir(self, run):
        return "%s/runs/%s" % (self.dir, run.name)

    def results_dir(self, run):
        return os.path.join(self.project_dir, "results", self.machine.name, run.name)

    def log_path(self, run):
        """Where the run's job log is on the machine, as the user would type it there."""
        return "%s/%s/job.out" % (self.machine.remote_root.rstrip("/"), self.run_dir(run))

    def _local(self, path):
        return os.path.join(self.project_dir, path)

    def probe_items(self):
        stamps = [
            (self.keys["clone"], self.src + "/.hpcdo-stamp", [self.src]),
            (self.keys["configure"], self.build + "/.hpcdo-configure", [self.build + "/CMakeCache.txt"]),
            (self.keys["cache"], self.build + "/.hpcdo-cache", [self.build + "/CMakeCache.txt"]),
            (self.keys["compile"], self.build + "/.hpcdo-compile",
             [self.build + "/" + self.recipe.executable]),
        ]
        for gname in self.recipe.geometries:
            d = self.geometry_dir(gname)
            stamps.append((self.geometry_key(gname), d + "/.hpcdo-stamp", [d + "/" + self.geometry_file(gname)]))
        runs = [(self.run_key(run), self.run_dir(run), run.outputs) for run in self.recipe.runs.values()]
        return stamps + input_store.probe_stamps(self), runs

    def probe_heads(self):
        """(key, url, ref) for a git source whose ref may move (a branch or tag, not a commit)."""
        source = self.recipe.source
        if isinstance(source, Git) and not COMMIT_RE.match(source.ref):
            url, user, password = source.credentials()
            return [(self.keys["head"], url, source.ref, user, password)]
        return []

    def remote_head(self):
        """The commit the git source's ref names now, as the machine sees it; "" when unknown."""
        refs = getattr(self.session.stamp(self.keys["head"]), "refs", None) or {}
        ref = self.recipe.source.ref
        for name in ("refs/heads/" + ref, "refs/tags/%s^{}" % ref, "refs/tags/" + ref, ref):
            if name in refs:
                return refs[name]
        return next(iter(sorted(refs.values())), "") if len(set(refs.values())) == 1 else ""

    def _memo(self, key, compute):
        with self._lock:
            if key not in self._cache:
                self._cache[key] = compute()
            return self._cache[key]

    def manifest(self):
        source = self.recipe.source
        return self._memo("manifest", lambda: signature.tree_manifest(
            self._local(source.path), signature.DEFAULT_EXCLUDE + source.exclude))

    def clone_sig(self):
        source = self.recipe.source
        if isinstance(source, Git):
            return signature.digest("git", source.url, source.ref)
        return signature.manifest_digest(self.manifest())

    def local_source_sig(self):
        """The source stamp a build must find on the machine: a local tree's, else None."""
        return None if isinstance(self.recipe.source, Git) else self.clone_sig()

    def source_version(self):
        """What identifies the source's content: the tree hash or the cloned commit."""
        if isinstance(self.recipe.source, Git):
            stamp = self.session.stamp(self.keys["clone"])
            return stamp.commit if stamp else ""
        return self.clone_sig()

    def cmake_options(self):
        options = self.recipe.cmake_options_for(self.machine)
        for name in options:
            if not OPTION_RE.match(str(name)):
                raise ConfigError("machine %s: %r is not a CMake option name" % (self.machine.name, name))
        return options

    def setup(self):
        return self._memo("setup", self._setup)

    def _setup(self):
        m = self.machine
        env = dict(m.env or {})
        env.update(self.recipe.env)
        return scripts.setup_lines(list(m.modules or []) + self.recipe.modules, m.module_init, env)

    def configure_sig(self):
        if isinstance(self.recipe.source, Git):
            cmake_files = self.source_version()
        else:
            cmake_files = signature.manifest_digest(self.manifest(), only=signature.CMAKE_FILES)
        return signature.digest("configure", cmake_files, self.cmake_options(), self.setup(),
                                self.machine.cmake)

    def compile_sig(self):
        return signature.digest("compile", self.configure_sig(), self.source_version(),
                                self.recipe.build_target, self.recipe.executable)

    def geometry_sig(self, gname):
        def compute():
            path = self._local(self.recipe.geometries[gname])
            if not os.path.isfile(path):
                raise ConfigError("recipe %s: geometry %s: file %s does not exist"
                                  % (self.recipe.name, gname, self.recipe.geometries[gname]))
            return signature.file_sha256(path)
        return self._memo("geometry:" + gname, compute)

    def cores(self, run):
        """The run's cores; ``cores=N`` on the command line wins over the recipe and the machine file."""
        if self.machine.where("cores") == config.COMMAND_LINE:
            return self.machine.cores
        return run.cores or self.machine.cores

    def layout(self, run):
        """The run's :class:`hpcdo.recipe.Layout` on this machine: cores, threads, tasks, nodes, cpn.

        The arithmetic is :meth:`hpcdo.recipe.Run.layout`'s (told in
        hpcdo/recipe.py); a layout the machine cannot hold is one ConfigError.
        """
        def compute():
            m = self.machine
            if m.where("cores") == config.COMMAND_LINE:
                cores_from = "cores= on the command line"
            elif run.cores is None:
                cores_from = "the machine's cores, %s" % m.where("cores")
            else:
                cores_from = ""
            return run.layout(self.cores(run), m.corespernode, cores_from, m.name)
        return self._memo(("layout", run.name), compute)

    def fields(self, run):
        """The values of the run's {fields} (args, env) on this machine."""
        geometry = self.geometry_file(run.geometry) if run.geometry else None
        return run.fields(self.layout(run), geometry)

    def command(self, run):
        """The job's command line: the machine's launcher, the executable, quoted arguments."""
        lay = self.layout(run)
        values = {"cores": lay.cores, "threads": lay.threads, "tasks": lay.tasks, "nodes": lay.nodes,
                  "cpn": lay.cpn, "corespernode": self.machine.corespernode or lay.cpn}
        # runs of one layout share their launcher words: worked out once
        gpus = run.gpus or 0
        launcher = self._memo(("launcher", gpus) + tuple(sorted(values.items())),
                              lambda: launchers.prefix(self.machine, values, gpus))
        argv = ["./" + os.path.basename(self.recipe.executable)] + run.argv(self.fields(run))
        return (launcher + " " if launcher else "") + " ".join(scripts.q(a) for a in argv)

    def template_name(self):
        return self.machine.jobscript or self.session.scheduler.template

    def jobscript(self, run):
        return self._memo("jobscript:" + run.name, lambda: jobscripts.render(
            self.templates, self.template_name(), self.jobscript_values(run)))

    def jobscript_values(self, run):
        """Everything a jobscript template is rendered with, for one run."""
        m = self.machine
        lay = self.layout(run)
        # the threads a task may start, after the machine's and recipe's env
        # (ARCHER2's sets OMP_NUM_THREADS=1) and before the run's own
        env = [("OMP_NUM_THREADS", str(lay.threads))] if lay.threads > 1 else []
        env += sorted(run.environment(self.fields(run)).items())
        return {
            "job_name": self.session.scheduler.job_name(self.recipe.name, run.name, m.max_job_name_chars),
            "recipe": self.recipe.name, "run": run.name, "machine": m.name,
            "cores": lay.cores, "threads": lay.threads, "tasks": lay.tasks, "nodes": lay.nodes,
            "cpn": lay.cpn, "walltime": run.walltime,
            "partition": m.partition, "account": m.account, "qos": m.qos, "pe": m.pe,
            "memory": m.memory, "directives": list(m.directives or []),
            "corespernode": m.corespernode,
            "setup": self.setup() + ["export %s=%s" % (k, scripts.q(v)) for k, v in env],
            "command": self.command(run),
            **_gpu_values(run, self.session.scheduler, m),
        }

    def submit_sig(self, run):
        stamp = self.session.stamp(self.keys["compile"])
        binary = stamp.binary if stamp else None
        if not binary:
            return None
        geometry = input_store.signed(self, run, self.geometry_sig(run.geometry) if run.geometry else None)
        # the jobscript enters as its templates' sources and its values, which
        # decide its text, so a no-op call renders no jobscript at all
        return self._memo(("submit", run.name, binary, geometry), lambda: signature.digest(
            "submit", binary, geometry, run.spec(),
            jobscripts.sources_digest(self.templates, self.template_name()), self.jobscript_values(run)))


def _gpu_values(run, scheduler, machine):
    """``{"gpus": N}`` for a GPU run, else nothing: every other run's jobscript values (and so its
    submit signature) stay what they were.  A scheduler without a GPU request refuses the run."""
    if not run.gpus:
        return {}
    if not getattr(scheduler, "gpus", True):
        raise ConfigError("run %s: gpus=%d, but scheduler %s of machine %s has no GPU request"
                          % (run.name, run.gpus, machine.scheduler, machine.name))
    return {"gpus": run.gpus}
