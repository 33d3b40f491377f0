"""The key mapping: one FabSim3 machine's merged settings as hpcdo keys.

:class:`Mapping` turns the settings FabSim3 would merge for one machine
into hpcdo keys, each with the file and line it came from: the connection
(remote, username, port, cores ...), ``remote_root`` from FabSim3's path
templates, ``run_command``, ``modules`` and ``shell_setup``; the scheduler
and batch directives come from :mod:`.headers`.  :func:`left_out` says,
for every FabSim3 key no machine used, why hpcdo leaves it out.
"""

import re

from .. import ConfigError
from ..launchers import VARIABLES
from ..layer import Layer
from ..schema import ROOT_REFUSED
from .headers import BatchHeader
from .values import JOB_TIME, is_empty, modules_map, str_list, substitute, typed

#: run_command variables hpcdo fills per run (the launchers' own)
RUN_VARIABLES = frozenset(VARIABLES)

SHELL_VAR_RE = re.compile(r"^[A-Z_][A-Z0-9_]*\Z")

#: what of the machine's shell a work root may use: its variables, as $NAME or ${NAME}, which
#: hpcdo's remote_root expands on the machine (hpcdo.remote.scripts.root_expr) and nothing else
ROOT_VAR_RE = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*\})")

#: FabSim3's $memory where a machine sets none
DEFAULT_MEMORY = "2GB"

#: the two kinds of line about a machine: a warning (printed on each call with the
#: machine: its jobs differ from what FabSim3 would submit) and a note (for
#: ``doit machine=X check``: a FabSim3 setting that changes nothing in a job)
WARN, NOTE = "warn", "note"

#: keys whose being left out changes how the machine is reached, when set at all
WARN_ALWAYS = frozenset(("manual_gsissh", "manual_sshpass", "sshpass", "ssh_monsoon_mode", "remote_compute"))
#: keys whose being left out changes a job's layout, unless they say what hpcdo does anyway (1)
WARN_UNLESS_ONE = frozenset(("cpuspertask", "taskspernode"))


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


def why(key):
    """Why hpcdo leaves FabSim3 key ``key`` out."""
    if key in WHY:
        return WHY[key]
    if key.startswith(_PILOT):
        return _PILOT_WHY
    return _PLUGIN_WHY


class Mapping:
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
        return typed(src, key, value, kind), src

    def put(self, hkey, value, src, key):
        """Set hpcdo key ``hkey``, at the line of FabSim3 ``key`` in ``src``."""
        if src is None:
            self.result.out[hkey] = (value, self.anchor.path, self.anchor.name_line)
        else:
            self.result.out[hkey] = (value, src.path, src.line(key))

    def use(self, *keys):
        self.result.used.update(keys)

    def warn(self, owner, path, line, text, level=WARN):
        """A line about what ``owner`` (the FabSim3 block that holds the key) says, for this machine."""
        self.result.warnings.append((self.name, self.loader.order(path), path, line,
                                     "%s:%d: %s: %s" % (path, line, owner.label, text), level))

    def context(self):
        values = {}
        for key, (value, _src) in self.merged.items():
            if isinstance(value, (str, int, float)) and value is not None:
                values[key] = str(value)
        values["machine_name"] = self.name
        # FabSim3 gives a job 2GB when the machine sets no memory (fab.py, calc_total_mem)
        values.setdefault("memory", DEFAULT_MEMORY)
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
        BatchHeader(self).resolve()

    def connection(self):
        remote, rsrc = self.get("remote")
        self.use("remote")
        host = remote.strip() if remote else None
        if host == "localhost":
            host = None
        self.put("host", host, rsrc, "remote")
        user, usrc = self.get("username")
        if user is not None and host is None:
            # FabSim3 runs a "remote: localhost" machine as this computer's user; hpcdo
            # runs it with no login at all (a user without a host means nothing)
            self.use("username")
            if self.name != "localhost":         # FabSim3's own localhost is never imported
                self.warn(usrc, usrc.path, usrc.line("username"),
                          "key 'username' is not used: remote 'localhost' runs on this computer, as you",
                          level=NOTE)
        elif user is not None:
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
        """remote_root: FabSim3's work_path, filled in the way FabSim3 fills it.

        A shell variable ($SCRATCH, ${SCRATCH}) is left for the machine, anywhere in the path,
        as FabSim3 leaves it; remote_root expands it there.  Anything else the machine's shell
        would work out ($(...), ${X:-...}, `...`) is an error, at the template it is in.
        """
        home_text, home_src = self.get("home_path_template")
        if home_text is None:
            raise ConfigError("%s:%d: %s: key 'home_path_template' is not set, so the work root "
                              "cannot be known" % (self.anchor.path, self.anchor.name_line, self.label))
        found = {}                    # home_path, runtime_path -> (value, origin, problem or None)

        def expand(key, fallback):
            text, src = self.get(key)
            if text is None:
                text, src, key = fallback, home_src, "home_path_template"
            self.use(key)
            # the value's origin: the template set last among those it is made of
            origin = [(self.index.get(id(src), -1), src, key)]
            problems = []             # the first thing the shell would run, from the templates used first

            def lookup(var, at_start, own=False):
                if var in found:
                    value, other, problem = found[var]
                    if problem and not problems:
                        problems.append(problem)
                    if other[0] > origin[0][0]:
                        origin[0] = other
                    return "" if own else value
                if var in self.ctx:
                    self.use(var)
                    return self.ctx[var]
                if SHELL_VAR_RE.match(var):
                    return None       # left for the machine's shell, e.g. $HOME, $WORK, /lustre/$SCRATCH
                raise self.unknown(src, key, var, text)
            value = substitute(text, lookup)
            # this template's own text and the settings it fills in, without the paths it builds on
            mine = root_problem(substitute(text, lambda var, at_start: lookup(var, at_start, own=True)))
            if mine and not problems:
                problems.append("%s: %s: key '%s' gives a work path with %s" % (src.at(key), self.label, key, mine))
            return value, origin[0], (problems[0] if problems else None)

        found["home_path"] = expand("home_path_template", None)
        found["runtime_path"] = expand("runtime_path_template", "$home_path")
        work = "$runtime_path/$fabric_dir" if self.ctx.get("fabric_dir") else "$runtime_path"
        root, (_index, src, key), problem = expand("work_path_template", work)
        root = root.rstrip("/") or root
        if not root:
            raise ConfigError("%s: %s: key '%s' gives an empty work path" % (src.at(key), self.label, key))
        if problem:
            raise ConfigError(problem)
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
        return substitute(text, lookup, keep_escapes=True)

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
                      "script '%s'; put them in the recipe's modules)" % (sub, sub), NOTE)
        last = self.result.module_sources[-1]
        self.put("modules", lines, last, "modules")

    def setup(self):
        value, src = self.merged.get("run_prefix_commands", (None, None))
        if value is None:
            return
        commands = str_list(src, "run_prefix_commands", value)
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
            out.append(substitute(text, lookup))
        self.put("shell_setup", out, src, "run_prefix_commands")

    def unknown(self, src, key, var, text):
        hint = " (set username in machines_user.yml)" if var == "username" else \
            " (not set for this machine in machines.yml or machines_user.yml)"
        return ConfigError("%s: %s: key '%s' %r: unknown variable $%s%s"
                           % (src.at(key), self.label, key, text, var, hint))


