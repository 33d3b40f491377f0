"""FabSim3 machine files, read as they are, as hpcdo machine layers.

A FabSim3 user keeps machines in ``fabsim/deploy/machines.yml`` (with an
optional ``machines_private.yml`` beside it) and personal settings in
``machines_user.yml``.  :func:`load` reads those files without changing them
and returns hpcdo :class:`~hpcdo.layer.Layer` objects whose keys are
hpcdo's and whose file and line are the FabSim3 ones, so an error about a
FabSim3 machine points at the line the user wrote.

How FabSim3 builds one machine (``fabsim/deploy/machines.py``): the
``default:`` block of machines.yml, then that of machines_user.yml, then
the entry named by ``import:`` (its machines.yml entry, then its user
entry), then the machine's own machines.yml entry, then its user entry,
each replacing whole keys.  ``modules`` is the exception: a mapping
(``all``, ``loaded``, ``unloaded``, or a FabSim3 script name) updated sub-key
by sub-key, taken from machines.yml's default block only, never from the
user's.  Paths are ``$var`` templates (Python ``string.Template``) filled once
each from the merged settings, in the order home_path, runtime_path,
work_path.  Here ``import`` may chain (FabSim3 follows one level) and
becomes hpcdo's ``extends``.

Each machine is resolved here in FabSim3's order, then split into layers
by the file each value came from (machines.yml, machines_user.yml, the
batch header template).  Every machine's layers therefore carry its whole
description, including what it inherits from FabSim3's defaults and its
``import``, so they give the same machine whether or not FabSim3's default
block is applied in front of them.

=========================  ==================================================
FabSim3                    hpcdo
=========================  ==================================================
remote                     host ("localhost" or none: null, this computer)
username                   user
port, cores, corespernode  the same
max_job_name_chars         the same
job_dispatch               scheduler: sbatch slurm, qsub sge or pbs (from the
                           batch header), bsub lsf, yhbatch tianhe, empty
                           local; options after the command: directives
batch_header               the template's directives: partition, account,
                           qos, pe from their options (and memory where it
                           means what hpcdo's does: SGE h_vmem, PBS mem),
                           the rest as ``directives``; options hpcdo writes
                           for every job (name, time, tasks, nodes, output,
                           working directory, shell) are dropped
  (header not found)       budget account, partition_name (or queue)
                           partition, qos_name qos
run_command                run_command; $cores $nodes $corespernode kept,
                           other $vars filled from the machine
work_path_template (with   remote_root, filled from the machine's settings
runtime_path_template,
home_path_template,
fabric_dir, username ...)
modules                    modules: all (as written), unloaded ("unload x"),
                           loaded ("load x")
run_prefix_commands        shell_setup
import                     extends
=========================  ==================================================

Everything else is left out with a warning saying why (FabSim3 internals
that change nothing in a job are left out quietly).  A machine that cannot
be resolved (an unknown ``$var``, a job_dispatch hpcdo does not drive, a
wrong type) is left out with a warning, and its error is kept for when
someone asks for that machine: FabSim3's shipped files describe machines
hpcdo cannot drive (LoadLeveler, QCG), and one of them must not stop the
others from loading.
"""

import os
import re
import string

from . import ConfigError
from .launchers import VARIABLES
from .layer import MACHINE_NAME, Layer, load_yaml
from .schema import MEMORY_RE

#: FabSim3 variables filled in per job (fabsim/base/fab.py); hpcdo cannot know them in advance
JOB_TIME = frozenset((
    "job_name", "job_wall_time", "job_results", "job_results_local", "job_config_path",
    "job_config_path_local", "cores", "nodes", "cores_reserved", "coresusedpernode", "total_mem",
    "replica_number", "label", "name", "script", "run_prefix", "run_command", "dest_name",
    "results_path", "config_path", "scripts_path", "job_name_template_sh", "config",
))

#: run_command variables hpcdo fills per run (the launchers' own)
RUN_VARIABLES = frozenset(VARIABLES)

DISPATCH = {"sbatch": "slurm", "bsub": "lsf", "yhbatch": "tianhe"}

#: the directive prefix of each scheduler's jobscripts
PREFIXES = {"slurm": "#SBATCH", "tianhe": "#SBATCH", "sge": "#$", "pbs": "#PBS", "torque": "#PBS",
            "lsf": "#BSUB"}

DROP = "drop"           # hpcdo writes this option itself for every job
RES = "resources"       # a comma list of name=value resources, each judged on its own

