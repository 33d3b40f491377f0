"""Reading FabSim3's machine files and resolving each machine in FabSim3's order.

:func:`load` reads ``machines.yml`` (with ``machines_private.yml`` beside
it) and ``machines_user.yml``, resolves each machine from its ``default:``
blocks, its ``import`` chain and its own entries (the key mapping itself is
:mod:`.mapping`'s), leaves out a machine that cannot be resolved with its
error kept, and splits each machine's hpcdo keys back into one Layer per
file, in FabSim3's file order.
"""

import os

from .. import ConfigError
from ..layer import MACHINE_NAME, Layer, load_yaml
from .mapping import NOTE, WARN, Mapping, check_default, default_layer, left_out
from .values import kind_of, modules_map


class FabsimMachines:
    """What :func:`load` found.

    ``defaults``: Layers of the ``default:`` blocks (machines.yml's, then the
    user's), with the keys that map one to one.  ``entries``: {machine name:
    [Layer, ...]}, each machine's whole description split by the file each
    value came from (machines.yml, then machines_user.yml, then the batch
    header).  ``warnings``: one line each, ``FILE:LINE: machine 'x': ...``,
    about what changes a job (FabSim3 would submit it otherwise);
    ``notes``: the same for the rest (FabSim3 settings hpcdo has no use for).
    ``errors``: {name: message} for machines left out.

    Each line belongs to the machines it concerns: a key of a ``default:``
    block to every machine that inherits it and does not use it, so a
    machine's lines (:meth:`warnings_for`, :meth:`notes_for`) say all about
    it and nothing about the others.
    """

    def __init__(self):
        self.defaults = []
        self.entries = {}
        self.warnings = []
        self.notes = []
        self.errors = {}
        self._scoped = []             # (machine name, level, text); level "warn" or "note"

    def require(self, name):
        """Raise the ConfigError that left machine ``name`` out, if one did."""
        if name in self.errors:
            raise ConfigError(self.errors[name])

    def warn(self, name, text, level=WARN):
        """Add a line about machine ``name``: a warning, or (``level`` NOTE) a note."""
        (self.warnings if level == WARN else self.notes).append(text)
        self._scoped.append((name, level, text))

    def warnings_for(self, name):
        """The warnings about machine ``name``: what hpcdo does differently from FabSim3 in its jobs."""
        return [text for scope, level, text in self._scoped if scope == name and level == WARN]

    def notes_for(self, name):
        """The notes about machine ``name``: FabSim3 settings it has that change nothing in its jobs."""
        return [text for scope, level, text in self._scoped if scope == name and level == NOTE]


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
        self._lines = []              # (machine name, file order, file, line, text, level)
        # each file's place, for sorting warnings: machines.yml, private, user, then headers
        self.file_order = {src.path: src.order for src in list(main.values()) + list(user.values())}

    # -- the whole load --------------------------------------------------------
    def run(self):
        for src in self.defaults:
            check_default(src)
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
            self._lines.append((name, src.order, src.path, src.name_line,
                                "%s; machine left out" % message, WARN))
        self._inherit_nulls()
        for name in names:
            if name in self.results:
                self.found.entries[name] = self._layers(self.results[name])
        self.found.defaults = [default_layer(src) for src in self.defaults]
        self._lines += left_out(self.defaults, list(self.results.values()))
        self._lines.sort(key=lambda w: w[1:4])
        seen = set()
        for scope, _order, _path, _line, text, level in self._lines:
            if (scope, text) not in seen:
                seen.add((scope, text))
                self.found._scoped.append((scope, level, text))
        for level, texts in ((WARN, self.found.warnings), (NOTE, self.found.notes)):
            for _scope, one, text in self.found._scoped:
                if one == level and text not in texts:
                    texts.append(text)
        return self.found

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
                raise ConfigError("%s: %s: key 'import' must be a machine name, not %s"
                                  % (src.at("import"), src.label, kind_of(value)))
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
                    for sub, entries in modules_map(value, src).items():
                        modules[sub] = (entries, src)
                    result.module_sources.append(src)
                else:
                    merged[key] = (value, src)
        own = self._own(name)
        resolver = Mapping(self, name, result, merged, own)
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
            layers.append(Layer({k: v for k, (v, _line) in keys.items()}, path,
                                {k: line for k, (_v, line) in keys.items()},
                                own.get(path) or default_lines.get(path) or 1))
        return layers
