"""The script of ``doit machine=X check``: everything it asks the machine, in one round trip.

Rendered from ``sh/check.sh`` like every remote script (:mod:`hpcdo.remote.scripts`);
its answer is read by :func:`hpcdo.remote.answers.parse_check`.
"""

import shlex

from .scripts import command_words, q, root_expr, setup_lines, words
from .shell import code, quoted, render

#: how each kind of scheduler is asked whether it answers at all (``$u``: the user)
CHECK_QUERIES = {"slurm": '%s -h -u "$u" -o %%i', "sge": '%s -u "$u"', "pbs": "%s -Q", "lsf": "bqueues"}


def check_script(remote_root, scheduler, kind, modules=(), module_init=None, env=None, cmake="cmake",
                 compilers=None, jobscript=None, partition=None, account=None, launcher=None):
    """Everything ``doit machine=X check`` asks, in one script (``sh/check.sh``; read by :func:`parse_check`).

    ``kind``: slurm, sge, pbs, lsf or local, the family of ``scheduler``.
    ``compilers``: {"cc"|"cxx"|"fc": the compiler CMake is told to use}, or
    none for CC, CXX, FC and the usual names.  ``jobscript``: the text
    given to the scheduler's test mode (never submitted); ``partition`` and
    ``account`` are what Slurm's PBS wrappers and PBS's or LSF's queue
    listing are asked about; ``launcher``: the program that starts a run in
    a job.  The work root is never created.
    """
    compilers = compilers or {}
    setup = setup_lines(list(modules), module_init, {})
    init = [code(setup.pop(0))] if module_init else []
    if kind == "local":
        commands = [("jobs run with", "bash"), ("jobs followed with", "ps")]
    else:
        commands = [(role, command) for role, command in (
            ("submit", scheduler.submit_command), ("queue", scheduler.queue_command),
            ("cancel", scheduler.cancel_command), ("accounting", scheduler.accounting_command)) if command]
    commands += [("launcher", launcher)] if launcher else []
    query = CHECK_QUERIES.get(kind, "true")
    query = query % scheduler.queue_command if "%s" in query else query
    wrapped = ["-n", "1"] + (["-p", partition] if partition else []) + (["-A", account] if account else [])
    return render(
        "check.sh", root=code(root_expr(remote_root)), kind=code(kind),
        init=init[0] if init else None,
        init_path=code(root_expr(module_init)) if module_init else None,
        modules=[(quoted(" ".join(shlex.split(line)[1:])), code(line)) for line in setup],
        exports=[code("export %s=%s" % (k, q(str(v)))) for k, v in sorted((env or {}).items())],
        cmake=command_words(cmake),
        cc=quoted(compilers["cc"]) if compilers.get("cc") else code('"${CC:-}"'),
        cxx=quoted(compilers["cxx"]) if compilers.get("cxx") else code('"${CXX:-}"'),
        fc=quoted(compilers["fc"]) if compilers.get("fc") else code('"${FC:-}"'),
        commands=[(quoted(role), quoted(command)) for role, command in commands],
        query=code("tm " + query), query_text=quoted(query.replace('"$u"', "$USER") + " answers"),
        jobscript=quoted(jobscript) if jobscript else None,
        submit_command=code(scheduler.submit_command or "true"),
        queue_command=code(scheduler.queue_command or "true"),
        partition=quoted(partition) if partition else None, wrapped=words(wrapped))
