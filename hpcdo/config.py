"""Machine descriptions: YAML layers merged into one validated ``Machine``.

Layers, later ones winning key by key:

1. the package's built-in ``default`` block and the embedded ``localhost``;
2. ``default:`` blocks and machine entries in the project's ``machines/*.yml``;
3. the same in the personal, git-ignored ``machines/machines_user.yml``;
4. ``key=value`` words on the doit command line (``doit machine=x cores=8``).

A machine may name a parent with ``extends:``; the parent's merged settings
are its starting point.  Every error names the file, line and key, and a
misspelt key gets the nearest known one as a suggestion.
"""

import difflib
import os
import re

import yaml

from . import ConfigError
from .launchers import LAUNCHERS
from .schedulers import SCHEDULERS

BUILTIN = os.path.join(os.path.dirname(__file__), "machines.yml")
#: the machine catalogue shipped with hpcdo: one file per site
CATALOGUE_DIR = os.path.join(os.path.dirname(__file__), "catalogue")
USER_FILE = "machines_user.yml"

#: libyaml's parser where PyYAML has it: every call reads every machine file,
#: and the pure-Python parser took 40 ms for the catalogue alone
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: characters in a work root that CMake's and make's generated files cannot carry
ROOT_REFUSED = re.compile(r'[;"\\|#\x00-\x1f\x7f]')
MEMORY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?[KMGT]B?\Z", re.IGNORECASE)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")


def _str_or_none(v):
    return v is None or isinstance(v, str)


def _int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _pos_int(v):
    return _int(v) and v > 0


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


def _str_list(v):
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _str_map(v):
    return isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, (str, int, float, bool))
                                       for k, x in v.items())


#: a machine's name, as a YAML key: it names results/<machine>/ and is typed on command lines
MACHINE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")

#: an environment variable's name: it reaches the shell as ``export NAME=...`` unquoted
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


def _env_map(v):
    return _str_map(v) and all(ENV_NAME.match(k) for k in v)


#: key -> (check, what the check wants, help)
SCHEMA = {
    "description": (_str_or_none, "a string", "one line about the machine"),
    "extends": (_str_or_none, "a machine name", "start from this machine's settings"),
    "host": (_str_or_none, "a host name or null", "SSH host; null runs on this computer"),
    "user": (_str_or_none, "a user name or null", "SSH user name"),
    "port": (_pos_int, "a positive integer", "SSH port"),
    "identity_file": (_str_or_none, "a path or null", "SSH private key on this computer"),
    "known_hosts": (_str_or_none, "a path or null", "extra known_hosts file to trust"),
    "scheduler": (lambda v: v in SCHEDULERS, "one of: " + ", ".join(sorted(SCHEDULERS)), "batch system"),
    "launcher": (lambda v: v is None or v in LAUNCHERS, "one of: " + ", ".join(sorted(LAUNCHERS)),
                 "program launcher inside the job"),
    "launcher_options": (_str_or_none, "a string or null",
                         "options after the launcher ($tasks, $threads, $cores, $nodes, $corespernode, $cpn)"),
    "run_command": (_str_or_none, "a string or null",
                    "whole launcher prefix instead of launcher + options, e.g. 'srun -n $cores'"),
    "jobscript": (_str_or_none, "a template name or null", "jobscript template (default <scheduler>.sh.j2)"),
    "modules": (_str_list, "a list of strings", "module commands, e.g. 'load gcc/12' or 'gcc/12'"),
    "module_init": (_str_or_none, "a path or null", "file sourced to define 'module' before loading"),
    "remote_root": (lambda v: isinstance(v, str) and v != "" and not ROOT_REFUSED.search(v),
                    "a path without ; \" \\ | # or control characters (build tools cannot use them)",
                    "work root on the machine"),
    "cores": (_pos_int, "a positive integer", "default cores per run"),
    "corespernode": (_pos_int, "a positive integer", "cores of one node"),
    "make_jobs": (_pos_int, "a positive integer", "parallel compile jobs"),
    "max_job_name_chars": (_pos_int, "a positive integer", "longest job name the scheduler takes"),
    "partition": (_str_or_none, "a string or null", "scheduler partition/queue"),
    "account": (_str_or_none, "a string or null", "budget code"),
    "qos": (_str_or_none, "a string or null", "quality of service"),
    "pe": (_str_or_none, "a string or null", "Grid Engine parallel environment, e.g. mpi or smp"),
    "memory": (lambda v: v is None or (isinstance(v, str) and MEMORY_RE.match(v) is not None), "an amount like 4G or 500M, or null", "memory per job (Slurm, PBS) or per slot (SGE), e.g. 4G"),
    "directives": (_str_list, "a list of strings",
                   "extra scheduler directives, without the #SBATCH/#$/#PBS/#BSUB prefix"),
    "shell_setup": (_str_list, "a list of strings",
                    "shell lines run before every remote command (not a .bashrc), e.g. '. /etc/profile.d/sge.sh'"),
    "env": (_env_map, "a mapping of variable names (letters, digits, _) to values",
            "environment for builds and jobs"),
    "cmake": (lambda v: isinstance(v, str) and v != "", "a command", "cmake executable on the machine"),
    "cmake_options": (_str_map, "a mapping of names to values", "CMake -D options for every recipe"),
    "persist": (lambda v: _int(v) and v >= 0, "a whole number of seconds (0: off)",
                "keep the SSH connection open in an agent this long after the last use"),
    "poll_interval": (_number, "a positive number", "first wait between job polls, seconds"),
    "poll_max": (_number, "a positive number", "longest wait between job polls, seconds"),
    "scheduler_timeout": (_number, "a positive number",
                          "how long a wait bears a scheduler that does not answer, seconds"),
    "retries": (lambda v: _int(v) and v >= 0, "a whole number (0: never)",
                "how often a run whose job the machine lost (node failure, preemption, a job gone "
                "without a trace) is submitted again by itself"),
}