_SLURM = {
    "-J": DROP, "--job-name": DROP, "-n": DROP, "--ntasks": DROP, "-N": DROP, "--nodes": DROP,
    "-t": DROP, "--time": DROP, "-o": DROP, "--output": DROP, "-e": DROP, "--error": DROP,
    "-D": DROP, "--chdir": DROP, "--workdir": DROP,
    # hpcdo writes the run's tasks per node and cpus per task (threads); a header's
    # fixed line would come later and win over them
    "--ntasks-per-node": DROP, "--cpus-per-task": DROP, "-c": DROP,
    "-p": "partition", "--partition": "partition", "-A": "account", "--account": "account",
    "-q": "qos", "--qos": "qos",
    # --mem stays a directive: FabSim3's is per node, hpcdo's memory per job
}
_PBS = {"-N": DROP, "-o": DROP, "-e": DROP, "-j": DROP, "-q": "partition", "-A": "account", "-l": RES}
OPTIONS = {
    "slurm": _SLURM, "tianhe": _SLURM, "pbs": _PBS, "torque": _PBS,
    # hpcdo's account is -P here; a header's -A (an account string at some sites) stays as written
    "sge": {"-N": DROP, "-o": DROP, "-e": DROP, "-j": DROP, "-cwd": DROP, "-wd": DROP, "-S": DROP,
            "-q": "partition", "-P": "account", "-pe": "pe", "-l": RES},
    "lsf": {"-J": DROP, "-n": DROP, "-W": DROP, "-o": DROP, "-e": DROP, "-oo": DROP, "-eo": DROP,
            "-cwd": DROP, "-q": "partition", "-P": "account"},
}
_PBS_RES = {name: DROP for name in ("walltime", "select", "nodes", "ncpus", "mpiprocs", "ppn",
                                    "mppwidth", "mppnppn", "mppdepth")}
_PBS_RES["mem"] = "memory"
# Grid Engine: hpcdo's memory is h_vmem per slot; a site resource such as UCL's mem stays as written
RESOURCES = {"sge": {"h_rt": DROP, "s_rt": DROP, "h_vmem": "memory"}, "pbs": _PBS_RES, "torque": _PBS_RES}

#: a batch header whose name holds one of these, submitted with qsub, is Grid Engine
SGE_HINTS = ("sge", "uge", "gridengine", "myriad", "legion", "grace", "kathleen", "young",
             "thomas", "ucl")

OPTION_RE = re.compile(r"^(--?[A-Za-z][A-Za-z0-9_-]*)(?:(?:=|\s+)(.*))?\Z")
SHELL_VAR_RE = re.compile(r"^[A-Z_][A-Z0-9_]*\Z")

#: keys hpcdo leaves out, and why
WHY = {
    "manual_ssh": "hpcdo always connects with its own SSH client, which reads ~/.ssh/config "
                  "for host aliases, user, key and ProxyJump",
    "manual_gsissh": "GSI-SSH login is not supported; hpcdo connects with plain SSH",
    "manual_sshpass": "password login through sshpass is not supported; use an SSH key or agent",
    "sshpass": "password login through sshpass is not supported; use an SSH key or agent",
    "ssh_monsoon_mode": "submitting through a second SSH hop is not supported",
    "remote_compute": "submitting through a second SSH hop is not supported",
    "dispatch_jobs_on_localhost": "hpcdo submits on the machine itself",
    "stat": "hpcdo asks the scheduler about jobs itself",
    "cancel_job_command": "hpcdo cancels jobs through the scheduler itself",
    "job_info_command": "hpcdo asks the scheduler about jobs itself",
    "job_wall_time": "hpcdo takes the walltime of each run from the recipe",
    "job_name_template": "hpcdo names jobs <recipe>-<run>",
    "job_name": "hpcdo names jobs <recipe>-<run>",
    "nodes": "FabSim3 recomputes it from cores and corespernode; hpcdo takes nodes per run",
    "nb_process": "hpcdo runs tasks in parallel with doit -n",
    "module_load_at_connect": "hpcdo loads the modules in every build and job script",
    "python_build": "hpcdo builds CMake recipes and sets up no Python environment",
    "python3_command": "hpcdo builds CMake recipes and sets up no Python environment",
    "virtual_env_path": "hpcdo builds CMake recipes and sets up no Python environment",
    "venv": "hpcdo builds CMake recipes and sets up no Python environment",
    "py_pkg": "hpcdo builds CMake recipes and sets up no Python environment",
    "app_repository": "hpcdo builds CMake recipes and sets up no Python environment",
    "local_results": "hpcdo fetches results into results/<machine>/<run> in the project",
    "results_path_template": "each run's results stay in its run directory under remote_root",
    "remote_path_template": "hpcdo builds and runs under one root, remote_root, taken from "
                            "work_path_template",
    "temp_path_template": "hpcdo needs no temporary directory on the machine",
    "run_ensemble_command": "ensembles are runs of a recipe in hpcdo, not a machine setting",
    "cores_per_replica": "ensembles are runs of a recipe in hpcdo, not a machine setting",
    "replicas": "ensembles are runs of a recipe in hpcdo, not a machine setting",
    "batch_header_install_app": "pilot jobs and app installation are not supported",
    "cpuspertask": "hpcdo writes each run's cpus per task itself, from the run's threads",
    "taskspernode": "hpcdo writes each run's tasks per node itself, from its cores, threads and "
                    "corespernode",
    "budget": "the batch header does not use it",
    "partition_name": "the batch header does not use it",
    "qos_name": "the batch header does not use it",
    "queue": "the batch header does not use it",
    "memory": "FabSim3 passes it only through a batch header, and no header hpcdo read uses it",
    "project": "no path template or batch header uses it",
    "groupname": "no path template or batch header uses it",
    "workdir": "hpcdo runs each job in its own run directory",
}
_PILOT = ("PJ", "pj_", "QCG", "qcg_", "RP_", "radical", "ranks", "coresperrank", "runtime")
_PILOT_WHY = "pilot jobs (QCG, RADICAL, Slurm arrays) are not supported"
_PLUGIN_WHY = "not a FabSim3 machine setting hpcdo maps (a plugin's or application's variable?)"

