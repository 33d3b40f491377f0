"""The ``hpcdo`` command: start a project, and see which machines it can use.

``hpcdo init [DIR]`` writes a working project (``dodo.py``, ``pyproject.toml``
naming hpcdo's task loader, an example recipe with a tiny CMake code, an
example machine file and a ``.gitignore``) from the templates in
``hpcdo/scaffold/``; ``hpcdo machines`` lists the shipped catalogue and the
project's own machines; ``hpcdo --version``.  Everything else is doit's:
``doit machine=NAME fetch_results`` in the project.  Bad input is one line,
``hpcdo: error: ...``, and exit status 2.
"""

import argparse
import os
import shlex
import shutil
import sys
import tempfile

from . import HpcdoError, __version__

SCAFFOLD = os.path.join(os.path.dirname(__file__), "scaffold")

#: scaffold file names that stand for names setuptools would not ship (dot files)
RENAMED = {"dot-gitignore": ".gitignore"}


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        fail(message)


def fail(message):
    sys.stderr.write("hpcdo: error: %s\n" % message)
    sys.exit(2)


def scaffold_files():
    """{path in the new project: template path}, in a stable order."""
    found = {}
    for directory, _dirs, files in os.walk(SCAFFOLD):
        for name in files:
            if not name.endswith(".j2"):
                continue
            template = os.path.join(directory, name)
            rel = os.path.relpath(template, SCAFFOLD)[:-len(".j2")]
            head, base = os.path.split(rel)
            found[os.path.join(head, RENAMED.get(base, base))] = template
    return dict(sorted(found.items()))


def render(template, values):
    """A scaffold file with ``values`` filled in; an undefined name is an error, never blank text."""
    import jinja2
    with open(template, encoding="utf-8") as fh:
        text = fh.read()
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(text).render(values)


def init(directory):
    """Write a new project into ``directory`` (made if missing); returns the files written.

    Every file is rendered first, then written into a hidden directory beside
    ``directory`` and moved into place, so a failure leaves no half project.
    """
    target = os.path.abspath(directory)
    if os.path.exists(target) and not os.path.isdir(target):
        raise HpcdoError("%s exists and is not a directory" % directory)
    files = scaffold_files()
    taken = [rel for rel in files if os.path.lexists(os.path.join(target, rel))]
    if taken:
        named = ", ".join(taken[:3]) + (" and %d more" % (len(taken) - 3) if len(taken) > 3 else "")
        raise HpcdoError("%s already has %s; nothing was written (init never overwrites a file: use an "
                         "empty or new directory)" % (directory, named))
    for rel in files:
        parent = os.path.dirname(rel)
        while parent:
            path = os.path.join(target, parent)
            if os.path.lexists(path) and not os.path.isdir(path):
                raise HpcdoError("%s exists and is not a directory; nothing was written"
                                 % os.path.join(directory, parent))
            parent = os.path.dirname(parent)
    values = {"name": os.path.basename(target) or "project", "version": __version__}
    try:
        texts = {rel: render(template, values) for rel, template in files.items()}
    except Exception as exc:   # a broken template of hpcdo's own: said, and nothing written
        raise HpcdoError("the project template could not be filled in (%s); nothing was written" % exc)
    parent = os.path.dirname(target)
    try:
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".hpcdo-init-", dir=parent)
    except OSError as exc:
        raise HpcdoError("cannot write in %s: %s; nothing was written" % (parent, exc.strerror or exc))
    moved, made = [], []
    try:
        for rel, text in texts.items():
            path = os.path.join(staging, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        made = sorted({d for rel in texts for d in _parents(target, rel) if not os.path.isdir(d)})
        os.makedirs(target, exist_ok=True)
        for rel in texts:
            dest = os.path.join(target, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            if os.path.lexists(dest):      # appeared meanwhile: never overwritten
                raise HpcdoError("%s appeared while init wrote the project" % dest)
            os.rename(os.path.join(staging, rel), dest)
            moved.append(rel)
    except (OSError, HpcdoError) as exc:
        left = _take_back(target, moved, made)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise HpcdoError("init %s stopped: %s; %s" % (directory, reason, left))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return list(texts)


def _parents(target, rel):
    """``target`` and each directory between it and ``rel``."""
    found, parent = [target], os.path.dirname(rel)
    while parent:
        found.append(os.path.join(target, parent))
        parent = os.path.dirname(parent)
    return found


def _take_back(target, moved, made):
    """Remove what a failed init wrote (files, and the directories it made); say what is left."""
    left = []
    for rel in reversed(moved):
        try:
            os.remove(os.path.join(target, rel))
        except OSError:
            left.append(rel)
    for directory in sorted(made, key=len, reverse=True):
        try:
            os.rmdir(directory)
        except OSError:
            pass
    return "it left %s" % ", ".join(left) if left else "nothing was written"


def machines(project_dir):
    """Lines: each machine the project sees, its other names, its scheduler and where it is defined;
    then a note for each alias of hpcdo's that gave way to a project's name."""
    from .aliases import of
    from .config import BUILTIN, CATALOGUE_DIR, Catalogue
    catalogue = Catalogue(project_dir)
    rows = []
    for name in catalogue.names():
        try:
            machine = catalogue.machine(name)
        except HpcdoError as exc:
            rows.append((name, ", ".join(of(catalogue.aliases, name)) or "-", "?", "error: %s" % exc))
            continue
        layers = catalogue.entries[name]
        where = []
        for layer in layers:
            path = layer.where
            if path == BUILTIN:
                label = "built in"
            elif os.path.dirname(path) == CATALOGUE_DIR:
                label = "catalogue (hpcdo/catalogue/%s)" % os.path.basename(path)
            else:
                label = os.path.relpath(path, project_dir)
            if label not in where:
                where.append(label)
        rows.append((name, ", ".join(machine.aliases) or "-", machine.scheduler, ", ".join(where)))
    head = ("machine", "aliases", "scheduler", "defined in")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(3)]
    lines = ["  ".join("%-*s" % (w, c) for w, c in zip(widths, r[:3])) + "  " + r[3] for r in [head] + rows]
    lines += ["note: %s" % note for _name, notes in sorted(catalogue.alias_notes.items()) for note in notes]
    return lines


def main(argv=None):
    parser = _Parser(prog="hpcdo", description="Start an hpcdo project and list its machines; "
                     "everything else is `doit machine=NAME TASK` in the project (see README.md).")
    parser.add_argument("--version", action="version", version="hpcdo %s" % __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    one = sub.add_parser("init", help="write a new project (dodo.py, pyproject.toml, an example recipe, "
                         "machines/, .gitignore) into DIR (default: here)")
    one.add_argument("dir", nargs="?", default=".", metavar="DIR")
    two = sub.add_parser("machines", help="list the machines a project can use, their schedulers and "
                         "where each is defined")
    two.add_argument("--project", default=".", metavar="DIR", help="the project (default: here)")
    args = parser.parse_args(argv)
    try:
        if args.command == "init":
            written = init(args.dir)
            here = os.path.abspath(args.dir) == os.path.abspath(".")
            print("hpcdo: wrote %s in %s" % (", ".join(written), args.dir))
            print("next:%s doit fetch_results      # build and run the example on this computer"
                  % ("" if here else " cd %s &&" % shlex.quote(args.dir)))
            print("      then add your machine to machines/ and your code's recipe to recipes/ (README.md)")
        elif args.command == "machines":
            if not os.path.isdir(args.project):
                fail("%s is not a directory" % args.project)
            print("\n".join(machines(args.project)))
        else:
            parser.print_help()
            return 2
    except HpcdoError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
