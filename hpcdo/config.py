"""Machine descriptions: YAML layers merged into one validated ``Machine``.

Layers, later ones winning key by key:

1. the package's built-in ``default`` block and the embedded ``localhost``;
2. ``default:`` blocks and machine entries in the project's ``machines/*.yml``;
3. the same in the personal, git-ignored ``machines/machines_user.yml``;
4. ``key=value`` words on the doit command line (``doit machine=x cores=8``).

A machine may name a parent with ``extends:``; the parent's merged settings
are its starting point.  Every error names the file, line and key, and a
misspelt key gets the nearest known one as a suggestion.

Here: the layering (:class:`Catalogue`) and its result (:class:`Machine`).
A file's blocks are read by :mod:`hpcdo.layer`, keys are checked by
:mod:`hpcdo.schema`, and a ``fabsim3:`` entry is read by :mod:`hpcdo.fabsim`;
the names other modules use are importable from here too.
"""

import os

import yaml

from . import ConfigError, aliases
from .layer import MACHINE_NAME, Layer, load_yaml, text_line, yaml_files
from .schema import CHOICES, ENV_NAME, MEMORY_RE, NEEDED, ROOT_REFUSED, SCHEMA, check_layer, nearest

__all__ = ["BUILTIN", "CATALOGUE_DIR", "USER_FILE", "COMMAND_LINE", "FABSIM_KEY", "LOCAL_MACHINE",
           "Catalogue", "Machine", "parse_overrides", "Layer", "load_yaml", "text_line", "SCHEMA",
           "NEEDED", "CHOICES", "MACHINE_NAME", "ENV_NAME", "MEMORY_RE", "ROOT_REFUSED"]

BUILTIN = os.path.join(os.path.dirname(__file__), "machines.yml")
#: the machine catalogue shipped with hpcdo: one file per site
CATALOGUE_DIR = os.path.join(os.path.dirname(__file__), "catalogue")
USER_FILE = "machines_user.yml"

#: where command-line settings come from, as Machine.where() reports it
COMMAND_LINE = "command line"

#: top-level key of a machines/*.yml file that imports a FabSim3 machines.yml
FABSIM_KEY = "fabsim3"

#: the machine built into hpcdo (machines.yml): this computer, no SSH, background jobs
LOCAL_MACHINE = "localhost"

#: how long a two-factor login (interactive_login) is kept when no layer sets persist: a working day
INTERACTIVE_PERSIST = 8 * 3600


