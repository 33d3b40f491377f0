"""Other names of a machine: ``aliases: [tianhe, th2a]`` in its entry.

An alias is only a spelling: ``doit machine=tianhe`` loads machine ``tianhe2``,
whose name (never the alias) names ``results/<machine>/``, doit's record and
the lock, so two spellings never split one machine's results or stamps.

The rules, checked when the machine files are read:

* an alias is a machine name (letters, digits, ``_ . -``) and never the name of
  its own machine;
* an alias naming another machine, or an alias of another machine, is an error
  with the file and line of both;
* except that the project's names come first: a machine or alias defined in the
  project's ``machines/*.yml`` (or ``machines_user.yml``) named like an alias
  hpcdo ships takes that name, whole, and the shipped alias gives way (a note
  says so in ``hpcdo machines``).  Nothing of the shipped machine is mixed into
  the project's: a project that already had its own ``tianhe`` keeps it as it was.
"""

from . import ConfigError
from .layer import MACHINE_NAME

#: the key of a machine entry that lists its other names
KEY = "aliases"

#: top-level names of a machine file that are no machine (config.py's default block and FabSim3 import)
RESERVED = ("default", "fabsim3")


def check(layer, name):
    """Raise a ConfigError unless ``layer``'s aliases (if any) are a list of machine names."""
    if name == "default":
        if KEY in layer.values:
            raise ConfigError("%s: default: key '%s' belongs to one machine, not to the defaults"
                              % (layer.at(KEY), KEY))
        return
    value = layer.values.get(KEY)
    if value is None:
        return
    if not isinstance(value, list) or not all(isinstance(a, str) and MACHINE_NAME.match(a) for a in value):
        raise ConfigError("%s: machine '%s': key '%s' must be a list of machine names (letters, digits, "
                          "'_', '.', '-')" % (layer.at(KEY), name, KEY))
    for alias in value:
        if alias in RESERVED:
            raise ConfigError("%s: machine '%s': '%s' cannot be an alias (it names a block of machine files)"
                              % (layer.at(KEY), name, alias))
    if name in value:
        raise ConfigError("%s: machine '%s': '%s' is its own name, not an alias" % (layer.at(KEY), name, name))


def resolve(entries, shipped):
    """({alias: machine}, {machine: [note, ...]}) for ``entries`` (name -> [Layer]).

    ``shipped(path)`` says whether a file is hpcdo's own (built-in or catalogue).
    The notes are keyed by the project's machine that took a shipped alias's name.
    """
    declared = []                 # (alias, machine, layer), shipped files first (they load first)
    for name, layers in entries.items():
        for layer in layers:
            for alias in layer.values.get(KEY) or ():
                declared.append((alias, name, layer))
    declared.sort(key=lambda one: not shipped(one[2].where))
    found, where, notes = {}, {}, {}
    for alias, name, layer in declared:
        ours = shipped(layer.where)
        if alias in entries:
            owner = entries[alias]
            if ours and not any(shipped(one.where) for one in owner):
                if not any("host" in one.values or "extends" in one.values for one in owner):
                    # settings meant for the shipped machine, under its alias: they would make a
                    # machine of their own (this computer), so they are refused, saying where they go
                    raise ConfigError("%s:%d: machine '%s' sets neither host nor extends, and '%s' is hpcdo's "
                                      "alias for machine '%s' (%s): put its settings under '%s', or describe "
                                      "a machine of your own with host or extends"
                                      % (owner[0].where, owner[0].name_line, alias, alias, name,
                                         layer.at(KEY), name))
                notes.setdefault(alias, []).append("%s:%d: machine '%s' is the project's own; hpcdo's alias '%s' for "
                                "machine '%s' (%s) does not apply"
                                % (owner[0].where, owner[0].name_line, alias, alias, name, layer.at(KEY)))
                continue
            raise ConfigError("%s: machine '%s': alias '%s' is the name of machine '%s' (%s:%d)"
                              % (layer.at(KEY), name, alias, alias, owner[0].where, owner[0].name_line))
        if alias in found and found[alias] != name:
            before = where[alias]
            if shipped(before.where) and not ours:
                notes.setdefault(name, []).append("%s: alias '%s' is the project's, for machine '%s'; hpcdo's alias '%s' "
                                "for machine '%s' (%s) does not apply"
                                % (layer.at(KEY), alias, name, alias, found[alias], before.at(KEY)))
            else:
                raise ConfigError("%s: machine '%s': alias '%s' is already an alias of machine '%s' (%s)"
                                  % (layer.at(KEY), name, alias, found[alias], before.at(KEY)))
        found[alias], where[alias] = name, layer
    return found, notes


def of(aliases, name):
    """The aliases of machine ``name``, sorted."""
    return sorted(a for a, m in aliases.items() if m == name)