NEEDED = ("scheduler", "remote_root")

#: where command-line settings come from, as Machine.where() reports it
COMMAND_LINE = "command line"

#: keys whose value names one of a fixed set
CHOICES = {"scheduler": SCHEDULERS, "launcher": LAUNCHERS}

#: top-level key of a machines/*.yml file that imports a FabSim3 machines.yml
FABSIM_KEY = "fabsim3"


def _yaml_files(directory, skip=None):
    if not os.path.isdir(directory):
        return []
    return [os.path.join(directory, f) for f in sorted(os.listdir(directory))
            if f.endswith((".yml", ".yaml")) and f != skip]


class Layer:
    """Settings from one place, with the line each key stands on."""

    def __init__(self, values, where, lines=None):
        self.values = values
        self.where = where            # file name or "command line"
        self.lines = lines or {}

    def at(self, key):
        line = self.lines.get(key)
        return "%s:%d" % (self.where, line) if line else self.where


class Machine:
    """A merged, validated machine description; settings read as attributes."""

    def __init__(self, name, settings, origins):
        self.name = name
        self._settings = settings
        self._origins = origins       # key -> "file:line"

    def __getattr__(self, key):
        try:
            return self._settings[key]
        except KeyError:
            raise AttributeError(key)

    def where(self, key):
        return self._origins.get(key, "defaults")

    def as_dict(self):
        return dict(self._settings)

    @property
    def is_local(self):
        return self.host is None


