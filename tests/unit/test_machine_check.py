"""``doit machine=X check``: its one script under dash and bash with fake commands, and its table.

The machine is a directory of this computer: the check's script runs under
each shell with fakes first on PATH (sbatch, squeue, cmake, a module system
defined by a ``module_init`` file ...), through a stand-in for the
connection, and :func:`hpcdo.steps.check.check_machine` makes the table.
Each FAIL must name the machine file and line to change; nothing may be
submitted, created in the work root or left behind.
"""

import os
import subprocess
import textwrap
import types

import pytest

from hpcdo import RemoteError, config
from hpcdo.remote import scripts
from hpcdo.remote.connection import Result
from hpcdo.schedulers import get
from hpcdo.steps import check

SHELLS = ["dash", "bash"]
NASTY = "a b $(touch PWNED) `touch PWNED` q'uote"

#: fake commands: name -> body (each also logs its arguments, one per line)
FAKES = {
    # the test mode answers from the jobscript's partition; a real submission leaves a mark
    "sbatch": textwrap.dedent("""\
        [ "$1" = --test-only ] || { touch "$HOME/SUBMITTED"; exit 0; }
        if grep -q -- '--partition=debug' job.sh; then
          echo "sbatch: Job 17 to start at 2026-01-01T00:00:00 using 1 processors on nodes n1 in partition debug" >&2
        else
          echo "sbatch: error: invalid partition specified: $(sed -n 's/^#SBATCH --partition=//p' job.sh)" >&2; exit 1
        fi"""),
    "squeue": "exit 0", "scancel": "exit 0", "sacct": "exit 0", "srun": "exit 0",
    "cmake": 'echo "cmake version 3.99.1"',
    "cc": 'echo "cc (Fake) 12.2.0"', "c++": 'echo "c++ (Fake) 12.2.0"',
}

#: a module system: "good/*" loads, anything else is unknown
MODULE_INIT = textwrap.dedent("""\
    module() {
      case "$1" in
        --version) echo "Modules Release 9.9.9" >&2;;
        load) case "$2" in good/*) GOOD_LOADED=1; export GOOD_LOADED;;
              *) echo "ERROR: Unable to locate a modulefile for '$2'" >&2; return 1;; esac;;
      esac
    }
    """)


class Here:
    """The machine: this computer's shell with fakes on PATH, seen through a stand-in for the connection."""

    host = "fake@machine:22"

    def __init__(self, tmp, shell):
        self.tmp, self.shell = tmp, shell
        self.home = tmp / "home"
        self.bin = tmp / "bin"
        self.log = tmp / "calls"
        for d in (self.home, self.bin, self.log):
            d.mkdir()
        for name, body in FAKES.items():
            self.fake(name, body)
        self.scripts = []

    def fake(self, name, body):
        path = self.bin / name
        path.write_text("#!/bin/sh\nfor a in \"$@\"; do printf '%%s\\n' \"$a\"; done >> '%s/%s'\n%s\n"
                        % (self.log, name, body))
        path.chmod(0o755)

    def calls(self, name):
        path = self.log / name
        return path.read_text().splitlines() if path.exists() else []

    def connect(self):
        pass

    def run(self, script, what="", check=True, private=False):
        assert private, "the check carries the machine's env: it must go by stdin"
        self.scripts.append(script)
        env = dict(os.environ, HOME=str(self.home), PATH="%s:%s" % (self.bin, os.environ["PATH"]))
        proc = subprocess.run([self.shell, "-s"], input=script.encode(), cwd=str(self.home), env=env,
                              capture_output=True, timeout=120)
        assert not list(self.tmp.rglob("PWNED")), "a value ran as code"
        return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(params=SHELLS)
def here(request, tmp_path):
    return Here(tmp_path, request.param)