def root_problem(path):
    """What in work path ``path`` the machine's shell would do more with than expand a $NAME, or None."""
    literal = ROOT_VAR_RE.sub("", path)
    if "$" in literal or "`" in literal:
        what = "a '$' that is not $NAME or ${NAME}" if "$" in literal else "a '`'"
        return ("%s: hpcdo expands the machine's variables in a work path, as $NAME or ${NAME}, and runs "
                "nothing in it ($(...), $((...)), ${X:-...} or `...`)" % what)
    bad = ROOT_REFUSED.search(literal)
    if bad:
        char = bad.group(0)
        what = "a control character" if char < " " or char == "\x7f" else "a '%s'" % char
        return "%s in it, which build tools cannot use in a directory name" % what
    return None


def default_layer(src):
    """The keys of a FabSim3 ``default:`` block that map one to one, as a Layer."""
    values, lines = {}, {}
    for key, hkey, kind in (("username", "user", "text"), ("port", "port", "int"),
                            ("cores", "cores", "int"), ("corespernode", "corespernode", "int"),
                            ("max_job_name_chars", "max_job_name_chars", "int")):
        value = src.values.get(key)
        if value is None:
            continue
        values[hkey] = typed(src, key, value, kind)
        lines[hkey] = src.line(key)
    return Layer(values, src.path, lines, src.name_line)

def check_default(src):
    """Raise a ConfigError for a key of a ``default:`` block with a wrong type."""
    for key, kind in (("username", "text"), ("remote", "text"), ("port", "int"), ("cores", "int"),
                      ("corespernode", "int"), ("max_job_name_chars", "int"),
                      ("job_dispatch", "text"), ("batch_header", "text"), ("run_command", "text"),
                      ("home_path_template", "text"), ("runtime_path_template", "text"),
                      ("work_path_template", "text"), ("fabric_dir", "text")):
        if src.values.get(key) is not None:
            typed(src, key, src.values[key], kind)
    if src.values.get("modules") is not None:
        modules_map(src.values["modules"], src)
    if src.values.get("run_prefix_commands") is not None:
        str_list(src, "run_prefix_commands", src.values["run_prefix_commands"])


def left_out(defaults, results):
    """A line (machine, file order, file, line, text, level) for each key a machine did not use, with why.

    ``results``: each machine's resolution, whose own lines come first.  A
    key of a ``default:`` block or an imported machine is said about every
    machine that inherits it, and about no other.
    """
    lines = []
    for result in results:
        lines += result.warnings
        used = {id(src) for src in result.module_sources}
        last = {}                     # key -> the block whose value the machine has (the last)
        for src in defaults + result.chain:
            for key in src.values:
                last[key] = src
        for src in defaults + result.chain:
            for key, value in src.values.items():
                if key == "modules" and id(src) in used:
                    continue
                if key != "modules" and last[key] is not src:
                    continue          # another block's value replaced this one
                if (key != "modules" and key in result.used) or key in QUIET or is_empty(value):
                    continue
                if key == "modules" and src.default and src.user:
                    reason = "FabSim3 takes the default modules from machines.yml's default block only"
                else:
                    reason = why(key)
                line = src.line(key)
                lines.append((result.name, src.order, src.path, line,
                              "%s:%d: %s: key '%s' ignored (%s)" % (src.path, line, src.label, key, reason),
                              level(key, value)))
    return lines


def level(key, value):
    """WARN if leaving FabSim3 key ``key`` out changes a job or the login, else NOTE."""
    if key in WARN_ALWAYS:
        return WARN
    if key in WARN_UNLESS_ONE and str(value).strip() != "1":
        return WARN
    return NOTE
