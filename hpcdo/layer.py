"""One layer of machine settings: a YAML file's blocks, each key with its line.

Every machine file hpcdo reads (the built-in ``machines.yml``, the shipped
catalogue, a project's ``machines/*.yml``, a FabSim3 ``machines.yml``) is
parsed here into :class:`Layer` objects, so an error about any key can name
the file and line the user wrote.  This module knows nothing of which keys
exist (:mod:`hpcdo.schema`) or how layers merge (:mod:`hpcdo.config`).
"""

import os
import re

import yaml

from . import ConfigError

#: libyaml's parser where PyYAML has it: every call reads every machine file,
#: and the pure-Python parser took 40 ms for the catalogue alone
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: a machine's name, as a YAML key: it names results/<machine>/ and is typed on command lines
MACHINE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")


class Layer:
    """Settings from one place, with the line each key stands on."""

    def __init__(self, values, where, lines=None, name_line=1):
        self.values = values
        self.where = where            # file name or "command line"
        self.lines = lines or {}
        self.name_line = name_line    # the line of the machine's name, for errors about it

    def at(self, key):
        line = self.lines.get(key)
        return "%s:%d" % (self.where, line) if line else self.where


def yaml_files(directory, skip=None):
    """The ``*.yml`` and ``*.yaml`` files in ``directory``, sorted; none if it does not exist."""
    if not os.path.isdir(directory):
        return []
    return [os.path.join(directory, f) for f in sorted(os.listdir(directory))
            if f.endswith((".yml", ".yaml")) and f != skip]


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
        layers[name] = Layer(value, path, lines, line)
    return layers


def text_line(path, offset):
    """The line number of byte ``offset`` in file ``path``."""
    with open(path, "rb") as fh:
        return fh.read(offset).count(b"\n") + 1