def project(tmp_path, here, body, **overrides):
    """A project whose machine ``fake`` is ``body`` (YAML lines) in machines/fake.yml, on ``here``."""
    (tmp_path / "project" / "machines").mkdir(parents=True)
    (tmp_path / "project" / "machines" / "fake.yml").write_text(
        "fake:\n  host: machine.example.org\n  scheduler: slurm\n  remote_root: %s\n%s"
        % (here.home / "work" / "root", textwrap.indent(textwrap.dedent(body), "  ")))
    catalogue = config.Catalogue(str(tmp_path / "project"))
    machine = catalogue.machine("fake", config.parse_overrides(overrides))
    session = types.SimpleNamespace(remote=here, scheduler=get(machine.scheduler))
    return types.SimpleNamespace(machine=machine, session=session, dir=str(tmp_path / "project"))


def rows(table):
    """{label: [(status, detail, fix line or None)]} of a check's table."""
    found, last = {}, None
    for line in table.splitlines()[1:]:
        if line.lstrip().startswith("-> ") and last:
            last[2] = line.strip()[3:]
            continue
        status, rest = line[:4].strip(), line[6:]
        label, _, detail = rest.partition("  ")
        last = [status, detail.strip(), None]
        found.setdefault(label.strip(), []).append(last)
    return found


def test_a_ready_machine_is_all_ok_and_nothing_is_submitted_or_left(tmp_path, here):
    p = project(tmp_path, here, "partition: debug\nlauncher: srun\n")
    table, failed = check.check_machine(p)
    got = rows(table)
    assert failed == 0, table
    assert got["connection"][0][0] == "OK" and "fake@machine:22" in got["connection"][0][1]
    assert got["job test"] == [["OK", "sbatch: Job 17 to start at 2026-01-01T00:00:00 using 1 processors on "
                                      "nodes n1 in partition debug", None]], table
    assert got["cmake"][0][:2] == ["OK", "cmake version 3.99.1"]
    assert got["C compiler"][0][0] == "OK" and "cc (Fake) 12.2.0" in got["C compiler"][0][1]
    assert [r[0] for r in got["command"]] == ["OK"] * 5, table       # sbatch squeue scancel sacct srun
    assert got["clock"][0][0] == "OK", table
    assert "does not exist yet" in got["work root"][0][1]
    # test mode only, the work root not made, the temporary directory gone
    assert here.calls("sbatch")[0] == "--test-only"
    assert not (here.home / "SUBMITTED").exists()
    assert not (here.home / "work").exists()
    assert sorted(os.listdir(here.home)) == []


def test_a_wrong_partition_fails_naming_the_file_and_line(tmp_path, here):
    p = project(tmp_path, here, "partition: nosuch\n")
    table, failed = check.check_machine(p)
    status, detail, fix = rows(table)["job test"][0]
    assert failed == 1 and status == "FAIL", table
    assert "invalid partition specified: nosuch" in detail
    assert fix == "change 'partition' in machines/fake.yml:5", table


def test_a_wrong_partition_on_the_command_line_says_so(tmp_path, here):
    p = project(tmp_path, here, "partition: debug\n", partition="other")
    table, failed = check.check_machine(p)
    assert failed == 1
    assert rows(table)["job test"][0][2] == "change 'partition' given on the command line (partition=...)"


def test_each_module_is_loaded_in_order_and_a_wrong_one_fails(tmp_path, here):
    init = tmp_path / "modules.sh"
    init.write_text(MODULE_INIT)
    p = project(tmp_path, here, "partition: debug\nmodule_init: %s\nmodules: [good/1, nosuch/2, load good/3]\n"
                % init)
    table, failed = check.check_machine(p)
    got = rows(table)
    assert got["module init"][0][0] == "OK"
    assert got["module system"][0][:2] == ["OK", "Modules Release 9.9.9"]
    assert [(r[0], r[1].split(":")[0]) for r in got["module"]] == [
        ("OK", "load good/1"), ("FAIL", "load nosuch/2"), ("OK", "load good/3")], table
    assert "Unable to locate a modulefile for 'nosuch/2'" in got["module"][1][1]
    assert got["module"][1][2] == "change 'modules' in machines/fake.yml:7"
    assert failed == 1


