"""``doit machine=X check``: is a machine ready for hpcdo, and if not, what to change where.

One remote script (:func:`hpcdo.remote.machine_check.check_script`) asks the
machine everything in one round trip: the login, the work root (writable,
free space, quota), the module system and every listed module, cmake and
the compilers, the scheduler's commands, and whether the scheduler would
take a job with the machine's partition, account and qos (its test or
verify mode: nothing is submitted).  The clock offset comes from the
machine's ``date`` at the script's start and end and this computer's clock
around the call.  Here the answer becomes a table, one OK, WARN, FAIL or
INFO line per finding, each FAIL followed by the machine file (and line)
to change, from :meth:`hpcdo.config.Machine.where`.

The check needs no recipe: :func:`machine_only` gives it the machine and a
session when the project's recipes cannot be loaded.
"""

import math
import os
import re
import shlex
import time

from .. import HpcdoError
from .. import config, jobscript
from ..remote import auth, machine_check, scripts
from ..session import Session

#: below this much free space in the work root, a warning (bytes)
LOW_SPACE = 1 << 30

#: a clock this far off (seconds, beyond what the round trip leaves unknown) is a warning:
#: uploaded files keep this computer's times, which make then sees in its future
CLOCK_SLACK = 2.0

#: which keys a finding's FAIL line points at
FIX_KEYS = {
    "root": ("remote_root",), "module_init": ("module_init",), "module": ("modules",),
    "cmake": ("cmake", "modules"), "cc": ("modules", "env"), "cxx": ("modules", "env"),
    "command": ("scheduler", "shell_setup"), "queue": ("shell_setup", "scheduler"),
}

LABELS = {
    "connection": "connection", "login": "login output", "shell": "login shell", "root": "work root",
    "space": "free space", "quota": "quota", "module_init": "module init", "module_system": "module system",
    "module": "module", "cmake": "cmake", "cc": "C compiler", "cxx": "C++ compiler", "fc": "Fortran",
    "mpicc": "MPI compiler", "command": "command", "queue": "scheduler", "job_test": "job test",
    "associations": "associations", "jobscript": "jobscript", "clock": "clock", "note": "note",
}


class MachineOnly:
    """What the check needs of a project whose recipes could not be loaded: its machine and session."""

    def __init__(self, project_dir, machine_name, overrides=None, broken=None):
        self.broken = broken          # why the whole project did not load
        self.dir = os.path.abspath(project_dir)
        self.catalogue = config.Catalogue(self.dir)
        self.machine = self.catalogue.machine(machine_name, config.parse_overrides(overrides or {}))
        self.session = Session(self.machine)


def kind(scheduler):
    """The family of ``scheduler`` whose test mode the check uses: slurm, sge, pbs, lsf or local."""
    return scheduler.family


def test_jobscript(machine, scheduler, project_dir):
    """(the jobscript the scheduler's test mode is given, a warning or None).

    It is the machine's own template, with the machine's partition, account,
    qos, pe, memory and directives, for one run of the machine's cores
    (nodes as ``corespernode`` needs), ten minutes, and ``true`` as its
    command.  A project template that will not render for it is said, and
    the built-in one is used.
    """
    cores = int(machine.cores or 1)
    cpn = min(cores, machine.corespernode or cores)
    nodes = int(math.ceil(cores / float(cpn)))
    values = {"job_name": scheduler.job_name("hpcdo", "check", machine.max_job_name_chars),
              "recipe": "hpcdo", "run": "check", "machine": machine.name, "cores": nodes * cpn,
              "threads": 1, "tasks": nodes * cpn, "nodes": nodes, "cpn": cpn, "walltime": "00:10:00",
              "partition": machine.partition, "account": machine.account, "qos": machine.qos,
              "pe": machine.pe, "memory": machine.memory, "directives": list(machine.directives or []),
              "corespernode": machine.corespernode, "setup": [], "command": "true"}
    templates = jobscript.environment(project_dir)
    name = machine.jobscript or scheduler.template
    try:
        return jobscript.render(templates, name, values), None
    except HpcdoError as exc:
        if name == scheduler.template:
            raise
        return jobscript.render(templates, scheduler.template, values), \
            "%s does not render for the check (%s): tested with the built-in %s" % (name, exc, scheduler.template)


