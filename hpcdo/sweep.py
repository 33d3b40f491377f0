"""Sweeps: many runs from lists of parameter values (part of the recipe API).

:meth:`hpcdo.recipe.Recipe.sweep` makes one run per combination of values
(the product of the lists, or with ``zip=True`` their zip) times
``replicas``.  Each run is an ordinary run with its own signature, stamp
and results directory, so adding a value to a list makes only the new
runs stale and removing one leaves the others' results alone.

A run's name comes from its values alone, never from its position in a
list: ``flow`` with ``force=[0.1, 0.2]`` and ``replicas=2`` gives
``flow-force0.1-r1``, ``flow-force0.1-r2``, ``flow-force0.2-r1`` ... (a
``geometry`` parameter adds the geometry's name alone).  A
``name`` pattern such as ``"f{force}-s{steps}"`` replaces the default
(``{replica}`` is the replica's number).  Characters a run name cannot
hold become ``_``; when two combinations would share a name, or a name
would pass 64 characters, the name ends in a short hash of the values, so
names stay unique and stable.
"""

import hashlib
import itertools
import json
import re

from . import ConfigError

#: a parameter's name: it becomes a {field} of args, env values and input templates
PARAM_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
#: the longest run name (hpcdo.recipe.NAME_RE)
MAX_NAME = 64


def check_parameters(label, parameters, reserved):
    """``parameters`` as an ordered dict of name -> list of values, each checked."""
    if not isinstance(parameters, dict) or not parameters:
        raise ConfigError("%s: parameters must be a dict of names to lists of values" % label)
    checked = {}
    for key, values in parameters.items():
        if not isinstance(key, str) or not PARAM_RE.match(key):
            raise ConfigError("%s: parameter name %r: use letters, digits and '_', not starting "
                              "with a digit" % (label, key))
        if key in reserved:
            raise ConfigError("%s: parameter %r is a name hpcdo fills in itself (%s)"
                              % (label, key, ", ".join(sorted(reserved))))
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            values = [values]
        values = list(values)
        if not values:
            raise ConfigError("%s: parameter %s has no values" % (label, key))
        for value in values:
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ConfigError("%s: parameter %s: value %r must be a string or number"
                                  % (label, key, value))
        if len({_text(v) for v in values}) != len(values):
            raise ConfigError("%s: parameter %s lists a value twice" % (label, key))
        checked[key] = values
    return checked


def combinations(label, parameters, zipped=False):
    """Each combination of values, as a dict: the product of the lists, or their zip."""
    keys = list(parameters)
    lists = [parameters[k] for k in keys]
    if zipped:
        lengths = {len(v) for v in lists}
        if len(lengths) > 1:
            raise ConfigError("%s: zip=True needs lists of one length; got %s" % (
                label, ", ".join("%s: %d" % (k, len(parameters[k])) for k in keys)))
        rows = zip(*lists)
    else:
        rows = itertools.product(*lists)
    return [dict(zip(keys, row)) for row in rows]


def _text(value):
    """How a value reads in a run's name and its {field}: 0.1, 1e-05, 300, 'abc'."""
    return value if isinstance(value, str) else repr(value)


def _values_hash(values, replica):
    text = json.dumps([[k, _text(v)] for k, v in values.items()] + [replica], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def run_names(label, prefix, rows, replicas, pattern=None):
    """A name for each (values, replica) of ``rows`` x 1..``replicas``: readable, valid, unique, stable."""
    wanted = []
    for values in rows:
        for replica in range(1, replicas + 1):
            if pattern is not None:
                try:
                    text = pattern.format(replica=replica, **{k: _text(v) for k, v in values.items()})
                except (KeyError, IndexError, ValueError) as exc:
                    raise ConfigError("%s: name pattern %r: %s (fields: %s)" % (
                        label, pattern, exc, ", ".join(["{replica}"] + ["{%s}" % k for k in values])))
            else:
                text = "-".join([prefix] + [_text(v) if k == "geometry" else "%s%s" % (k, _text(v))
                                            for k, v in values.items()] +
                                (["r%d" % replica] if replicas > 1 else []))
            wanted.append((values, replica, _UNSAFE.sub("_", text).strip("._-") or "run"))
    counts = {}
    for _values, _replica, name in wanted:
        counts[name] = counts.get(name, 0) + 1
    named = []
    for values, replica, name in wanted:
        if counts[name] > 1 or len(name) > MAX_NAME:
            tag = _values_hash(values, replica)
            name = "%s-%s" % (name[:MAX_NAME - len(tag) - 1].rstrip("._-"), tag)
        named.append((values, replica, name))
    return named


def field_text(value):
    """A parameter's value as its {field} fills it in (the text its run name is made of)."""
    return _text(value)
