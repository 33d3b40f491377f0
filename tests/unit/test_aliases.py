"""Machine aliases: other spellings of one machine (hpcdo/aliases.py).

``doit machine=tianhe`` is the catalogue's ``tianhe2``; the canonical name is what a Machine
carries (results/, doit's record, locks use it); clashes are one error naming file and line;
a project's own machine or alias named like a shipped alias takes the name whole.
"""

import os
import shutil
import subprocess
import sys

import pytest

from hpcdo import ConfigError, console
from hpcdo.config import Catalogue, parse_overrides

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def project(tmp_path, **files):
    (tmp_path / "machines").mkdir(exist_ok=True)
    for name, text in files.items():
        (tmp_path / "machines" / (name + ".yml")).write_text(text)
    return Catalogue(str(tmp_path))


def test_tianhe_as_written_is_the_catalogues_tianhe2(tmp_path):
    cat = project(tmp_path)
    for spelling in ("tianhe", "th2a", "tianhe2"):
        machine = cat.machine(spelling)
        assert machine.name == "tianhe2"
        assert machine.scheduler == "tianhe" and machine.launcher == "yhrun"
        assert machine.aliases == ["th2a", "tianhe"]


def test_an_alias_is_resolved_before_did_you_mean(tmp_path):
    cat = project(tmp_path)
    with pytest.raises(ConfigError) as err:
        cat.machine("tianhee")
    assert "did you mean 'tianhe'?" in str(err.value)
    assert "tianhe2 (also th2a, tianhe)" in str(err.value)


def test_a_project_machine_may_have_aliases_and_extends_may_name_one(tmp_path):
    cat = project(tmp_path, site="mycluster:\n  host: h.example.org\n  scheduler: pbs\n  aliases: [mc, my-c]\n"
                              "child:\n  extends: mc\n  partition: p1\n")
    assert cat.machine("mc").name == "mycluster" and cat.machine("my-c").scheduler == "pbs"
    child = cat.machine("child")
    assert child.host == "h.example.org" and child.partition == "p1" and child.aliases == []


def test_the_users_file_may_add_an_alias_to_a_shipped_machine(tmp_path):
    cat = project(tmp_path, machines_user="archer2:\n  aliases: [a2]\n  user: jb\n")
    machine = cat.machine("a2")
    assert machine.name == "archer2" and machine.user == "jb" and machine.aliases == ["a2"]