#: FabSim3 internals that change nothing about where or how a job runs: left out quietly
QUIET = frozenset((
    "rich_console", "enable_template_cache", "template_cache_size", "dry_run",
    "prevent_results_overwrite", "local_config_file_path", "local_configs", "job_desc", "no_hg",
    "pwd", "finishedJobTags", "unfinishedJobTags",
))


class FabsimMachines:
    """What :func:`load` found.

    ``defaults``: Layers of the ``default:`` blocks (machines.yml's, then the
    user's), with the keys that map one to one.  ``entries``: {machine name:
    [Layer, ...]}, each machine's whole description split by the file each
    value came from (machines.yml, then machines_user.yml, then the batch
    header).  ``warnings``: one line each, ``FILE:LINE: machine 'x': ...``.
    ``errors``: {name: message} for machines left out.
    """

    def __init__(self):
        self.defaults = []
        self.entries = {}
        self.warnings = []
        self.errors = {}
        self._scoped = []             # (scope, text): scope is "default" or a machine name
        self._ancestors = {}          # name -> [its extends parents, nearest first]

    def require(self, name):
        """Raise the ConfigError that left machine ``name`` out, if one did."""
        if name in self.errors:
            raise ConfigError(self.errors[name])

    def warn(self, scope, text):
        """Add a warning about machine ``scope`` (or "default": about all of them)."""
        self.warnings.append(text)
        self._scoped.append((scope, text))

    def warnings_for(self, name):
        """The warnings about machine ``name``: its own, its parents', the default blocks'."""
        scopes = {"default", name} | set(self._ancestors.get(name, []))
        return [text for scope, text in self._scoped if scope in scopes]


class _Source:
    """One block of one FabSim3 file: a machine entry or a ``default:`` block."""

    def __init__(self, name, layer, order, user):
        self.name = name
        self.path = layer.where
        self.values = layer.values
        self.lines = layer.lines
        self.name_line = layer.name_line
        self.order = order            # position of its file: machines.yml 0, private 1, user 2
        self.user = user
        self.default = name == "default"
        self.label = "default" if self.default else "machine '%s'" % name

    def line(self, key):
        return self.lines.get(key, self.name_line)

    def at(self, key):
        return "%s:%d" % (self.path, self.line(key))


def load(path, user_path=None, strict=False):
    """Read a FabSim3 ``machines.yml`` (and ``machines_user.yml``) into a :class:`FabsimMachines`.

    A ``machines_private.yml`` beside ``path`` is read too, and its entries
    replace machines.yml's of the same name, as in FabSim3.  A file that
    cannot be read or parsed, or a wrong ``default:`` block, raises
    ConfigError.  A machine that cannot be mapped is left out, with its
    error in ``errors`` (raised by :meth:`FabsimMachines.require`) and a
    warning, unless ``strict``, which raises at once.
    """
    main = _read(path, 0)
    private = os.path.join(os.path.dirname(path), "machines_private.yml")
    if os.path.isfile(private):
        main.update(_read(private, 1))
    user = _read(user_path, 2) if user_path else {}
    return _Loader(path, main, user, user_path, strict).run()


def _read(path, order):
    return {str(name): _Source(str(name), layer, order, order == 2)
            for name, layer in load_yaml(path, strict_names=False).items()}


class _Result:
    """One machine resolved: hpcdo key -> (value, file, line), and what it used."""

    def __init__(self, name, chain, parent):
        self.name = name
        self.chain = chain            # sources parents first, defaults excluded
        self.parent = parent          # (parent name, source of the import) or None
        self.out = {}
        self.used = set()             # FabSim3 keys this machine used
        self.module_sources = []      # sources whose modules went in
        self.warnings = []            # (scope, file order, file, line, text)
        self.header_key = None        # where the keys a batch header decides are anchored


