"""FabSim3 values as hpcdo reads them: ``$var`` templates, types, module maps.

The small helpers every part of the importer shares; they know nothing of
files (:mod:`.loader`), hpcdo's keys (:mod:`.mapping`) or batch headers
(:mod:`.headers`).
"""

import string

from .. import ConfigError
from ..schema import kind as kind_of

#: FabSim3 variables filled in per job (fabsim/base/fab.py); hpcdo cannot know them in advance
JOB_TIME = frozenset((
    "job_name", "job_wall_time", "job_results", "job_results_local", "job_config_path",
    "job_config_path_local", "cores", "nodes", "cores_reserved", "coresusedpernode", "total_mem",
    "replica_number", "label", "name", "script", "run_prefix", "run_command", "dest_name",
    "results_path", "config_path", "scripts_path", "job_name_template_sh", "config",
))


def substitute(text, lookup, keep_escapes=False):
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


def typed(src, key, value, kind):
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
    # the value's type, never the value: a user's file may hold a secret in the wrong place
    raise ConfigError("%s: %s: key '%s' must be %s, not %s" % (src.at(key), src.label, key, wants, kind_of(value)))


def str_list(src, key, value):
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError("%s: %s: key '%s' must be a list of strings, not %s"
                      % (src.at(key), src.label, key, kind_of(value)))


def modules_map(value, src):
    """FabSim3 modules, a list (older files) or {all|loaded|unloaded|<script>: [...]}."""
    if isinstance(value, list):
        value = {"all": value}
    if not isinstance(value, dict):
        raise ConfigError("%s: %s: key 'modules' must be a list or a mapping of lists, not %s"
                          % (src.at("modules"), src.label, kind_of(value)))
    out = {}
    for sub, entries in value.items():
        if entries is None:
            entries = []
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise ConfigError("%s: %s: key 'modules' entry '%s' must be a list of strings, not %s"
                              % (src.at("modules"), src.label, sub, kind_of(entries)))
        out[str(sub)] = list(entries)
    return out



def is_empty(value):
    return value is None or value is False or value == "" or value == [] or value == {}