class Machine:
    """A merged, validated machine description; settings read as attributes.

    ``notes``: lines about the machine that change nothing in its jobs (for
    ``doit machine=X check``), e.g. the FabSim3 settings hpcdo has no use for.
    """

    def __init__(self, name, settings, origins, notes=None):
        self.name = name
        self._settings = settings
        self._origins = origins       # key -> "file:line"
        self.notes = list(notes or [])

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
        self.files = [BUILTIN] + yaml_files(CATALOGUE_DIR)
        mdir = os.path.join(project_dir, "machines")
        self.files += yaml_files(mdir, skip=USER_FILE)
        user = os.path.join(mdir, USER_FILE)
        if os.path.exists(user):
            self.files.append(user)
        self.defaults = []            # Layers named "default", in order
        self.entries = {}             # name -> [Layer, ...] in order
        self.fabsim = []              # what each imported FabSim3 machines.yml gave (hpcdo.fabsim)
        self.replaced = {}            # name -> the line saying a FabSim3 machine replaced hpcdo's
        self.imported = {}            # name -> what the FabSim3 files it came from say (FabsimMachines)
        self.kept = {}                # name -> the line saying hpcdo's localhost was kept
        for path in self.files:
            for name, layer in load_yaml(path).items():
                if name == FABSIM_KEY:
                    self._add_fabsim(layer)
                    continue
                self._add(name, layer)
        # other names of machines (aliases.py has the rules): resolved before any did-you-mean
        self.aliases, self.alias_notes = aliases.resolve(self.entries, _shipped)

    def canonical(self, name):
        """The machine's own name for ``name``, which may be an alias; any other name as it is."""
        return name if name in self.entries else self.aliases.get(name, name)

    def _add(self, name, layer):
        aliases.check(layer, name)
        if name == "default":
            self.defaults.append(layer)
            return
        if not MACHINE_NAME.match(name):
            raise ConfigError("%s:%d: machine name %r may use only letters, digits, '_', '.', '-'"
                              % (layer.where, layer.name_line, name))
        self.entries.setdefault(name, []).append(layer)

    def _add_fabsim(self, layer):
        """``fabsim3: {machines: PATH, user: PATH}``: take a FabSim3 project's machines as they are."""
        # imported here, not at the top, so only a project that names FabSim3 files loads the
        # importer (1,100 lines, compiled on every call where bytecode is not cached).  fabsim
        # imports nothing of config: tests/unit/test_layout_rules.py checks imports like this one too
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
        if LOCAL_MACHINE in found.entries or LOCAL_MACHINE in found.errors:
            # hpcdo's own localhost (no SSH, background jobs) stays what it is, whatever
            # FabSim3's says (a mistake in it included: machine() never raises its error)
            self.kept[LOCAL_MACHINE] = ("%s: FabSim3's machine '%s' is not imported: hpcdo's built-in %s is used"
                                        % (layer.where, LOCAL_MACHINE, LOCAL_MACHINE))
        for name, layers in found.entries.items():
            if name == LOCAL_MACHINE:
                continue
            self.imported[name] = found
            # A FabSim3 machine named like one hpcdo ships replaces it as a whole: mixing two
            # descriptions of one site key by key gives a machine neither file describes.  The
            # project's own files still apply on top (machines_user.yml: user, account ...).
            # A FabSim3 machine left out is not here: asking for it raises its error (machine()).
            own = self.entries.pop(name, [])
            shipped = [one for one in own if _shipped(one.where)]
            own = [one for one in own if not _shipped(one.where)]
            if shipped:
                first = layers[0]
                self.replaced[name] = (
                    "%s:%d: FabSim3's machine '%s' replaces hpcdo's machine of that name (%s) as a "
                    "whole: none of hpcdo's settings for it apply"
                    % (first.where, first.name_line, name, _shipped_name(shipped[-1].where)))
            # FabSim3's own default block applies to its machines only, once,
            # at the root of each extends chain
            if not any(one.values.get("extends") for one in layers):
                defaults = list(found.defaults)
                if any("host" in one.values and one.values["host"] is None for one in layers):
                    # "remote: localhost" is this computer, reached with no login: the
                    # default block's username (every FabSim3 user file has one) is not for it
                    defaults = [Layer({k: v for k, v in one.values.items() if k != "user"}, one.where,
                                      one.lines, one.name_line) for one in defaults]
                layers = defaults + list(layers)
            for one in list(layers) + own:
                self._add(name, one)

    def names(self, with_aliases=False):
        """The machines' own names, sorted; ``with_aliases``: each followed by ``(also a, b)``."""
        if not with_aliases:
            return sorted(self.entries)
        return [name + (" (also %s)" % ", ".join(aliases.of(self.aliases, name))
                        if aliases.of(self.aliases, name) else "") for name in sorted(self.entries)]

    def warnings(self, name):
        """One line each, about machine ``name`` only: where its jobs differ from what its FabSim3
        description would submit, and that it replaced hpcdo's machine of the same name."""
        name = self.canonical(name)
        lines = [self.replaced[name]] if name in self.replaced else []
        found = self.imported.get(name)
        return lines + (found.warnings_for(name) if found else [])

    def notes(self, name):
        """One line each: what imported FabSim3 files say about machine ``name`` that changes no job."""
        name = self.canonical(name)
        lines = [self.replaced[name]] if name in self.replaced else []
        lines += [self.kept[name]] if name in self.kept else []
        lines += self.alias_notes.get(name, [])
        found = self.imported.get(name)
        return lines + (found.notes_for(name) if found else [])

    def machine(self, name, overrides=None):
        """Merge and validate machine ``name`` (or an alias of it); ``overrides`` is a command-line Layer."""
        name = self.canonical(name)
        for found in self.fabsim:
            # a FabSim3 machine left out says why, even where hpcdo ships one of that name;
            # FabSim3's localhost is never imported, so its mistakes are not hpcdo's localhost's
            if name != LOCAL_MACHINE:
                found.require(name)
        if name not in self.entries:
            raise ConfigError("unknown machine '%s'%s; known machines: %s"
                              % (name, nearest(name, list(self.entries) + list(self.aliases)),
                                 ", ".join(self.names(with_aliases=True))))
        settings, origins = {}, {}
        for layer in self.defaults:
            check_layer(layer, "default")
            _apply(settings, origins, layer)
        for layer in self._chain(name, []):
            check_layer(layer, "machine '%s'" % name if layer.values is not None else name)
            _apply(settings, origins, layer)
        if overrides is not None and overrides.values:
            if aliases.KEY in overrides.values:
                raise ConfigError("%s: key '%s' names a machine in its machine file, not for one call"
                                  % (COMMAND_LINE, aliases.KEY))
            check_layer(overrides, "machine '%s'" % name)
            _apply(settings, origins, overrides)
        settings.pop("extends", None)
        settings[aliases.KEY] = aliases.of(self.aliases, name)
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
        if settings["interactive_login"] and origins.get("persist", "").startswith(BUILTIN + ":"):
            settings["persist"] = INTERACTIVE_PERSIST     # one code a day, not one per call
        return Machine(name, settings, origins, self.notes(name))

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
                parent, where = self.canonical(layer.values["extends"]), layer.at("extends")
        if parent and parent not in self.entries:
            raise ConfigError("%s: machine '%s': key 'extends' names unknown machine '%s'%s"
                              % (where, name, parent, nearest(parent, self.entries)))
        chain = self._chain(parent, seen + [name]) if parent else []
        return chain + layers


def _shipped(path):
    """Whether ``path`` is one of hpcdo's own machine files (built-in or catalogue)."""
    return path == BUILTIN or os.path.dirname(path) == CATALOGUE_DIR


def _shipped_name(path):
    return os.path.relpath(path, os.path.dirname(os.path.dirname(BUILTIN)))


def _apply(settings, origins, layer):
    for key, value in layer.values.items():
        if isinstance(value, dict) and isinstance(settings.get(key), dict):
            merged = dict(settings[key])
            merged.update(value)
            settings[key] = merged
        else:
            settings[key] = value
        origins[key] = layer.at(key)
