"""The remote scripts' text: templates in ``sh/``, filled with shell text Python made.

Each file in ``sh/`` is a Jinja2 template of a POSIX ``sh`` script (or of a
part several scripts include), rendered with strict undefined.  The
delimiters are Jinja's ``{{ }}`` and ``{% %}``, which POSIX shell never
writes (a brace group is ``{ cmd; }``, with a space), and comments are
``{## ##}`` so that the shell's ``${#x}`` is not one; block tags swallow
their own line (``trim_blocks``, ``lstrip_blocks``).

A template never quotes: every value it inserts is :class:`Shell` text
that Python made, a value already quoted by :func:`quoted` (``shlex.quote``)
or a piece of hpcdo's own code (:func:`code`).  :func:`render` refuses a
plain string, so a value cannot reach a script unquoted by mistake.
"""

import os
import shlex

import jinja2

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sh")


class Shell(str):
    """Shell text made by hpcdo: a quoted value, or hpcdo's own code."""

    __slots__ = ()


def quoted(value):
    """``value`` (any text) as one shell word."""
    return Shell(shlex.quote(str(value)))


def code(text):
    """Shell text hpcdo wrote itself (or made of quoted values), to insert as it is."""
    return Shell(text)


def environment(directory):
    """The Jinja2 environment of the shell templates under ``directory``."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        comment_start_string="{##",
        comment_end_string="##}",
    )


ENV = environment(HERE)


def _check(name, value):
    """Refuse anything but Shell text, numbers, flags and containers of them."""
    if isinstance(value, (Shell, bool, int)) or value is None:
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check(name, item)
    elif isinstance(value, dict):
        for item in value.values():
            _check(name, item)
    else:
        raise TypeError("template value %s is %r, not Shell text (quote it with quoted() or mark code())"
                        % (name, value))


def render(template, env=ENV, **values):
    """The script ``template`` (a name in ``sh/``, or in ``env``'s directory) with ``values`` filled in."""
    for name, value in values.items():
        _check(name, value)
    return env.get_template(template).render(**values)


def read(name):
    """A file of ``sh/`` as it is (a program a script writes on the machine)."""
    with open(os.path.join(HERE, name)) as fh:
        return fh.read()