def test_modules_without_a_module_command_point_at_module_init(tmp_path, here):
    p = project(tmp_path, here, "partition: debug\nmodules: [good/1]\n")
    table, failed = check.check_machine(p)
    got = rows(table)
    assert got["module system"][0][0] == "FAIL" and "module_init" in got["module system"][0][1]
    assert got["module system"][0][2] == "change 'module_init': set it under 'fake:' in machines/fake.yml", table
    assert got["module"][0][0] == "FAIL" and failed == 2


def test_a_missing_module_init_file_is_one_fail_not_the_end_of_the_script(tmp_path, here):
    p = project(tmp_path, here, "partition: debug\nmodule_init: /nonexistent/init.sh\n")
    table, failed = check.check_machine(p)
    got = rows(table)
    assert got["module init"][0][0] == "FAIL" and "/nonexistent/init.sh" in got["module init"][0][1]
    assert got["clock"][0][0] == "OK", "the script went on to the end"
    assert failed == 1


def test_missing_commands_and_compilers_fail(tmp_path, here):
    # names this computer has no program for: Tianhe's renamed Slurm, a cmake and a C compiler
    p = project(tmp_path, here, "partition: debug\ncmake: nosuchcmake\ncmake_options: {CMAKE_C_COMPILER: "
                "/nonexistent/cc}\n", scheduler="tianhe")
    table, failed = check.check_machine(p)
    got = rows(table)
    assert got["command"][0][0] == "FAIL" and "submit: yhbatch not found" in got["command"][0][1]
    assert "'scheduler' given on the command line" in got["command"][0][2], table
    assert "'shell_setup': set it under 'fake:' in machines/fake.yml (now from hpcdo/machines.yml:" \
        in got["command"][0][2], table
    assert got["cmake"][0][0] == "FAIL" and "'cmake' in" in got["cmake"][0][2]
    assert got["C compiler"][0][:2] == ["FAIL", "not found: /nonexistent/cc"]
    assert failed >= 3


def test_hostile_values_reach_the_shell_as_data(tmp_path, here):
    init = tmp_path / "modules.sh"
    init.write_text(MODULE_INIT)
    p = project(tmp_path, here, "partition: debug\nmodule_init: %s\n" % init,
                modules="[%s]" % NASTY.replace("'", "''").join("''"), env="{X: %s}" % NASTY.join('""'),
                cmake=NASTY, remote_root=str(here.home / "r" / NASTY))
    table, _failed = check.check_machine(p)          # Here.run asserts that no PWNED file appeared
    got = rows(table)
    assert got["module"][0][0] == "FAIL" and "load " + NASTY in got["module"][0][1]
    assert got["cmake"][0] == ["FAIL", "cmake %r has an unbalanced quote" % NASTY,
                               "change 'cmake' given on the command line (cmake=...)"], table


def test_associations_check_account_and_qos(tmp_path, here):
    here.fake("sacctmgr", 'echo "proj1||normal,long"; echo "proj2|debug|normal"')
    table, failed = check.check_machine(project(tmp_path, here, "partition: debug\naccount: proj2\nqos: long\n"))
    assert failed == 0 and rows(table)["associations"][0][:2] == ["OK", "accounts proj1, proj2"], table
    table, failed = check.check_machine(project(tmp_path / "b", here, "partition: debug\naccount: nope\n"))
    status, detail, fix = rows(table)["associations"][0]
    assert (status, detail) == ("FAIL", "account nope is not one of yours: proj1, proj2"), table
    assert fix.startswith("change 'account' in ") and fix.endswith("fake.yml:6")


def test_a_refused_connection_is_one_fail_line(tmp_path, here):
    p = project(tmp_path, here, "partition: debug\n")

    def refuse():
        raise RemoteError("host key of machine fake (fake@machine:22) is not known: refusing to connect. "
                          "Check the key's fingerprint with the site, then trust it with: ssh-keyscan ...")
    here.connect = refuse
    table, failed = check.check_machine(p)
    got = rows(table)
    assert failed == 1 and list(got) == ["connection"], table
    assert got["connection"][0][1].startswith("host key of machine fake")
    assert got["connection"][0][2] == "change 'known_hosts': set it under 'fake:' in machines/fake.yml"