def load_yaml(path, strict_names=True):
    """Parse ``path`` into {name: Layer}, keeping line numbers of each key.

    ``strict_names``: a top-level key that is no machine name is an error;
    otherwise (FabSim3's files, whose loader judges names itself) a key YAML
    reads as no string is left out.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError("%s: cannot read: %s" % (path, exc.strerror))
    except UnicodeDecodeError as exc:
        line = text_line(path, exc.start)
        raise ConfigError("%s:%d: not UTF-8 text (byte 0x%02x)" % (path, line, exc.object[exc.start]))
    try:
        node = yaml.compose(text, Loader=LOADER)
        data = yaml.load(text, Loader=LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = ":%d" % (mark.line + 1) if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError("%s%s: YAML syntax error: %s" % (path, line, problem))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("%s:1: expected a mapping of machine names to settings" % path)
    layers = {}
    for key_node, value_node in node.value:
        name = key_node.value
        line = key_node.start_mark.line + 1
        if not strict_names and key_node.tag != "tag:yaml.org,2002:str":
            continue
        if strict_names and (key_node.tag != "tag:yaml.org,2002:str" or not MACHINE_NAME.match(str(name))):
            # YAML reads 123, true, ~ and << as a number, a bool, null and a merge
            raise ConfigError("%s:%d: %r is not a machine name: use letters, digits, '_', '.' and '-', "
                              "starting with a letter or digit (quote a name YAML would read as a "
                              "number, true/false or null)" % (path, line, name))
        value = data[name]
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError("%s:%d: machine '%s' must be a mapping of settings" % (path, line, name))
        lines = {}
        if isinstance(value_node, yaml.MappingNode):
            for k, _v in value_node.value:
                lines[k.value] = k.start_mark.line + 1
        layer = Layer(value, path, lines)
        layer.name_line = line
        layers[name] = layer
    return layers


def _check_layer(layer, label):
    for key, value in layer.values.items():
        if key not in SCHEMA:
            raise ConfigError("%s: %s: unknown key '%s'%s" % (layer.at(key), label, key, _nearest(key, SCHEMA)))
        check, wants, _help = SCHEMA[key]
        if key in CHOICES and value is not None and not check(value):
            known = CHOICES[key]
            raise ConfigError("%s: %s: unknown %s '%s'%s; known %ss: %s"
                              % (layer.at(key), label, key, value, _nearest(value, known), key,
                                 ", ".join(sorted(known))))
        if not check(value):
            # the value's type, never the value: it may be a secret put in the wrong place
            raise ConfigError("%s: %s: key '%s' must be %s, not %s"
                              % (layer.at(key), label, key, wants, _kind(value)))


def _nearest(word, known):
    """`` (did you mean 'x'?)`` with the known name nearest ``word``, or nothing."""
    near = difflib.get_close_matches(str(word), known, n=1)
    return " (did you mean '%s'?)" % near[0] if near else ""


def text_line(path, offset):
    """The line number of byte ``offset`` in file ``path``."""
    with open(path, "rb") as fh:
        return fh.read(offset).count(b"\n") + 1


def _kind(value):
    """What a wrong value is, without repeating it."""
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return "a yes/no value"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string" if value else "an empty string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def parse_overrides(words):
    """Turn command-line ``key=value`` strings into a Layer.

    A value the key takes as text is taken literally (``partition=a #b``
    stays ``a #b``); others are read as YAML (``cores=8`` is a number,
    ``modules=[a, b]`` a list).  An empty value unsets the key.
    """
    values = {}
    for key, text in words.items():
        check = SCHEMA.get(key, (None,))[0]
        if text == "":
            value = None
        elif check is not None and check(text):
            value = text
        else:
            try:
                value = yaml.safe_load(text)
            except yaml.YAMLError:
                value = text
            if isinstance(value, str) or value is None:
                value = text          # YAML would drop a '#...' or quotes: keep what was typed
        values[key] = value
    return Layer(values, COMMAND_LINE)


class Catalogue:
    """All machines a project can see, ready to merge on request."""

    def __init__(self, project_dir):
        self.files = [BUILTIN] + _yaml_files(CATALOGUE_DIR)
        mdir = os.path.join(project_dir, "machines")
        self.files += _yaml_files(mdir, skip=USER_FILE)
        user = os.path.join(mdir, USER_FILE)
        if os.path.exists(user):
            self.files.append(user)
        self.defaults = []            # Layers named "default", in order
        self.entries = {}             # name -> [Layer, ...] in order
        self.fabsim = []              # what each imported FabSim3 machines.yml gave (hpcdo.fabsim)
        for path in self.files:
            for name, layer in load_yaml(path).items():
                if name == FABSIM_KEY:
                    self._add_fabsim(layer)
                    continue
                self._add(name, layer)

    def _add(self, name, layer):
        if name == "default":
            self.defaults.append(layer)
            return
        if not NAME_RE.match(name):
            raise ConfigError("%s:%d: machine name %r may use only letters, digits, '_', '.', '-'"
                              % (layer.where, layer.name_line, name))
        self.entries.setdefault(name, []).append(layer)

    def _add_fabsim(self, layer):
        """``fabsim3: {machines: PATH, user: PATH}``: take a FabSim3 project's machines as they are."""
        from . import fabsim
        values = layer.values
        unknown = sorted(set(values) - {"machines", "user"})
        if unknown or not isinstance(values.get("machines"), str) or \
                not isinstance(values.get("user"), (str, type(None))):
            raise ConfigError("%s:%d: fabsim3 must be a mapping with 'machines: PATH' and optionally "
                              "'user: PATH'" % (layer.where, layer.name_line))
        base = os.path.dirname(layer.where)

        def path(p):
            return os.path.join(base, os.path.expanduser(p)) if p else None

        found = fabsim.load(path(values["machines"]), path(values.get("user")))
        self.fabsim.append(found)
        for name, layers in found.entries.items():
            if name == "localhost":
                # hpcdo's own localhost (no SSH, background jobs) stays what it is
                found.warn("localhost", "%s: FabSim3's machine 'localhost' is not imported: hpcdo's "
                                        "built-in localhost is used" % layer.where)
                continue
            # FabSim3's own default block applies to its machines only, once,
            # at the root of each extends chain
            if not any(one.values.get("extends") for one in layers):
                layers = list(found.defaults) + list(layers)
            for one in layers:
                one.name_line = getattr(one, "name_line", 1)
                self._add(name, one)

    def names(self):
        return sorted(self.entries)

    def warnings(self, name):
        """One line each: what imported FabSim3 files say about machine ``name`` that hpcdo ignores."""
        return [w for found in self.fabsim for w in found.warnings_for(name)]

    def machine(self, name, overrides=None):
        """Merge and validate machine ``name``; ``overrides`` is a command-line Layer."""
        if name not in self.entries:
            for found in self.fabsim:
                found.require(name)             # a FabSim3 machine left out says why
            raise ConfigError("unknown machine '%s'%s; known machines: %s"
                              % (name, _nearest(name, self.entries), ", ".join(self.names())))
        settings, origins = {}, {}
        for layer in self.defaults:
            _check_layer(layer, "default")
            _apply(settings, origins, layer)
        for layer in self._chain(name, []):
            _check_layer(layer, "machine '%s'" % name if layer.values is not None else name)
            _apply(settings, origins, layer)
        if overrides is not None and overrides.values:
            _check_layer(overrides, "machine '%s'" % name)
            _apply(settings, origins, overrides)
        settings.pop("extends", None)
        for key in NEEDED:
            if settings.get(key) in (None, ""):
                raise ConfigError("machine '%s': required key '%s' is not set" % (name, key))
        if not settings.get("host"):
            for key in ("user", "identity_file"):
                if settings.get(key) and origins.get(key, "defaults") != "defaults":
                    raise ConfigError("%s: machine '%s': key '%s' is set but 'host' is not: set host "
                                      "(or remove %s for a machine that is this computer)"
                                      % (origins[key], name, key, key))
        for key in SCHEMA:
            settings.setdefault(key, None)
        return Machine(name, settings, origins)

    def _chain(self, name, seen):
        """The layers of ``name``, its ``extends`` parents' first."""
        if name in seen:
            raise ConfigError("machine '%s': 'extends' loops: %s" % (name, " -> ".join(seen + [name])))
        layers = self.entries.get(name)
        if layers is None:
            raise ConfigError("machine '%s' extends unknown machine '%s'" % (seen[-1], name))
        parent, where = None, None
        for layer in layers:
            if layer.values.get("extends"):
                parent, where = layer.values["extends"], layer.at("extends")
        if parent and parent not in self.entries:
            raise ConfigError("%s: machine '%s': key 'extends' names unknown machine '%s'%s"
                              % (where, name, parent, _nearest(parent, self.entries)))
        chain = self._chain(parent, seen + [name]) if parent else []
        return chain + layers


def _apply(settings, origins, layer):
    for key, value in layer.values.items():
        if isinstance(value, dict) and isinstance(settings.get(key), dict):
            merged = dict(settings[key])
            merged.update(value)
            settings[key] = merged
        else:
            settings[key] = value
        origins[key] = layer.at(key)
