"""The checks on what a recipe declares: names, CMake options, env, output patterns and the
{fields} of arguments.  Each bad value is one ConfigError line naming the recipe and the value.
Part of the recipe API's room (hpcdo.recipe re-exports what recipes use)."""

import re
import string

from . import ConfigError
from . import inputs as input_store
from .schema import ENV_NAME

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
WALLTIME_RE = re.compile(r"^(\d+-)?\d{1,3}:\d{2}:\d{2}\Z")
OPTION_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(:[A-Z]+)?\Z")
ENV_RE = ENV_NAME            # the same rule as a machine file's env names
# output patterns are expanded by the remote shell, so only safe glob text
OUTPUT_RE = re.compile(r"^[A-Za-z0-9_.*?\[\]-]+(/[A-Za-z0-9_.*?\[\]-]+)*\Z")
#: the {fields} of args and run env values
ARG_FIELDS = ("geometry", "cores", "threads", "tasks", "nodes", "run")
#: values of the right type for each field, to try a format spec like {cores:04d} early
_SAMPLE_FIELDS = {"geometry": "g.gmy", "cores": 1, "threads": 1, "tasks": 1, "nodes": 1, "run": "r",
                  "inputs": input_store.Sample()}


def check_name(kind, value):
    """Names become task names and directory names: keep them plain."""
    if not isinstance(value, str) or not NAME_RE.match(value) or value in (".", ".."):
        raise ConfigError("%s name %r: use 1-64 letters, digits, '_', '.', '-' (starting with a "
                          "letter or digit)" % (kind, value))
    return value


def check_options(label, options):
    if not isinstance(options, dict):
        raise ConfigError("%s must be a dict of CMake option names to values" % label)
    for key, value in options.items():
        if not isinstance(key, str) or not OPTION_RE.match(key):
            raise ConfigError("%s: %r is not a CMake option name" % (label, key))
        if not isinstance(value, (str, int, float, bool)):
            raise ConfigError("%s: value of %s must be a string, number or bool" % (label, key))
    return dict(options)


def check_env(label, env):
    env = dict(env or {})
    for key, value in env.items():
        if not isinstance(key, str) or not ENV_RE.match(key):
            raise ConfigError("%s: %r is not an environment variable name" % (label, key))
        if not isinstance(value, (str, int, float)):
            raise ConfigError("%s: value of %s must be a string or number" % (label, key))
    return {k: str(v) for k, v in env.items()}


def check_outputs(label, outputs):
    if isinstance(outputs, str):
        outputs = [outputs]
    outputs = list(outputs)
    for pattern in outputs:
        if not isinstance(pattern, str) or not OUTPUT_RE.match(pattern) or \
                ".." in pattern.split("/"):
            raise ConfigError("%s: output pattern %r may use only letters, digits, '_.-/' and "
                              "glob characters, relative to the run directory" % (label, pattern))
    return outputs


def positive(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def check_fields(label, what, text, geometry, params=None, inputs=()):
    """``text`` of an argument or env value: its {fields} known, their format specs valid.

    ``params``: a sweep run's own fields (its parameters' values, and ``replica``).
    """
    if "\r" in text or "\0" in text:
        # a jobscript line with a carriage return reads as a DOS file
        # to sbatch; a NUL cannot pass through a shell at all
        raise ConfigError("%s: %s %r holds a carriage return or NUL byte, which no "
                          "jobscript can carry" % (label, what, text))
    if "{" not in text and "}" not in text:
        return text               # most arguments: nothing to fill in (5000 runs load faster)
    names = list(ARG_FIELDS) + list(params or ())
    known = ", ".join("{%s}" % f for f in names[:-1]) + " and {%s}" % names[-1]
    try:
        fields = [field for _text, field, _spec, _conv in string.Formatter().parse(text)
                  if field is not None]
    except ValueError as exc:
        raise ConfigError("%s: %s %r: %s (write {{ and }} for literal braces)" % (label, what, text, exc))
    for field in fields:
        if input_store.is_field(field):            # {inputs[NAME]}
            input_store.check_field(label, what, text, field, inputs)
            continue
        if field not in names:
            raise ConfigError("%s: %s %r uses {%s}; only %s are known (write {{ and }} for literal "
                              "braces)" % (label, what, text, field, known))
        if field == "geometry" and geometry is None:
            raise ConfigError("%s: %s %r uses {geometry} but the run has none" % (label, what, text))
    try:
        text.format(**dict(_SAMPLE_FIELDS, **(params or {})))
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ConfigError("%s: %s %r: %s" % (label, what, text, exc))
    return text
