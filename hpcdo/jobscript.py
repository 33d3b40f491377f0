"""Jobscripts: Jinja2 templates rendered with strict undefined.

Templates are looked up first in the project's ``jobscripts/`` (so a
machine-specific script can ``{% extends "slurm.sh.j2" %}`` and override a
block), then in the shipped machine catalogue, then beside the schedulers
in the package.  An undefined
variable is an error, never an empty string; values that go into scheduler
directives pass the ``directive`` filter, which refuses anything but plain
text, and shell values pass ``q``, which quotes them.
"""

import hashlib
import os
import shlex
import traceback

import jinja2
import jinja2.meta

from . import ConfigError
from .schedulers.base import SAFE_DIRECTIVE

BUILTIN_DIR = os.path.join(os.path.dirname(__file__), "schedulers")
CATALOGUE_DIR = os.path.join(os.path.dirname(__file__), "catalogue")


def _directive(value):
    text = str(value)
    if not SAFE_DIRECTIVE.match(text):
        raise ConfigError("value %r cannot go into a scheduler directive (letters, digits and "
                          "_.,:=+@%%/- only)" % text)
    return text


def _directive_line(value):
    """A whole directive line from a machine's ``directives`` list: any text on one line."""
    text = str(value)
    if "\n" in text or "\r" in text or "\0" in text:
        raise ConfigError("directive %r must be one line" % text)
    return text


def environment(project_dir):
    loader = jinja2.ChoiceLoader([
        jinja2.FileSystemLoader(os.path.join(project_dir, "jobscripts")),
        jinja2.FileSystemLoader(CATALOGUE_DIR),
        jinja2.FileSystemLoader(BUILTIN_DIR),
    ])
    env = jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                             autoescape=False)
    env.filters["q"] = lambda v: shlex.quote(str(v))
    env.filters["directive"] = _directive
    env.filters["directive_line"] = _directive_line
    env.hpcdo_sources = {}            # template name -> sources_digest
    return env


def render(env, name, context):
    """Render template ``name``; any template problem becomes one ConfigError line."""
    try:
        return env.get_template(name).render(**context)
    except jinja2.UndefinedError as exc:
        raise ConfigError("%s: jobscript template %s: %s" % (_template_line(exc) or name, name, exc.message))
    except (jinja2.TemplateNotFound, jinja2.TemplateSyntaxError) as exc:
        raise _unreadable(exc, name)
    except ConfigError:
        raise
    except UnicodeDecodeError as exc:
        raise ConfigError("jobscript template %s (or one it extends or includes): not UTF-8 text "
                          "(byte 0x%02x)" % (name, exc.object[exc.start]))
    except RecursionError:
        raise ConfigError("jobscript template %s extends or includes itself" % name)
    except Exception as exc:              # a template's own arithmetic, e.g. {{ cores / 0 }}
        raise ConfigError("%s: jobscript template %s: %s: %s" % (
            _template_line(exc) or name, name, type(exc).__name__, exc))


def _unreadable(exc, name):
    """The one-line error for a template that is missing or does not parse."""
    if isinstance(exc, jinja2.TemplateNotFound):
        return ConfigError("jobscript template %s not found (looked in jobscripts/, the machine "
                           "catalogue and the built-in templates)" % exc.name)
    return ConfigError("%s:%s: jobscript template syntax error: %s"
                       % (exc.filename or name, exc.lineno, exc.message))


def _template_line(exc):
    """``file:line`` of the template line that raised ``exc`` (Jinja puts it in the traceback)."""
    where = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        filename = frame.f_code.co_filename
        if filename.endswith(".j2"):
            where = "%s:%d" % (os.path.relpath(filename) if filename.startswith(os.getcwd()) else filename,
                               lineno)
    return where


def sources_digest(env, name):
    """A hash of template ``name`` and every template it extends, includes or imports.

    Together with the values a template is rendered with, this decides the
    rendered text, so a job's signature can use it instead of rendering a
    jobscript for every run on every call.
    """
    memo = env.hpcdo_sources
    if name in memo:
        return memo[name]
    h, seen, todo = hashlib.sha256(), set(), [name]
    while todo:
        one = todo.pop(0)
        if one in seen:
            continue
        seen.add(one)
        try:
            source, _filename, _uptodate = env.loader.get_source(env, one)
            refs = jinja2.meta.find_referenced_templates(env.parse(source))
        except (jinja2.TemplateNotFound, jinja2.TemplateSyntaxError) as exc:
            raise _unreadable(exc, one)
        except UnicodeDecodeError as exc:
            raise ConfigError("jobscript template %s: not UTF-8 text (byte 0x%02x)" % (one, exc.object[exc.start]))
        h.update(("%s\0%s\0" % (one, source)).encode())
        # a computed name (None) cannot be followed; its text still counts via the parent's source
        todo.extend(sorted(r for r in refs if r))
    memo[name] = h.hexdigest()
    return memo[name]