@pytest.mark.parametrize("message, wanted", [
    ("machine fake needs an interactive login (a one-time code or password), and there is no terminal ...",
     ["log in once from a terminal (the connection is then kept), or name an askpass program: "
      "change 'askpass': set it under 'fake:' in machines/fake.yml"]),
    ("machine fake: the askpass program /x/askpass failed (exit 1): no login",
     ["change 'askpass' in machines/fake.yml:6 (or HPCDO_ASKPASS)"]),
    ("machine fake (u@h:22): the server refused the one-time code or password. Nothing was retried ...",
     ["call again with a new code; if every code is refused, check 'user' with the site"]),
    ("host key of jump host gw (u@gw:22) of machine fake is not known: refusing to connect ...",
     ["change 'proxy_jump': set it under 'fake:' in machines/fake.yml", "'known_hosts'"]),
])
def test_a_refused_login_says_what_to_change(tmp_path, here, message, wanted):
    """A two-factor login nobody answered, a failing askpass, a refused code, an unknown jump
    host: each FAIL names what to do about it, not the host and port."""
    p = project(tmp_path, here, "partition: debug\naskpass: /x/askpass\n" if "askpass program" in message
                else "partition: debug\n")

    def refuse():
        raise RemoteError(message)
    here.connect = refuse
    table, failed = check.check_machine(p)
    assert failed == 1
    said = rows(table)["connection"][0][2]
    assert said.startswith(wanted[0]) and all(w in said for w in wanted), table
    assert "'host'" not in said and "'port'" not in said, table


def test_a_login_that_runs_no_script_is_a_fail_line(tmp_path, here):
    p = project(tmp_path, here, "partition: debug\n")
    here.run = lambda script, **kw: Result(1, b"", b"This account is currently not available.\n")
    table, failed = check.check_machine(p)
    status, detail, fix = rows(table)["connection"][0]
    assert (failed, status) == (1, "FAIL") and "This account is currently not available." in detail, table
    assert "sh -s" in fix


def test_a_module_init_file_that_exits_is_a_fail_and_the_check_goes_on(tmp_path, here):
    init = tmp_path / "modules.sh"
    init.write_text("echo bye >&2; exit 3\n")
    table, failed = check.check_machine(project(tmp_path, here, "partition: debug\nmodule_init: %s\n" % init))
    got = rows(table)
    assert got["module init"][0][:2] == ["FAIL", "sourcing it failed: bye"], table
    assert got["clock"][0][0] == "OK" and failed == 1, table


def test_a_script_cut_short_says_so_and_what_may_have_cut_it(tmp_path, here):
    init = tmp_path / "modules.sh"
    init.write_text("module() { exit 4; }\n")
    table, failed = check.check_machine(project(tmp_path, here, "partition: debug\nmodule_init: %s\n"
                                                "modules: [gcc]\n" % init))
    got = rows(table)
    assert "clock" not in got and "cmake" not in got, table
    status, detail, fix = got["connection"][-1]
    assert (status, detail) == ("FAIL", "the check script stopped early (exit 4) after module system: "
                                        "no message"), table
    assert fix.startswith("change 'module_init' in machines/fake.yml:6, or 'modules' in machines/fake.yml:7"), fix


def test_text_from_start_up_files_is_a_warning(tmp_path, here):
    p = project(tmp_path, here, "partition: debug\n")
    run = here.run
    here.run = lambda script, **kw: run("echo 'Welcome to the cluster'\n" + script, **kw)
    table, failed = check.check_machine(p)
    status, detail, _fix = rows(table)["login output"][0]
    assert failed == 0 and status == "WARN" and "Welcome to the cluster" in detail


def test_a_csh_login_shell_fails(tmp_path, here):
    """csh and tcsh run the check (it comes by stdin, ``sh -s``) but not ``sh -c '<several lines>'``."""
    here.fake("getent", 'echo "fake:x:1000:1000::/home/fake:/bin/tcsh"')
    table, failed = check.check_machine(project(tmp_path, here, "partition: debug\n"))
    status, detail, fix = rows(table)["login shell"][0]
    assert (failed, status) == (1, "FAIL") and detail.startswith("/bin/tcsh cannot run"), table
    assert "chsh" in fix