class _Loader:
    def __init__(self, path, main, user, user_path, strict):
        self.path = path
        self.strict = strict
        self.main = main
        self.user = user
        self.user_path = user_path
        self.defaults = [s for s in (main.get("default"), user.get("default")) if s is not None]
        self.found = FabsimMachines()
        self.results = {}
        # each file's place, for sorting warnings: machines.yml, private, user, then headers
        self.file_order = {src.path: src.order for src in list(main.values()) + list(user.values())}

    # -- the whole load --------------------------------------------------------
    def run(self):
        for src in self.defaults:
            self._check_default(src)
        names = [n for n in self.main if n != "default"]
        names += [n for n in self.user if n != "default" and n not in self.main]
        failed = {}
        for name in names:
            try:
                if not MACHINE_NAME.match(name):
                    src = self._own(name)[0]
                    raise ConfigError("%s:%d: machine name %r may use only letters, digits, '_', '.', '-'"
                                      % (src.path, src.name_line, name))
                self.results[name] = self._resolve(name)
            except ConfigError as exc:
                if self.strict:
                    raise
                failed[name] = str(exc)
        # a machine whose import was left out goes too
        changed = True
        while changed:
            changed = False
            for name, result in list(self.results.items()):
                lost = [s.name for s in result.chain if s.name not in self.results]
                if lost:
                    failed[name] = "%s:%d: machine '%s': imports machine '%s', which was left out" % (
                        result.parent[1].path, result.parent[1].line("import"), name, lost[0])
                    del self.results[name]
                    changed = True
        for name, message in failed.items():
            self.found.errors[name] = message
            src = self._own(name)[0]
            self.found._scoped.append((name, src.order, src.path, src.name_line,
                                       "%s; machine left out" % message))
        self._inherit_nulls()
        for name in names:
            if name in self.results:
                self.found.entries[name] = self._layers(self.results[name])
                self.found._ancestors[name] = self._ancestor_names(name)
        self.found.defaults = [self._default_layer(src) for src in self.defaults]
        self._unused_warnings(names)
        self.found._scoped.sort(key=lambda w: w[1:4])
        scoped, texts = [], []
        for scope, _order, _path, _line, text in self.found._scoped:
            if (scope, text) not in scoped:
                scoped.append((scope, text))
            if text not in texts:
                texts.append(text)
        self.found._scoped = scoped
        self.found.warnings = texts
        return self.found

    def _warn(self, scope, order, path, line, text):
        """A warning about ``scope`` ("default" or a machine); ``text`` follows "FILE:LINE: "."""
        self.found._scoped.append((scope, order, path, line, "%s:%d: %s" % (path, line, text)))

    def order(self, path):
        return self.file_order.get(path, 3)

    def _own(self, name):
        return [s for s in (self.main.get(name), self.user.get(name)) if s is not None]

    def _chain(self, name, seen, via=None):
        """(sources parents first, (parent, source of its import) or None) for machine ``name``."""
        own = self._own(name)
        if not own:
            src, _parent = via
            raise ConfigError("%s: %s: key 'import' names unknown machine '%s'"
                              % (src.at("import"), src.label, name))
        if name in seen:
            src, _parent = via
            raise ConfigError("%s: %s: 'import' loops: %s"
                              % (src.at("import"), src.label, " -> ".join(seen + [name])))
        parent = None
        for src in own:
            value = src.values.get("import")
            if value is None:
                continue
            if not isinstance(value, str) or not value:
                raise ConfigError("%s: %s: key 'import' must be a machine name, not %r"
                                  % (src.at("import"), src.label, value))
            parent = (value, src)
        if parent is None:
            return own, None
        chain, _ = self._chain(parent[0], seen + [name], (parent[1], parent[0]))
        return chain + own, parent

    def _ancestor_names(self, name):
        names = []
        result = self.results.get(name)
        while result is not None and result.parent is not None:
            names.append(result.parent[0])
            result = self.results.get(result.parent[0])
        return names

    # -- one machine -------------------------------------------------------------
    def _resolve(self, name):
        chain, parent = self._chain(name, [])
        result = _Result(name, chain, parent)
        full = self.defaults + chain
        merged = {}
        modules = {}
        for src in full:
            for key, value in src.values.items():
                if key == "modules":
                    if src.default and src.user:
                        continue      # FabSim3 resets modules from machines.yml's default block
                    if value is None:
                        continue
                    for sub, entries in _modules_map(value, src).items():
                        modules[sub] = (entries, src)
                    result.module_sources.append(src)
                else:
                    merged[key] = (value, src)
        own = self._own(name)
        resolver = _Machine(self, name, result, merged, own)
        resolver.resolve(modules)
        if parent is not None:
            result.out["extends"] = (parent[0], parent[1].path, parent[1].line("import"))
            result.used.add("import")
        return result

    # -- after every machine -----------------------------------------------------
    def _inherit_nulls(self):
        """A key an imported machine sets but this one does not must be reset, not inherited.

        FabSim3 merges settings before it reads the batch header, so a
        machine whose own header asks for no partition has none, whatever
        its import's header asked for.
        """
        for name, result in self.results.items():
            for ancestor in self._ancestor_names(name):
                other = self.results.get(ancestor)
                if other is None:
                    continue
                for key in ("partition", "account", "qos", "pe", "memory", "directives", "shell_setup"):
                    if key in result.out or key not in other.out or not other.out[key][0]:
                        continue
                    empty = [] if key in ("directives", "shell_setup") else None
                    path, line = result.header_key or (result.chain[-1].path, result.chain[-1].name_line)
                    result.out[key] = (empty, path, line)

    def _layers(self, result):
        """Split a machine's keys into one Layer per file, in FabSim3's file order."""
        by_path = {}
        for key, (value, path, line) in result.out.items():
            by_path.setdefault(path, {})[key] = (value, line)
        own = {src.path: src.name_line for src in self._own(result.name)}
        default_lines = {src.path: src.name_line for src in self.defaults}

        def rank(path):
            for src in self._own(result.name) + self.defaults:
                if src.path == path:
                    return (src.order, 0)
            return (9, self.file_order.get(path, 0))

        layers = []
        for path in sorted(by_path, key=rank):
            keys = by_path[path]
            layer = Layer({k: v for k, (v, _line) in keys.items()}, path,
                          {k: line for k, (_v, line) in keys.items()})
            layer.name_line = own.get(path) or default_lines.get(path) or 1
            layers.append(layer)
        return layers

    def _default_layer(self, src):
        values, lines = {}, {}
        for key, hkey, kind in (("username", "user", "text"), ("port", "port", "int"),
                                ("cores", "cores", "int"), ("corespernode", "corespernode", "int"),
                                ("max_job_name_chars", "max_job_name_chars", "int")):
            value = src.values.get(key)
            if value is None:
                continue
            values[hkey] = _typed(src, key, value, kind)
            lines[hkey] = src.line(key)
        layer = Layer(values, src.path, lines)
        layer.name_line = src.name_line
        return layer

    def _check_default(self, src):
        for key, kind in (("username", "text"), ("remote", "text"), ("port", "int"), ("cores", "int"),
                          ("corespernode", "int"), ("max_job_name_chars", "int"),
                          ("job_dispatch", "text"), ("batch_header", "text"), ("run_command", "text"),
                          ("home_path_template", "text"), ("runtime_path_template", "text"),
                          ("work_path_template", "text"), ("fabric_dir", "text")):
            if src.values.get(key) is not None:
                _typed(src, key, src.values[key], kind)
        if src.values.get("modules") is not None:
            _modules_map(src.values["modules"], src)
        if src.values.get("run_prefix_commands") is not None:
            _str_list(src, "run_prefix_commands", src.values["run_prefix_commands"])

    def _unused_warnings(self, names):
        consumed = set()
        live = set()
        for result in self.results.values():
            full = self.defaults + result.chain
            for src in full:
                live.add(id(src))
                for key in src.values:
                    if key != "modules" and key in result.used:
                        consumed.add((id(src), key))
            for src in result.module_sources:
                consumed.add((id(src), "modules"))
            self.found._scoped += result.warnings
        sources = list(self.defaults) + [s for n in names for s in self._own(n)]
        for src in sources:
            if id(src) not in live:
                continue
            for key, value in src.values.items():
                if (id(src), key) in consumed or key in QUIET or _empty(value):
                    continue
                if key == "modules" and src.default and src.user:
                    why = "FabSim3 takes the default modules from machines.yml's default block only"
                else:
                    why = _why(key)
                self._warn("default" if src.default else src.name, src.order, src.path, src.line(key),
                           "%s: key '%s' ignored (%s)" % (src.label, key, why))