def fix(machine, *keys, base=None):
    """Where to change ``keys``: the file and line that set each, or where to set it.

    ``base``: the project's directory, which files in it are named from.
    """
    said = []
    for key in keys:
        where = machine.where(key)
        if where == config.COMMAND_LINE:
            said.append("'%s' given on the command line (%s=...)" % (key, key))
        elif where == "defaults" or _shipped(where):
            # hpcdo's own files: the user's setting goes in the project's
            said.append("'%s': set it under '%s:' in %s%s" % (
                key, machine.name, _short(_own_file(machine), base),
                "" if where == "defaults" else " (now from %s)" % _short(where, PACKAGE_PARENT)))
        else:
            said.append("'%s' in %s" % (key, _short(where, base)))
    return "change " + ", or ".join(said)


#: the directory holding the hpcdo package: shipped files are named from it (hpcdo/machines.yml)
PACKAGE_PARENT = os.path.dirname(os.path.dirname(config.BUILTIN))


def _shipped(where):
    return where.startswith(os.path.dirname(config.BUILTIN) + os.sep)


def _short(where, base):
    """``where`` (a file, or file:line) named from ``base`` when it lies under it."""
    if base and os.path.isabs(where) and where.startswith(os.path.join(base, "")):
        return os.path.relpath(where, base)
    return where


def _own_file(machine):
    """The project file that describes the machine, else the personal machines_user.yml."""
    for key in ("host", "scheduler", "remote_root", "description"):
        where = machine.where(key)
        if where not in ("defaults", config.COMMAND_LINE) and not _shipped(where):
            return where.rsplit(":", 1)[0]
    return "machines/" + config.USER_FILE


class Report:
    """The check's rows: (status, label, detail, fix or None)."""

    def __init__(self, machine, base=None):
        self.machine, self.base = machine, base
        self.rows = []

    def add(self, status, name, detail, *fix_keys, fix_text=None):
        if status == "FAIL" and fix_keys and fix_text is None:
            fix_text = fix(self.machine, *fix_keys, base=self.base)
        self.rows.append((status, LABELS.get(name, name), detail or "", fix_text if status == "FAIL" else None))

    @property
    def failed(self):
        return sum(1 for row in self.rows if row[0] == "FAIL")

    def table(self, title):
        width = max([len(label) for _s, label, _d, _f in self.rows] + [4])
        lines = [title]
        for status, label, detail, fix_text in self.rows:
            lines.append("%-4s  %-*s  %s" % (status, width, label, detail))
            if fix_text:
                lines.append("%-4s  %-*s  -> %s" % ("", width, "", fix_text))
        return "\n".join(lines)