@pytest.mark.parametrize("listing,status", [("debug  0 0 yes yes 0 0", "OK"), ("debug  0 0 no yes 0 0", "WARN")])
def test_a_pbs_queue_that_takes_no_jobs_is_a_warning(tmp_path, here, listing, status):
    for command in ("qsub", "qdel"):
        here.fake(command, "exit 0")
    here.fake("qstat", 'echo "%s"' % listing)
    table, failed = check.check_machine(project(tmp_path, here, "partition: debug\n", scheduler="pbs"))
    assert failed == 0 and rows(table)["job test"][0][0] == status, table


def test_notes_are_info_lines(tmp_path, here):
    p = project(tmp_path, here, "partition: debug\n")
    p.machine.notes = ["imported from FabSim3's machines.yml: the catalogue's archer2 is not used"]
    table, _failed = check.check_machine(p)
    assert rows(table)["note"] == [["INFO", p.machine.notes[0], None]]


@pytest.mark.parametrize("start,offset,status", [(1000.0, 0.01, "OK"), (1000.0, 100.0, "WARN"),
                                                 (1000.0, -100.0, "WARN"), (1000, 1.5, "OK")])
def test_the_clock_offset_takes_the_round_trip_out(start, offset, status):
    # sent at 1000 local; the script began after half of a 0.4 s round trip and ran 2 s
    answer = types.SimpleNamespace(start=start + 0.2 + offset, end=start + 2.2 + offset)
    report = check.Report(None)
    check._clock(report, answer, 1000.0, 1002.4)
    got, label, detail, _fix = report.rows[0]
    assert got == status and "%+.2f s off" % offset in detail and "round trip 0.40 s" in detail, detail


def test_parse_check_reads_rows_times_associations_and_stray_output():
    text = ("Last login: today\n@t start 12.5\n@c\tcmake\tOK\tcmake version 3\n@c\tshell\tINFO\t\n"
            "@a acct|part|normal,high\n@t end 14.25\n")
    answer = scripts.parse_check(text)
    assert answer.before == "Last login: today"
    assert (answer.start, answer.end) == (12.5, 14.25)
    assert answer.rows == [("cmake", "OK", "cmake version 3"), ("shell", "INFO", "")]
    assert answer.associations == [("acct", "part", "normal,high")]
    assert scripts.parse_check("Permission denied\n").start is None


@pytest.mark.parametrize("name", ["sge", "pbs", "lsf", "local", "tianhe"])
def test_every_scheduler_kind_runs_its_test_mode_under_both_shells(tmp_path, here, name):
    """SGE's qsub -w v, PBS's queue listing (or Slurm's test mode under its PBS wrappers), LSF's bqueues."""
    test_modes = {"sge": ("qsub", 'echo "verification: found suitable queue(s)"'),
                  "pbs": ("qstat", 'echo "debug  0 0 yes yes"'), "lsf": ("bqueues", 'echo "debug 30 Open:Active"'),
                  "tianhe": ("yhbatch", 'echo "sbatch: Job 3 to start"')}
    for command in ("qstat", "qdel", "qacct", "bsub", "bjobs", "bkill", "yhqueue", "yhcancel", "yhacct"):
        here.fake(command, "exit 0")
    if name in test_modes:
        here.fake(*test_modes[name])
    p = project(tmp_path, here, "partition: debug\n", scheduler=name)
    table, failed = check.check_machine(p)
    got = rows(table)
    assert failed == 0, table
    if name == "local":
        assert "job test" not in got
        return
    assert got["job test"][0][0] == "OK", table
    first = {"sge": ("qsub", ["-w", "v", "job.sh"]), "pbs": ("qstat", ["-Q", "debug"]),
             "lsf": ("bqueues", ["debug"]), "tianhe": ("yhbatch", ["--test-only", "job.sh"])}[name]
    assert here.calls(first[0])[-len(first[1]):] == first[1]
    assert sorted(os.listdir(here.home)) == []