class _Machine:
    """The mapping of one machine's merged FabSim3 settings onto hpcdo keys."""

    def __init__(self, loader, name, result, merged, own):
        self.loader = loader
        self.name = name
        self.result = result
        self.merged = merged
        self.anchor = own[0]
        self.label = "machine '%s'" % name
        self.index = {id(src): i for i, src in enumerate(loader.defaults + result.chain)}

    # -- reading merged settings -----------------------------------------------
    def get(self, key, kind="text"):
        """(value, source) of a FabSim3 key, its type checked; (None, None) if unset."""
        value, src = self.merged.get(key, (None, None))
        if value is None:
            return None, src
        return _typed(src, key, value, kind), src

    def put(self, hkey, value, src, key):
        """Set hpcdo key ``hkey``, at the line of FabSim3 ``key`` in ``src``."""
        if src is None:
            self.result.out[hkey] = (value, self.anchor.path, self.anchor.name_line)
        else:
            self.result.out[hkey] = (value, src.path, src.line(key))

    def use(self, *keys):
        self.result.used.update(keys)

    def warn(self, owner, path, line, text):
        """A warning about what ``owner`` (the FabSim3 block that holds the key) says."""
        scope = "default" if owner.default else owner.name
        self.result.warnings.append((scope, self.loader.order(path), path, line,
                                     "%s:%d: %s: %s" % (path, line, owner.label, text)))

    def context(self):
        values = {}
        for key, (value, _src) in self.merged.items():
            if isinstance(value, (str, int, float)) and value is not None:
                values[key] = str(value)
        values["machine_name"] = self.name
        return values

    # -- the mapping ---------------------------------------------------------------
    def resolve(self, modules):
        self.ctx = self.context()
        self.sources = {key: src for key, (_v, src) in self.merged.items()}
        self.connection()
        self.paths()
        self.command()
        self.module_list(modules)
        self.setup()
        self.batch()

    def connection(self):
        remote, rsrc = self.get("remote")
        self.use("remote")
        host = remote.strip() if remote else None
        if host == "localhost":
            host = None
        self.put("host", host, rsrc, "remote")
        user, usrc = self.get("username")
        if user is not None:
            self.use("username")
            if re.match(r"^<.*>$", user):
                self.warn(usrc, usrc.path, usrc.line("username"),
                          "key 'username' is still the placeholder %r" % user)
            self.put("user", user, usrc, "username")
        for key in ("port", "cores", "corespernode", "max_job_name_chars"):
            value, src = self.get(key, "int")
            if value is not None:
                self.use(key)
                self.put(key, value, src, key)

    def paths(self):
        """remote_root: FabSim3's work_path, filled in the way FabSim3 fills it."""
        home_text, home_src = self.get("home_path_template")
        if home_text is None:
            raise ConfigError("%s:%d: %s: key 'home_path_template' is not set, so the work root "
                              "cannot be known" % (self.anchor.path, self.anchor.name_line, self.label))
        found = {}                    # home_path, runtime_path -> (value, origin)

        def expand(key, fallback):
            text, src = self.get(key)
            if text is None:
                text, src, key = fallback, home_src, "home_path_template"
            self.use(key)
            # the value's origin: the template set last among those it is made of
            origin = [(self.index.get(id(src), -1), src, key)]

            def lookup(var, at_start):
                if var in found:
                    value, other = found[var]
                    if other[0] > origin[0][0]:
                        origin[0] = other
                    return value
                if var in self.ctx:
                    self.use(var)
                    return self.ctx[var]
                if at_start and SHELL_VAR_RE.match(var):
                    return None       # left for the machine's shell, e.g. $HOME or $WORK
                raise self.unknown(src, key, var, text)
            return _substitute(text, lookup), origin[0]

        found["home_path"] = expand("home_path_template", None)
        found["runtime_path"] = expand("runtime_path_template", "$home_path")
        work = "$runtime_path/$fabric_dir" if self.ctx.get("fabric_dir") else "$runtime_path"
        root, (_index, src, key) = expand("work_path_template", work)
        root = root.rstrip("/") or root
        if not root:
            raise ConfigError("%s: %s: key '%s' gives an empty work path" % (src.at(key), self.label, key))
        self.put("remote_root", root, src, key)
        # later templates (run_prefix_commands, headers) may use the paths, as in FabSim3
        self.ctx.update(home_path=found["home_path"][0], runtime_path=found["runtime_path"][0],
                        work_path=root)

    def command(self):
        text, src = self.get("run_command")
        if text is None:
            return
        self.use("run_command")
        self.put("run_command", self.run_command(text, src, "run_command", 0), src, "run_command")

    def run_command(self, text, src, key, depth):
        """FabSim3's run_command as hpcdo's: its own $vars kept, the machine's filled in."""
        if depth > 8:
            raise ConfigError("%s: %s: key '%s' refers to itself through $variables"
                              % (src.at(key), self.label, key))

        def lookup(var, _at_start):
            if var in RUN_VARIABLES:
                return None
            if var in self.ctx and var not in JOB_TIME:
                self.use(var)
                vsrc = self.sources.get(var, src)
                return self.run_command(self.ctx[var], vsrc, var, depth + 1)
            if var in JOB_TIME:
                raise ConfigError("%s: %s: key '%s' uses $%s, which FabSim3 fills in per job; hpcdo "
                                  "fills in only $cores, $tasks, $threads, $nodes, $cpn and $corespernode"
                                  % (src.at(key), self.label, key, var))
            raise self.unknown(src, key, var, text)
        return _substitute(text, lookup, keep_escapes=True)

    def module_list(self, modules):
        if not self.result.module_sources:
            return
        lines = []
        for sub, verb in (("all", ""), ("nonexistent", ""), ("unloaded", "unload "), ("loaded", "load ")):
            entries, _src = modules.get(sub, ([], None))
            lines += [verb + entry for entry in entries]
        for sub, (entries, src) in sorted(modules.items()):
            if sub in ("all", "nonexistent", "unloaded", "loaded") or not entries:
                continue
            self.warn(src, src.path, src.line("modules"),
                      "key 'modules' entry '%s' ignored (FabSim3 loads those only when it runs its "
                      "script '%s'; put them in the recipe's modules)" % (sub, sub))
        last = self.result.module_sources[-1]
        self.put("modules", lines, last, "modules")

    def setup(self):
        value, src = self.merged.get("run_prefix_commands", (None, None))
        if value is None:
            return
        commands = _str_list(src, "run_prefix_commands", value)
        self.use("run_prefix_commands")
        if not commands:
            return
        out = []
        for text in commands:
            def lookup(var, _at_start, text=text):
                if var in self.ctx and var not in JOB_TIME:
                    self.use(var)
                    return self.ctx[var]
                if var in JOB_TIME:
                    raise ConfigError("%s: %s: key 'run_prefix_commands' uses $%s, which FabSim3 fills "
                                      "in per job" % (src.at("run_prefix_commands"), self.label, var))
                return None           # a shell variable, left for the machine
            out.append(_substitute(text, lookup))
        self.put("shell_setup", out, src, "run_prefix_commands")

    # -- scheduler, batch header, directives --------------------------------------
    def batch(self):
        dispatch, dsrc = self.get("job_dispatch")
        self.use("job_dispatch")
        dispatch = dispatch or ""
        words = [w for w in dispatch.split() if w != "<"]
        command = os.path.basename(words[0]) if words else ""
        header, hsrc = self.get("batch_header")
        if header:
            self.use("batch_header")
        lines, hpath = self.read_header(header) if header else (None, None)
        if command == "":
            scheduler = "local"
        elif command == "qsub":
            scheduler = self.qsub_kind(header, hsrc, lines, dsrc)
        elif command in DISPATCH:
            scheduler = DISPATCH[command]
        else:
            raise ConfigError("%s: %s: key 'job_dispatch' runs '%s', which is not a batch system hpcdo "
                              "drives (sbatch, qsub, bsub, yhbatch, or empty for none)"
                              % (dsrc.at("job_dispatch"), self.label, command))
        self.put("scheduler", scheduler, dsrc, "job_dispatch")
        if hsrc is not None:
            self.result.header_key = (hsrc.path, hsrc.line("batch_header"))
        elif dsrc is not None:
            self.result.header_key = (dsrc.path, dsrc.line("job_dispatch"))
        if scheduler == "local":
            return
        self.keys = {}
        self.directives = []          # (text, file, line)
        if lines is not None:
            self.from_header(scheduler, header, hpath, lines, hsrc)
        else:
            if header:
                self.warn(hsrc, hsrc.path, hsrc.line("batch_header"),
                          "key 'batch_header' '%s' not read (no FabSim3 templates directory holds it; "
                          "looked in %s): only the scheduler is taken from it, and budget, "
                          "partition_name, queue and qos_name map directly"
                          % (header, ", ".join(self.template_dirs())))
            self.direct_keys()
        for option in _option_groups(words[1:]):
            self.directive(scheduler, option, dsrc.path, dsrc.line("job_dispatch"),
                           "key 'job_dispatch'", dsrc, dispatch=True)
        for hkey, (value, path, line) in self.keys.items():
            self.result.out[hkey] = (value, path, line)
        if self.directives:
            _text, path, line = self.directives[0]
            self.result.out["directives"] = ([d for d, _p, _l in self.directives], path, line)

    def template_dirs(self):
        base = os.path.dirname(os.path.abspath(self.loader.path))
        dirs = [os.path.join(base, "templates")]
        value, _src = self.merged.get("local_templates_path", (None, None))
        if value is not None:
            self.use("local_templates_path")
            fabsim_root = os.path.dirname(base)
            known = {"fabsim_root": fabsim_root, "localroot": os.path.dirname(fabsim_root)}
            for entry in value if isinstance(value, list) else [value]:
                if not isinstance(entry, str):
                    continue
                try:
                    path = string.Template(entry).substitute(known)
                except (KeyError, ValueError):
                    continue
                path = os.path.abspath(os.path.expanduser(path))
                if path not in dirs:
                    dirs.append(path)
        return dirs

    def read_header(self, name):
        for directory in self.template_dirs():
            path = os.path.join(directory, name)
            if os.path.isfile(path):
                try:
                    with open(path, encoding="utf-8") as fh:
                        lines = fh.read().splitlines()
                except (OSError, UnicodeDecodeError) as exc:
                    raise ConfigError("%s: cannot read batch header: %s" % (path, exc))
                self.loader.file_order.setdefault(path, 3)
                return lines, path
        return None, None

    def qsub_kind(self, header, hsrc, lines, dsrc):
        """Grid Engine or PBS, both submitted with qsub: the header's directives tell, else its name."""
        if lines is not None:
            text = [line.strip() for line in lines]
            if any(t.startswith("#$") for t in text):
                return "sge"
            if any(t.startswith("#PBS") for t in text):
                return "torque" if "torque" in (header or "").lower() else "pbs"
        name = (header or "").lower()
        if any(hint in name for hint in SGE_HINTS):
            return "sge"
        if "torque" in name:
            return "torque"
        if "pbs" in name:
            return "pbs"
        src, key = (hsrc, "batch_header") if hsrc is not None else (dsrc, "job_dispatch")
        self.warn(src, src.path, src.line(key),
                  "key '%s' %r does not tell Grid Engine from PBS (both submit with qsub): "
                  "assumed sge; set 'scheduler' for this machine in machines/machines_user.yml "
                  "if it is PBS" % (key, header or "qsub"))
        return "sge"

    def direct_keys(self):
        """No header to read: FabSim3's usual header variables map straight onto hpcdo's keys."""
        for hkey, keys in (("account", ("budget",)), ("partition", ("partition_name", "queue")),
                           ("qos", ("qos_name",))):
            for key in keys:
                value, src = self.get(key, "word")
                if value is not None:
                    self.use(key)
                    self.keys[hkey] = (value, src.path, src.line(key))
                    break
        # memory is left out: how a header uses it (per node, per slot, per job) is the header's

    def from_header(self, scheduler, header, path, lines, hsrc):
        prefix = PREFIXES[scheduler]
        what = "batch_header '%s'" % header
        for number, raw in enumerate(lines, 1):
            line = raw.strip()
            if line.startswith("#$dollar"):
                line = "#$" + line[len("#$dollar"):]        # FabSim3's old $dollar, a literal '$'
            if not line:
                continue
            if number == 1 and line.startswith("#!"):
                if line.split() != ["#!/bin/bash"]:
                    self.warn(hsrc, path, number, "%s: first line %r not carried over (hpcdo's jobscripts "
                              "start with #!/bin/bash; if jobs lack the 'module' command, set "
                              "module_init)" % (what, line))
                continue
            if line.startswith(prefix) and line[len(prefix):len(prefix) + 1] in ("", " ", "\t", "-"):
                body = line[len(prefix):].strip()
                if body:
                    self.directive(scheduler, body, path, number, what, hsrc)
                continue
            if line.startswith("#"):
                continue
            self.warn(hsrc, path, number, "%s: line %r not carried over (hpcdo takes only a header's "
                      "directives; put such settings in env: or a jobscript template)" % (what, line))

    def directive(self, scheduler, body, path, number, what, src, dispatch=False):
        """One scheduler option from a header line or job_dispatch: a key, a directive, or dropped."""
        match = OPTION_RE.match(body)
        option, value = (match.group(1), (match.group(2) or "").strip()) if match else (None, body)
        action = OPTIONS.get(scheduler, {}).get(option)
        if scheduler == "lsf" and option == "-R" and "span[" in value:
            action = DROP             # hpcdo writes span[ptile=...] from corespernode
        if action == DROP:
            return
        if action == RES:
            kept = []
            for resource in [r for r in value.split(",") if r.strip()]:
                rname = resource.split("=", 1)[0].strip()
                raction = RESOURCES.get(scheduler, {}).get(rname)
                if raction == DROP:
                    continue
                filled = self.fill(resource.strip(), path, number, what, body, src, dispatch)
                if filled is None:
                    continue
                text, origin = filled
                if raction == "memory":
                    memory = _memory(text.split("=", 1)[1] if "=" in text else "")
                    if memory is not None:
                        self.keys["memory"] = (memory,) + (origin or (path, number))
                        continue
                kept.append(text)
            if kept:
                self.directives.append(("%s %s" % (option, ",".join(kept)), path, number))
            return
        if action is not None:
            relevant = value.split()[0] if action == "pe" and value else value
            filled = self.fill(relevant, path, number, what, body, src, dispatch)
            if filled is None:
                return
            text, origin = filled
            self.keys[action] = (text,) + (origin or (path, number))
            return
        filled = self.fill(body, path, number, what, body, src, dispatch)
        if filled is not None:
            self.directives.append((filled[0], path, number))

    def fill(self, text, path, number, what, body, src, dispatch):
        """``text`` with the machine's $vars filled in: (text, origin of the first var or None).

        None, with a warning, if it needs a value FabSim3 knows only per job.
        """
        origin = []
        late = []

        def lookup(var, _at_start):
            if var == "dollar":
                return "$"
            if var in JOB_TIME:
                late.append(var)
                return None
            if var in self.ctx:
                self.use(var)
                vsrc = self.sources.get(var)
                if vsrc is not None and not origin:
                    origin.append((vsrc.path, vsrc.line(var)))
                return self.ctx[var]
            if dispatch:
                raise self.unknown(src, "job_dispatch", var, body)
            raise ConfigError("%s:%d: %s: %s directive %r: unknown variable $%s (not set for this "
                              "machine in machines.yml or machines_user.yml)"
                              % (path, number, self.label, what, body, var))
        filled = _substitute(text, lookup)
        if late:
            self.warn(src, path, number, "%s: directive %r ignored (it uses $%s, which FabSim3 fills in per "
                      "job; hpcdo's directives are fixed text)" % (what, body, late[0]))
            return None
        return filled, (origin[0] if origin else None)

    def unknown(self, src, key, var, text):
        hint = " (set username in machines_user.yml)" if var == "username" else \
            " (not set for this machine in machines.yml or machines_user.yml)"
        return ConfigError("%s: %s: key '%s' %r: unknown variable $%s%s"
                           % (src.at(key), self.label, key, text, var, hint))