def check_machine(project):
    """(the check's table for ``project``'s machine, how many checks failed)."""
    machine, session = project.machine, project.session
    remote, scheduler = session.remote, session.scheduler
    report = Report(machine, project.dir)
    title = "check of machine %s (%s, scheduler %s)" % (machine.name, remote.host, machine.scheduler)
    if getattr(project, "broken", None):
        report.add("WARN", "recipes", "the project does not load (%s): the machine alone is checked"
                   % project.broken)
    for note in getattr(machine, "notes", None) or []:
        report.add("INFO", "note", note)
    family = kind(scheduler)
    text = warning = None
    try:
        if family != "local":
            text, warning = test_jobscript(machine, scheduler, project.dir)
    except HpcdoError as exc:
        report.add("FAIL", "jobscript", str(exc), "jobscript")
    if warning:
        report.add("WARN", "jobscript", warning)
    cmake = machine.cmake
    try:
        shlex.split(cmake)
    except ValueError:
        report.add("FAIL", "cmake", "cmake %r has an unbalanced quote" % cmake, "cmake")
        cmake = "cmake"
    compilers = {name: (machine.cmake_options or {}).get("CMAKE_%s_COMPILER" % lang)
                 for name, lang in (("cc", "C"), ("cxx", "CXX"), ("fc", "Fortran"))}
    script = machine_check.check_script(
        machine.remote_root, scheduler, family, machine.modules or [], machine.module_init, machine.env or {},
        cmake, {k: str(v) for k, v in compilers.items() if v}, text, machine.partition, machine.account,
        launcher=_launcher(machine))
    try:
        remote.connect()
        sent = time.time()
        # the machine's env may carry licence tokens: by stdin, never in ``ps``
        result = remote.run(script, what="check", check=False, private=True)
        back = time.time()
    except HpcdoError as exc:
        report.add("FAIL", "connection", str(exc), fix_text=_connection_fix(machine, exc, project.dir))
        return report.table(title), report.failed
    answer = scripts.parse_check(result.text)
    if answer.start is None:
        report.add("FAIL", "connection", "%s ran no shell script (exit %s): %s" % (
            remote.host, result.exit_code, _last_lines(result.tail(3))),
            fix_text="the login must run 'sh -s' with a script on its input: ask the site what runs "
                     "instead of your login shell (a forced command, a restricted shell)")
        return report.table(title), report.failed
    _judge(report, machine, answer, remote.host, family)
    if result.exit_code != 0 or answer.end is None:
        last = LABELS.get(answer.rows[-1][0], answer.rows[-1][0]) if answer.rows else "the start"
        report.add("FAIL", "connection", "the check script stopped early (exit %s) after %s: %s"
                   % (result.exit_code, last, _last_lines(result.error_text)), "module_init", "modules",
                   "shell_setup")
    _clock(report, answer, sent, back)
    return report.table(title), report.failed


def _last_lines(text, count=3):
    """The last lines of ``text`` on one line, for a row of the table."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-count:]) or "no message"


def _launcher(machine):
    """The program that starts a run inside a job, when there is one."""
    text = machine.run_command or (machine.launcher if machine.launcher not in (None, "none") else None)
    try:
        words = shlex.split(text) if text else []
    except ValueError:
        return None                    # a run_command that does not split: every run's jobscript says so
    return words[0] if words and "$" not in words[0] else None


def _connection_fix(machine, exc, base):
    lowered = str(exc).lower()
    # through the persist agent a login's refusal arrives as its line only
    if isinstance(exc, auth.LoginError) or any(
            words in lowered for words in ("interactive login", "askpass program", "one-time code")):
        # a two-factor login nobody could answer, a refused code, an askpass that failed:
        # the line itself says what to do (a terminal, a new code); the setting is askpass
        if "askpass program" in lowered:
            return fix(machine, "askpass", base=base) + " (or HPCDO_ASKPASS)"
        if "interactive login" in lowered:
            return ("log in once from a terminal (the connection is then kept), or name an askpass "
                    "program: " + fix(machine, "askpass", base=base))
        return "call again with a new code; if every code is refused, check 'user' with the site"
    if "jump host" in lowered:
        keys = ("proxy_jump", "known_hosts") if "host key" in lowered else ("proxy_jump",)
    elif "host key" in lowered:
        keys = ("known_hosts",)
    elif "identity_file" in lowered or "authentication" in lowered or "permission denied" in lowered:
        keys = ("user", "identity_file")
    else:
        keys = ("host", "port")
    return fix(machine, *keys, base=base)


def _judge(report, machine, answer, host, family):
    """The rows of the script's findings, in the order the script found them."""
    user = answer.found("user")
    report.add("OK", "connection", "%s, logged in as %s" % (host, user[0][1] if user else "?"))
    if answer.before:
        report.add("WARN", "login", "start-up files print text before every command: %r; print only in "
                   "interactive shells (case $- in *i*)" % answer.before[:120])
    for name, status, detail in answer.rows:
        if name == "user":
            continue
        if name == "shell" and os.path.basename(detail) in ("csh", "tcsh"):
            # the check came by stdin (sh -s), which csh runs; other calls are sh -c '<lines>'
            report.add("FAIL", name, "%s cannot run hpcdo's commands (sh -c with a script of several lines: "
                       "\"Unmatched '\")" % detail,
                       fix_text="make your login shell bash or sh (chsh -s /bin/bash, or ask the site)")
        elif name == "shell":
            report.add("INFO", name, detail or "unknown")
        elif name == "space":
            _space(report, detail)
        elif name == "quota":
            report.add("WARN" if "*" in detail else "INFO", name, detail or "no quota reported")
        elif name == "module_system" and status == "-":
            if machine.modules:
                report.add("FAIL", name, "no module command, and modules are listed: set module_init to the "
                           "module system's sh init file (Lmod: .../lmod/init/sh)", "module_init")
            else:
                report.add("INFO", name, "no module command (no modules listed)")
        elif name == "command" and status == "-":
            optional = detail.startswith(("accounting:", "launcher:"))
            report.add("WARN" if optional else "FAIL", name, detail, "scheduler", "shell_setup")
        elif name == "job_test":
            _job_test(report, machine, status, detail)
        else:
            report.add(status, name, detail, *FIX_KEYS.get(name, ()))
    if answer.associations is not None:
        _associations(report, machine, answer.associations)
    elif family == "slurm" and (machine.account or machine.qos):
        report.add("INFO", "associations", "this Slurm keeps no associations (no slurmdbd): account and "
                   "qos are not enforced, nor checked")


