"""Batch headers: the scheduler, keys and directives of one FabSim3 machine.

FabSim3 submits with ``job_dispatch`` (``sbatch``, ``qsub``, ``bsub``,
``yhbatch``, or nothing) and writes the directives of a ``batch_header``
template (``templates/<name>`` beside machines.yml, or under
``local_templates_path``).  :class:`BatchHeader` reads both for one machine:
the scheduler from the command (and, for qsub, the header's directives or
its name), hpcdo's ``partition``, ``account``, ``qos``, ``pe`` and
``memory`` from the options that mean them, the options hpcdo writes itself
for every job dropped, and the rest kept as ``directives``.  Without a
header, FabSim3's usual header variables (budget, partition_name, queue,
qos_name) map straight onto hpcdo's keys.
"""

import os
import re
import string

from .. import ConfigError
from ..schedulers import SCHEDULERS
from ..schema import MEMORY_RE
from .exports import EXPORT_RE, assignment_word, carry_exports
from .values import JOB_TIME, substitute

#: the scheduler each submit command names, where only one has it (qsub: Grid Engine or PBS)
_BY_COMMAND = {}
for _cls in SCHEDULERS.values():
    if _cls.submit_command:
        _BY_COMMAND.setdefault(_cls.submit_command, set()).add(_cls.name)
DISPATCH = {command: min(names) for command, names in _BY_COMMAND.items() if len(names) == 1}

#: the directive prefix of each scheduler's jobscripts
PREFIXES = {cls.name: cls.directive for cls in SCHEDULERS.values() if cls.directive}

DROP = "drop"           # hpcdo writes this option itself for every job
RES = "resources"       # a comma list of name=value resources, each judged on its own