@pytest.mark.parametrize("text,message", [
    # an alias naming another machine (here a shipped one), with both places
    ("mine:\n  host: h\n  aliases: [archer2]\n",
     r"site.yml:3: machine 'mine': alias 'archer2' is the name of machine 'archer2' \(.*archer2.yml:\d+\)"),
    # one alias for two machines of the project
    ("one:\n  host: h\n  aliases: [x]\ntwo:\n  host: h\n  aliases: [x]\n",
     r"site.yml:6: machine 'two': alias 'x' is already an alias of machine 'one' \(.*site.yml:3\)"),
    # a project alias naming a project machine
    ("one:\n  host: h\n  aliases: [two]\ntwo:\n  host: h\n",
     r"site.yml:3: machine 'one': alias 'two' is the name of machine 'two' \(.*site.yml:4\)"),
    ("one:\n  host: h\n  aliases: [one]\n", r"site.yml:3: machine 'one': 'one' is its own name, not an alias"),
    ("one:\n  host: h\n  aliases: mc\n", r"site.yml:3: machine 'one': key 'aliases' must be a list of machine names"),
    ("one:\n  host: h\n  aliases: ['a b']\n", r"site.yml:3: machine 'one': key 'aliases' must be a list"),
    ("default:\n  aliases: [x]\n", r"site.yml:2: default: key 'aliases' belongs to one machine"),
    ("one:\n  host: h\n  aliases: [default]\n", r"site.yml:3: machine 'one': 'default' cannot be an alias"),
    ("one:\n  host: h\n  aliases: [localhost]\n", r"site.yml:3: machine 'one': alias 'localhost' is the name of "
                                                    r"machine 'localhost'"),
])
def test_a_clash_or_a_bad_alias_is_one_error_naming_the_line(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        project(tmp_path, site=text)


def test_aliases_are_no_command_line_setting(tmp_path):
    with pytest.raises(ConfigError, match="key 'aliases' names a machine in its machine file"):
        project(tmp_path).machine("archer2", parse_overrides({"aliases": "[x]"}))


def test_a_project_machine_named_like_a_shipped_alias_keeps_its_name_whole(tmp_path):
    """A Tianjin user's own `tianhe:` stays theirs: nothing of tianhe2 is mixed in, and it is said."""
    cat = project(tmp_path, site="tianhe:\n  host: th1a.example.cn\n  scheduler: tianhe\n"
                                 "  remote_root: /vol/u/hpcdo\n")
    mine = cat.machine("tianhe")
    assert mine.name == "tianhe" and mine.host == "th1a.example.cn"
    assert mine.corespernode is None and mine.partition is None     # tianhe2's would be 24
    assert cat.machine("th2a").name == "tianhe2" and cat.machine("th2a").aliases == ["th2a"]
    note = "machine 'tianhe' is the project's own; hpcdo's alias 'tianhe' for machine 'tianhe2'"
    assert any(note in line for line in mine.notes)
    lines = console.machines(str(tmp_path))
    assert any(line.startswith("note: ") and note in line for line in lines)


def test_settings_under_a_shipped_alias_in_the_users_file_say_where_they_belong(tmp_path):
    """`tianhe: {user: me}` meant for tianhe2 is a machine of its own, refused in one line that says why."""
    with pytest.raises(ConfigError, match=r"machines_user.yml:1: machine 'tianhe' sets neither host nor extends, "
                                          r"and 'tianhe' is hpcdo's alias for machine 'tianhe2' \(.*tianhe2.yml:\d+\): "
                                          r"put its settings under 'tianhe2'"):
        project(tmp_path, machines_user="tianhe:\n  partition: p1\n")
    # extends makes it a machine of the user's own
    cat = project(tmp_path, machines_user="tianhe:\n  extends: localhost\n  partition: p1\n")
    assert cat.machine("tianhe").host is None and cat.machine("tianhe2").partition is None


def test_a_project_alias_takes_a_shipped_alias_with_a_note(tmp_path):
    cat = project(tmp_path, site="mine:\n  host: h\n  aliases: [th2a]\n")
    assert cat.machine("th2a").name == "mine"
    assert cat.machine("tianhe").name == "tianhe2" and cat.machine("tianhe2").aliases == ["tianhe"]
    assert any("alias 'th2a' is the project's, for machine 'mine'" in n for n in cat.machine("mine").notes)


def test_hpcdo_machines_shows_each_machines_aliases(tmp_path):
    project(tmp_path, site="mycluster:\n  host: h\n  scheduler: pbs\n  aliases: [mc]\n")
    lines = console.machines(str(tmp_path))
    assert lines[0].split() == ["machine", "aliases", "scheduler", "defined", "in"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert rows["tianhe2"].split()[1:4] == ["th2a,", "tianhe", "tianhe"]
    assert rows["mycluster"].split()[1:3] == ["mc", "pbs"]
    assert rows["archer2"].split()[1:3] == ["-", "slurm"]


def doit(path, *args):
    return subprocess.run([sys.executable, "-m", "doit"] + list(args), cwd=str(path),
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def copied(tmp_path):
    for name in ("dodo.py", "pyproject.toml", "recipes", "machines", "demo"):
        src = os.path.join(ROOT, name)
        if os.path.isdir(src):
            shutil.copytree(src, str(tmp_path / name), ignore=shutil.ignore_patterns("machines_user.yml"))
        else:
            shutil.copy2(src, str(tmp_path))
    return tmp_path


def test_doit_jobscript_and_list_take_tianhe_as_written(copied):
    proc = doit(copied, "machine=tianhe", "jobscript", "straight")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("#!/bin/bash\n") and "yhrun -n 1 ./lbflow" in proc.stdout
    assert "on machine tianhe2." in proc.stdout
    proc = doit(copied, "machine=tianhe", "list")
    assert proc.returncode == 0, proc.stderr
    assert "build lbflow on tianhe2" in proc.stdout