# -- small helpers ----------------------------------------------------------------

def _substitute(text, lookup, keep_escapes=False):
    """Fill ``$var`` and ``${var}`` in ``text`` as string.Template does.

    ``lookup(name, at_start)`` returns the replacement, or None to keep the
    reference as written.  ``$$`` stays ``$$`` with ``keep_escapes`` (the
    result is a template again), else becomes ``$``.
    """
    def replace(match):
        if match.group("escaped") is not None:
            return match.group(0) if keep_escapes else "$"
        name = match.group("named") or match.group("braced")
        if name is None:
            return match.group(0)
        value = lookup(name, match.start() == 0)
        return match.group(0) if value is None else value
    return string.Template.pattern.sub(replace, text)


def _typed(src, key, value, kind):
    """A FabSim3 value as hpcdo wants it, or a ConfigError at its line."""
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        if isinstance(value, str) and value.strip().isdigit() and int(value) > 0:
            return int(value)            # FabSim3 takes "22" as well as 22
        wants = "a positive integer"
    elif kind == "word":
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        wants = "a string"
    else:
        if isinstance(value, str):
            return value
        if kind == "text" and key == "username" and isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        wants = "a string"
    raise ConfigError("%s: %s: key '%s' must be %s, not %r" % (src.at(key), src.label, key, wants, value))


