"""Figures a recipe names: ``recipe.figure("MLUPS", "summary.json", "mlups")``.

A figure is one number each run writes into a JSON file among its results.
``doit machine=a,b,c`` (:mod:`hpcdo.fleet_summary`) shows it per run and
machine, read from ``results/<machine>/<run>/<file>``: ``key`` is a key of
the file's top object, and dots go into nested objects (``"timing.mlups"``).
A file not fetched, or a key it does not have, shows as ``-``.
"""

import json
import re

from . import ConfigError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.%/-]{0,31}\Z")
FILE_RE = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*\Z")


def check(recipe, named, name, file, key):
    """``(file, key)`` of figure ``name`` of recipe ``recipe`` (whose figures so far are ``named``),
    checked: one ConfigError line per mistake."""
    label = "recipe %s: figure %r" % (recipe, name)
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError("%s: name it with 1-32 letters, digits, '_', '.', '-', '%%', '/' (such as "
                          "MLUPS or steps/s)" % label)
    if name in named:
        raise ConfigError("%s is named twice" % label)
    if not isinstance(file, str) or not FILE_RE.match(file) or ".." in file.split("/"):
        raise ConfigError("%s: file must be a plain path inside the run's results, such as "
                          "summary.json" % label)
    if not isinstance(key, str) or not key or "" in key.split("."):
        raise ConfigError("%s: key must be a JSON key such as 'mlups' or 'timing.mlups'" % label)
    return (file, key)


def read_figure(path, key):
    """The value at ``key`` (dots go into nested objects) of the JSON file ``path``, or None."""
    try:
        with open(path, encoding="utf-8") as fh:
            value = json.load(fh)
    except (OSError, ValueError):
        return None
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value if isinstance(value, (int, float, str)) and not isinstance(value, bool) else None