_SLURM = {
    "-J": DROP, "--job-name": DROP, "-n": DROP, "--ntasks": DROP, "-N": DROP, "--nodes": DROP,
    "-t": DROP, "--time": DROP, "-o": DROP, "--output": DROP, "-e": DROP, "--error": DROP,
    "-D": DROP, "--chdir": DROP, "--workdir": DROP,
    # hpcdo writes the run's tasks per node and cpus per task (threads); a header's
    # fixed line would come later and win over them
    "--ntasks-per-node": DROP, "--tasks-per-node": DROP, "--cpus-per-task": DROP, "-c": DROP,
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

class BatchHeader:
    """The batch part of one machine's mapping (a :class:`~.mapping.Mapping`), written into its result."""

    def __init__(self, machine):
        self.machine = machine
        self.result = machine.result
        self.label = machine.label
        self.ctx = machine.ctx
        self.sources = machine.sources
        self.get, self.put, self.use = machine.get, machine.put, machine.use
        self.warn, self.unknown = machine.warn, machine.unknown
        self.keys = {}                # hpcdo key -> (value, file, line)
        self.directives = []          # (text, file, line)
        self.env = {}                 # export lines with a plain value: name -> (value, file, line)
        self.assignments = []         # export lines the job's shell must expand: (NAME=text, file, line)

    def resolve(self):
        """Set the machine's scheduler and the keys and directives its header and job_dispatch give."""
        dispatch, dsrc = self.get("job_dispatch")
        self.use("job_dispatch")
        dispatch = dispatch or ""
        words = [w for w in dispatch.split() if w != "<"]
        command = os.path.basename(words[0]) if words else ""
        header, hsrc = self.get("batch_header")
        if header:
            self.use("batch_header")
        lines, hpath = read_header(self.machine, header) if header else (None, None)
        if command == "":
            scheduler = "local"
        elif command == "qsub":
            scheduler = self.qsub_kind(header, hsrc, lines, dsrc)
        elif command in DISPATCH:
            scheduler = DISPATCH[command]
        else:
            raise ConfigError("%s: %s: key 'job_dispatch' runs '%s', which is not a batch system hpcdo "
                              "drives (%s, or empty for none)"
                              % (dsrc.at("job_dispatch"), self.label, command, ", ".join(sorted(_BY_COMMAND))))
        self.put("scheduler", scheduler, dsrc, "job_dispatch")
        if hsrc is not None:
            self.result.header_key = (hsrc.path, hsrc.line("batch_header"))
        elif dsrc is not None:
            self.result.header_key = (dsrc.path, dsrc.line("job_dispatch"))
        if scheduler == "local":
            return
        if lines is not None:
            self.from_header(scheduler, header, hpath, lines, hsrc)
        else:
            if header:
                self.warn(hsrc, hsrc.path, hsrc.line("batch_header"),
                          "key 'batch_header' '%s' not read (no FabSim3 templates directory holds it; "
                          "looked in %s): only the scheduler is taken from it, and budget, "
                          "partition_name, queue and qos_name map directly"
                          % (header, ", ".join(template_dirs(self.machine))))
            self.direct_keys()
        for option in option_groups(words[1:]):
            self.directive(scheduler, option, dsrc.path, dsrc.line("job_dispatch"),
                           "key 'job_dispatch'", dsrc, dispatch=True)
        for hkey, (value, path, line) in self.keys.items():
            self.result.out[hkey] = (value, path, line)
        if self.directives:
            _text, path, line = self.directives[0]
            self.result.out["directives"] = ([d for d, _p, _l in self.directives], path, line)
        carry_exports(self.result, self.env, self.assignments)

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
            export = EXPORT_RE.match(line)
            if export:
                self.export(export.group(1), export.group(2), path, number, what, hsrc)
                continue
            self.warn(hsrc, path, number, "%s: line %r not carried over (hpcdo takes a header's directives "
                      "and export lines; put other shell in a jobscript template, see jobscript:)"
                      % (what, line))

    def export(self, name, text, path, number, what, src):
        """One ``export NAME=VALUE`` line of the header, filled in as FabSim3 fills it."""
        filled = self.fill(text, path, number, what, "export %s=%s" % (name, text), src, False, shell=True)
        if filled is None:
            return
        word = assignment_word(name, filled[0])
        if word is None:
            self.warn(src, path, number, "%s: export %s not carried over (its value is not one shell word, "
                      "or runs a command: hpcdo carries NAME=word, where the word may use $NAME, ${NAME} "
                      "and $((...)); put other shell in a jobscript template, see jobscript:)" % (what, name))
        elif word[1] is not None:
            self.env[name] = (word[1], path, number)
        else:
            self.assignments.append((word[0], path, number))

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

    def fill(self, text, path, number, what, body, src, dispatch, shell=False):
        """``text`` with the machine's $vars filled in: (text, origin of the first var or None).

        None, with a warning, if it needs a value FabSim3 knows only per job.  With ``shell``
        (a line the job's shell runs), a $var the machine does not set is the shell's, left
        as written, as FabSim3 leaves it.
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
            if shell:
                return None
            if dispatch:
                raise self.unknown(src, "job_dispatch", var, body)
            raise ConfigError("%s:%d: %s: %s directive %r: unknown variable $%s (not set for this "
                              "machine in machines.yml or machines_user.yml)"
                              % (path, number, self.label, what, body, var))
        filled = substitute(text, lookup)
        if late:
            kind = "line" if shell else "directive"
            self.warn(src, path, number, "%s: %s %r ignored (it uses $%s, which FabSim3 fills in per "
                      "job; hpcdo's %ss are fixed text)" % (what, kind, body, late[0], kind))
            return None
        return filled, (origin[0] if origin else None)


def template_dirs(machine):
    """Where FabSim3 looks for batch header templates for ``machine`` (a :class:`~.mapping.Mapping`)."""
    base = os.path.dirname(os.path.abspath(machine.loader.path))
    dirs = [os.path.join(base, "templates")]
    value, _src = machine.merged.get("local_templates_path", (None, None))
    if value is not None:
        machine.use("local_templates_path")
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

def read_header(machine, name):
    """(lines, path) of batch header template ``name``, or (None, None) if no directory holds it."""
    for directory in template_dirs(machine):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as fh:
                    lines = fh.read().splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError("%s: cannot read batch header: %s" % (path, exc))
            machine.loader.file_order.setdefault(path, 3)
            return lines, path
    return None, None


def option_groups(words):
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