def _space(report, detail):
    words = detail.split(None, 1)
    if not words or not words[0].isdigit():
        report.add("WARN", "space", "df gave no answer for the work root")
        return
    free = int(words[0]) * 1024
    text = "%.1f GiB free on %s" % (free / float(1 << 30), words[1] if len(words) > 1 else "?")
    report.add("WARN" if free < LOW_SPACE else "OK", "space", text)


def _job_test(report, machine, status, detail):
    """The scheduler's verdict on a job like the machine's, with the keys its refusal names."""
    if status == "-":                  # PBS or LSF: the queue exists, nothing more can be asked
        if re.search(r"\bno\b|closed|inact", detail, re.IGNORECASE):
            report.add("WARN", "job_test", "queue %s exists but takes or starts no jobs now: %s"
                       % (machine.partition, detail))
        else:
            report.add("OK", "job_test", "queue %s exists (account and resources not checked: no test "
                       "submission here)" % machine.partition)
        return
    if status != "FAIL":
        report.add(status, "job_test", detail)
        return
    lowered = detail.lower()
    keys = [key for key, words in (("partition", ("partition", "queue")), ("account", ("account", "project")),
                                   ("qos", ("qos",)), ("pe", ("parallel environment",)),
                                   ("memory", ("memory", "h_vmem")))
            if any(w in lowered for w in words) and (key != "pe" or machine.pe)]
    report.add("FAIL", "job_test", detail, *(keys or ["partition", "account", "qos", "directives"]))


def _associations(report, machine, triples):
    """Slurm's associations (account, partition, qos): the machine's account and qos must be among them."""
    accounts = {a for a, _p, _q in triples if a}
    qoses = {one for _a, _p, q in triples for one in q.split(",") if one}
    if machine.account and machine.account not in accounts:
        report.add("FAIL", "associations", "account %s is not one of yours: %s"
                   % (machine.account, ", ".join(sorted(accounts)) or "none"), "account")
    if machine.qos and qoses and machine.qos not in qoses:
        report.add("FAIL", "associations", "qos %s is not one you may use: %s"
                   % (machine.qos, ", ".join(sorted(qoses))), "qos")
    if (not machine.account or machine.account in accounts) and (not machine.qos or machine.qos in qoses):
        report.add("OK", "associations", "accounts %s" % (", ".join(sorted(accounts)) or "none"))


def _clock(report, answer, sent, back):
    """The machine's clock against this computer's, the round trip taken out."""
    if answer.end is None:
        return
    trip = max(0.0, (back - sent) - (answer.end - answer.start))
    offset = answer.start - (sent + trip / 2)
    unsure = trip / 2 + (1.0 if answer.start == int(answer.start) else 0.0)
    text = "the machine's clock is %+.2f s off this computer's (round trip %.2f s)" % (offset, trip)
    if abs(offset) - unsure > CLOCK_SLACK:
        report.add("WARN", "clock", text + ": uploaded files keep this computer's times, which make may then "
                   "see in the future ('Clock skew detected'); ask the site, or fix this computer's clock")
    else:
        report.add("OK", "clock", text)