def _str_list(src, key, value):
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError("%s: %s: key '%s' must be a list of strings, not %r"
                      % (src.at(key), src.label, key, value))


def _modules_map(value, src):
    """FabSim3 modules, a list (older files) or {all|loaded|unloaded|<script>: [...]}."""
    if isinstance(value, list):
        value = {"all": value}
    if not isinstance(value, dict):
        raise ConfigError("%s: %s: key 'modules' must be a list or a mapping of lists, not %r"
                          % (src.at("modules"), src.label, value))
    out = {}
    for sub, entries in value.items():
        if entries is None:
            entries = []
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise ConfigError("%s: %s: key 'modules' entry '%s' must be a list of strings, not %r"
                              % (src.at("modules"), src.label, sub, entries))
        out[str(sub)] = list(entries)
    return out


def _option_groups(words):
    """['-q', 'long', '--x=1'] -> ['-q long', '--x=1']: each option with the words after it."""
    groups = []
    for word in words:
        if word.startswith("-") or not groups:
            groups.append(word)
        else:
            groups[-1] += " " + word
    return groups


def _memory(text):
    """An hpcdo memory amount (4G, 500M) from a header's, or None (a bare number is bytes there)."""
    text = text.strip()
    return text if MEMORY_RE.match(text) else None


def _empty(value):
    return value is None or value is False or value == "" or value == [] or value == {}


def _why(key):
    if key in WHY:
        return WHY[key]
    if key.startswith(_PILOT):
        return _PILOT_WHY
    return _PLUGIN_WHY
