"""FabSim3 machine files read as they are: the mapping, where each value came from, warnings, errors.

The fixture in tests/data/fabsim3 is written in FabSim3's format: a
machines.yml with a default block and several machines (Slurm, Grid Engine,
PBS, LSF, local, one importing another, one hpcdo cannot drive), a
machines_user.yml with the user's names and budgets, and batch header
templates in templates/ beside them, where FabSim3 keeps them.
"""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from hpcdo import ConfigError, fabsim
from hpcdo.config import Catalogue

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data", "fabsim3")
MACHINES = os.path.join(DATA, "machines.yml")
USER = os.path.join(DATA, "machines_user.yml")
TEMPLATES = os.path.join(DATA, "templates")


def line_of(path, text, after=None):
    """The 1-based line of the first line of ``path`` holding ``text`` (after the line holding ``after``)."""
    with open(path) as fh:
        lines = fh.read().splitlines()
    start = 0
    if after is not None:
        start = next(i for i, line in enumerate(lines) if after in line) + 1
    for i in range(start, len(lines)):
        if text in lines[i]:
            return i + 1
    raise AssertionError("%r not in %s" % (text, path))


def merged(found, name):
    """A machine's settings and origins, merged the way hpcdo's Catalogue merges them."""
    chain = []
    while name is not None:
        layers = found.entries[name]
        parent = next((l.values["extends"] for l in layers if l.values.get("extends")), None)
        chain = (layers if parent else found.defaults + layers) + chain
        name = parent
    settings, origins = {}, {}
    for layer in chain:
        for key, value in layer.values.items():
            settings[key] = value
            origins[key] = layer.at(key)
    return settings, origins


@pytest.fixture(scope="module")
def found():
    return fabsim.load(MACHINES, USER)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


# -- the fixture's machines ----------------------------------------------------------

def test_every_machine_hpcdo_can_drive_is_loaded(found):
    assert sorted(found.entries) == ["kestrel", "kestrel_short", "localhost", "lsfbox",
                                     "myriadlike", "pbscluster", "workstation"]
    assert list(found.errors) == ["oldbluegene"]


def test_slurm_machine(found):
    m, where = merged(found, "kestrel")
    assert m["host"] == "login.kestrel.example.ac.uk"
    assert m["user"] == "kdoe42"
    assert m["port"] == 22
    assert m["scheduler"] == "slurm"
    assert (m["cores"], m["corespernode"], m["max_job_name_chars"]) == (128, 128, 15)
    # $project and $username from the user file fill the path templates
    assert m["remote_root"] == "/work/e999/e999/kdoe42/FabSim"
    assert m["run_command"] == "srun --distribution=block:block --hint=nomultithread"
    # all (as written), then unloaded, then loaded; the 'lammps' script's modules are not for every job
    assert m["modules"] == ["load cray-python", "load cmake/3.29"]
    # from the header's options: --account=$budget, --partition=$partition_name, --qos=$qos_name
    assert (m["account"], m["partition"], m["qos"]) == ("e999-kdoe", "standard", "standard")
    # options hpcdo writes for every job are gone; --mem stays as written (FabSim3's is per node)
    # tasks per node and cpus per task are each run's, which hpcdo writes: not the header's fixed ones
    assert m["directives"] == ["--mem=200G", "--exclusive"]
    assert "memory" not in m and "pe" not in m


def test_grid_engine_machine(found):
    m, _where = merged(found, "myriadlike")
    assert m["scheduler"] == "sge"
    assert m["pe"] == "mpi"                              # from "-pe mpi $cores_reserved"
    assert m["user"] == "ucabjdo"
    assert m["remote_root"] == "/home/ucabjdo/Scratch/FabSim"
    assert m["modules"] == ["unload default-modules/2018", "load gcc/12", "load openmpi/4.1"]
    # #$dollar is FabSim3's old spelling of #$; -S, -N, h_rt and -wd are hpcdo's own;
    # the site's own mem resource and -A stay as written
    assert m["directives"] == ["-l mem=2G,tmpfs=10G", "-A UCL_Budget", "-m n"]
    assert m.get("account") is None and m.get("memory") is None


def test_pbs_machine(found):
    m, _where = merged(found, "pbscluster")
    assert m["scheduler"] == "pbs"
    assert (m["partition"], m["account"]) == ("workq", "hawk-proj-7")
    assert m["memory"] == "64gb"                         # PBS mem is per job, as hpcdo's memory
    assert m["directives"] == ["-m abe", "-l place=scatter:excl"]
    assert m["run_command"] == "aprun -n $cores -N $corespernode"
    assert m["remote_root"] == "/home/jdoe/FabSim"      # the default templates, the user's default name


def test_local_machines(found):
    m, _where = merged(found, "localhost")
    assert (m["host"], m["scheduler"], m["cores"]) == (None, "local", 2)
    assert m["remote_root"] == "/home/jdoe/FabSim"
    assert "directives" not in m
    m, _where = merged(found, "workstation")
    # a remote with no job_dispatch: jobs run in the background over SSH
    assert (m["host"], m["scheduler"], m["port"]) == ("ws.example.org", "local", 2222)
    assert m["remote_root"] == "/data/jdoe/FabSim"
    assert m["run_command"] == ""
    # run_prefix_commands: FabSim3's $home_path filled in, the shell's $HOME and $PATH left alone
    assert m["shell_setup"] == ["source /data/jdoe/env.sh", "export PATH=$HOME/bin:$PATH"]


def test_header_that_cannot_be_read_still_gives_the_scheduler(found):
    m, _where = merged(found, "lsfbox")
    assert m["scheduler"] == "lsf"
    assert (m["account"], m["partition"]) == ("lsf-acct", "normal")
    assert m["run_command"] == "mpirun -np ${cores}"
    assert "directives" not in m
    header = line_of(MACHINES, "batch_header: lsf-bigiron")
    assert any(w.startswith("%s:%d: machine 'lsfbox': key 'batch_header' 'lsf-bigiron' not read" % (MACHINES, header))
               for w in found.warnings), found.warnings


# -- where values came from ------------------------------------------------------------

def test_each_value_points_at_the_fabsim3_line_it_came_from(found):
    _m, where = merged(found, "kestrel")
    assert where["host"] == "%s:%d" % (MACHINES, line_of(MACHINES, "remote: login.kestrel"))
    assert where["scheduler"] == "%s:%d" % (MACHINES, line_of(MACHINES, "job_dispatch: sbatch"))
    # the work root is runtime_path_template's, the template set last of those it is made of
    assert where["remote_root"] == "%s:%d" % (MACHINES, line_of(MACHINES, "runtime_path_template: /work/"))
    assert where["user"] == "%s:%d" % (USER, line_of(USER, "username: kdoe42"))
    # account came through the header's $budget: it points at budget in the user file
    assert where["account"] == "%s:%d" % (USER, line_of(USER, "budget: e999-kdoe"))
    # the defaults: port from the user's default block, corespernode overridden by the entry
    assert where["port"] == "%s:%d" % (USER, line_of(USER, "port: 22"))
    assert where["corespernode"] == "%s:%d" % (MACHINES, line_of(MACHINES, "corespernode: 128"))
    header = os.path.join(TEMPLATES, "slurm-kestrel")
    assert where["directives"] == "%s:%d" % (header, line_of(header, "--mem"))
    for layer in found.entries["kestrel"]:
        assert layer.where in (MACHINES, USER, header)


def test_layers_come_in_fabsim3_file_order(found):
    wheres = [layer.where for layer in found.entries["kestrel"]]
    assert wheres == [MACHINES, USER, os.path.join(TEMPLATES, "slurm-kestrel")]
    assert found.entries["kestrel"][0].name_line == line_of(MACHINES, "kestrel:")
    assert found.entries["kestrel"][1].name_line == line_of(USER, "kestrel:")
    assert [layer.where for layer in found.defaults] == [MACHINES, USER]
    assert found.defaults[1].values == {"user": "jdoe", "port": 22}


# -- import, user overrides -------------------------------------------------------------

def test_import_becomes_extends_and_carries_every_setting(found):
    first = found.entries["kestrel_short"][0]
    assert first.values["extends"] == "kestrel"
    assert first.at("extends") == "%s:%d" % (MACHINES, line_of(MACHINES, "import: kestrel"))
    m, where = merged(found, "kestrel_short")
    parent, _ = merged(found, "kestrel")
    assert m["qos"] == "short" and m["max_job_name_chars"] == 10
    assert where["qos"] == "%s:%d" % (MACHINES, line_of(MACHINES, "qos_name: short"))
    for key in ("host", "user", "account", "partition", "remote_root", "run_command", "modules", "directives"):
        assert m[key] == parent[key], key
    # without FabSim3's defaults or the parent in front, its own layers say the same
    alone = {}
    for layer in found.entries["kestrel_short"]:
        alone.update(layer.values)
    assert alone["remote_root"] == m["remote_root"] and alone["account"] == "e999-kdoe"


def test_user_file_overrides_machines_yml_and_defaults(found):
    kestrel, where = merged(found, "kestrel")
    assert kestrel["user"] == "kdoe42"                   # entry beats the user's default block
    pbs, where = merged(found, "pbscluster")
    assert pbs["cores"] == 64 and where["cores"].startswith(USER + ":")
    assert pbs["user"] == "jdoe" and where["user"] == "%s:%d" % (USER, line_of(USER, "username: jdoe"))
    ws, _ = merged(found, "workstation")
    assert ws["port"] == 2222


def test_the_users_default_modules_are_ignored_as_fabsim3_does(found):
    m, _ = merged(found, "localhost")
    assert m["modules"] == []
    line = line_of(USER, "modules:")
    assert ("%s:%d: default: key 'modules' ignored (FabSim3 takes the default modules from machines.yml's "
            "default block only)" % (USER, line)) in found.notes_for("localhost")


# -- warnings -------------------------------------------------------------------------

def test_ignored_keys_are_said_with_file_line_and_reason(found):
    """What changes nothing in a job is a note (for ``check``); what changes one is a warning."""
    notes, w = found.notes, found.warnings
    stat = line_of(MACHINES, "stat:", after="kestrel:")
    assert "%s:%d: machine 'kestrel': key 'stat' ignored (hpcdo asks the scheduler about jobs itself)" % (
        MACHINES, stat) in notes
    ssh = line_of(USER, "manual_ssh: true")
    assert any(x.startswith("%s:%d: machine 'kestrel': key 'manual_ssh' ignored (hpcdo always connects "
                            "with its own SSH client" % (USER, ssh)) for x in notes)
    venv = line_of(MACHINES, "virtual_env_path")
    assert any(x.startswith("%s:%d: machine 'kestrel': key 'virtual_env_path' ignored (" % (MACHINES, venv))
               for x in notes)
    assert any(x.startswith("%s:%d: machine 'localhost': key 'python_build' ignored (" % (
        MACHINES, line_of(MACHINES, "python_build"))) for x in notes)
    walltime = line_of(USER, "job_wall_time")
    assert "%s:%d: machine 'kestrel': key 'job_wall_time' ignored (hpcdo takes the walltime of each run " \
           "from the recipe)" % (USER, walltime) in notes
    plugin = line_of(USER, "lammps_exec")
    assert any(x.startswith("%s:%d: machine 'myriadlike': key 'lammps_exec' ignored (" % (USER, plugin))
               for x in notes)
    modules = line_of(MACHINES, "modules:", after="kestrel:")
    assert any(x.startswith("%s:%d: machine 'kestrel': key 'modules' entry 'lammps' ignored (" % (MACHINES, modules))
               for x in notes)
    # cpuspertask 1 is what hpcdo writes for a run without threads; taskspernode 128 is not
    assert any("key 'cpuspertask' ignored (hpcdo writes each run's cpus per task itself" in x for x in notes)
    tpn = line_of(MACHINES, "taskspernode: 128")
    assert any(x.startswith("%s:%d: machine 'kestrel': key 'taskspernode' ignored (" % (MACHINES, tpn)) for x in w)
    sge = os.path.join(TEMPLATES, "sge-ucl")
    assert any(x.startswith("%s:1: machine 'myriadlike': batch_header 'sge-ucl': first line '#!/bin/bash -l'" % sge)
               for x in w)
    # a header's export line reaches the job: nothing is said about it
    assert not any("OMP_NUM_THREADS" in x for x in w + notes)
    every = "\n".join(w + notes)
    # false settings change nothing, FabSim3 internals are quiet, keys hpcdo used are not warned about
    assert "'manual_ssh' ignored" not in "\n".join(x for x in w + notes if x.startswith("%s:%d:" % (
        MACHINES, line_of(MACHINES, "manual_ssh: false"))))
    for quiet in ("rich_console", "manual_gsissh", "local_templates_path", "'budget'", "'project'",
                  "'queue'", "'memory'", "'username'"):
        assert quiet not in every, quiet
    # one line each, every one naming its file and line
    assert len(w) == len(set(w)) and len(notes) == len(set(notes))
    assert all(x.split(":")[1].isdigit() for x in w + notes), w + notes


def test_machine_hpcdo_cannot_drive_is_left_out_with_a_warning(found):
    line = line_of(MACHINES, "job_dispatch: llsubmit")
    message = ("%s:%d: machine 'oldbluegene': key 'job_dispatch' runs 'llsubmit', which is not a batch "
               "system hpcdo drives (bsub, pjsub, qsub, sbatch, yhbatch, or empty for none)" % (MACHINES, line))
    assert found.errors["oldbluegene"] == message
    assert message + "; machine left out" in found.warnings
    with pytest.raises(ConfigError) as err:
        found.require("oldbluegene")
    assert str(err.value) == message
    found.require("kestrel")                                 # no error: nothing happens


def test_lines_for_one_machine(found):
    mine = found.notes_for("kestrel_short")
    assert any("machine 'kestrel': key 'stat' ignored" in w for w in mine)      # its import's
    assert any(" default: key 'temp_path_template' ignored" in w for w in mine)  # the default block's
    everything = found.notes_for("kestrel_short") + found.warnings_for("kestrel_short")
    assert not any("myriadlike" in w or "oldbluegene" in w for w in everything)
    assert set(mine) <= set(found.notes)
    assert set(found.warnings_for("kestrel_short")) <= set(found.warnings)


# -- errors -----------------------------------------------------------------------------

def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, "machines.yml", """\
        default:
          cores: 4
        broken: [1, 2
        """)
    with pytest.raises(ConfigError, match=r"^%s:\d+: YAML syntax error" % path):
        fabsim.load(path)
    user = write(tmp_path, "machines_user.yml", "a: {b: \n")
    good = write(tmp_path, "good.yml", "default: {}\n")
    with pytest.raises(ConfigError, match=r"^%s:\d+: YAML syntax error" % user):
        fabsim.load(good, user)


def test_missing_user_file_is_an_error(tmp_path):
    good = write(tmp_path, "machines.yml", "default: {}\n")
    with pytest.raises(ConfigError, match="nope.yml: cannot read"):
        fabsim.load(good, str(tmp_path / "nope.yml"))


BASE = textwrap.dedent("""\
    default:
      home_path_template: /home/$username
      runtime_path_template: $home_path
      work_path_template: $runtime_path/FabSim
      job_dispatch: ''
      run_command: mpirun -np $cores
    hpc:
      remote: hpc.example.org
      job_dispatch: sbatch
    """)


def test_wrong_type_names_file_line_and_key(tmp_path):
    path = write(tmp_path, "machines.yml", BASE)
    user = write(tmp_path, "machines_user.yml", """\
        hpc:
          username: me
          cores: many
        """)
    found = fabsim.load(path, user)
    assert "hpc" not in found.entries
    with pytest.raises(ConfigError) as err:
        found.require("hpc")
    # its type, never the value: a file may hold a secret in the wrong place
    assert str(err.value) == "%s:3: machine 'hpc': key 'cores' must be a positive integer, not a string" % user
    with pytest.raises(ConfigError, match=r"machines_user\.yml:3: machine 'hpc': key 'cores'"):
        fabsim.load(path, user, strict=True)
    # FabSim3 takes numbers written as strings
    user = write(tmp_path, "machines_user.yml", "hpc: {username: me, cores: '16', port: '2222'}\n")
    m, _ = merged(fabsim.load(path, user), "hpc")
    assert (m["cores"], m["port"]) == (16, 2222)


def test_wrong_type_in_a_default_block_stops_the_load(tmp_path):
    path = write(tmp_path, "machines.yml", BASE)
    user = write(tmp_path, "machines_user.yml", "default:\n  username: me\n  port: twenty-two\n")
    with pytest.raises(ConfigError, match=r"machines_user\.yml:3: default: key 'port' must be a positive integer"):
        fabsim.load(path, user)


def test_unknown_job_dispatch_names_file_and_line(tmp_path):
    path = write(tmp_path, "machines.yml", BASE.replace("job_dispatch: sbatch", "job_dispatch: qcg-sub"))
    user = write(tmp_path, "machines_user.yml", "hpc: {username: me}\n")
    with pytest.raises(ConfigError) as err:
        fabsim.load(path, user, strict=True)
    assert str(err.value).startswith("%s:9: machine 'hpc': key 'job_dispatch' runs 'qcg-sub', which is not a "
                                     "batch system hpcdo drives" % path)


def test_unknown_variable_names_file_line_and_key(tmp_path):
    path = write(tmp_path, "machines.yml", BASE + "  home_path_template: /home/$project/$username\n")
    user = write(tmp_path, "machines_user.yml", "hpc: {username: me}\n")
    found = fabsim.load(path, user)
    assert found.errors["hpc"] == ("%s:10: machine 'hpc': key 'home_path_template' '/home/$project/$username': "
                                   "unknown variable $project (not set for this machine in machines.yml or "
                                   "machines_user.yml)" % path)
    # set it, and the machine is there
    user = write(tmp_path, "machines_user.yml", "hpc: {username: me, project: p1}\n")
    m, _ = merged(fabsim.load(path, user), "hpc")
    assert m["remote_root"] == "/home/p1/me/FabSim"
    # no username anywhere
    found = fabsim.load(path)
    assert "unknown variable $project" in found.errors["hpc"]
    found = fabsim.load(write(tmp_path, "plain.yml", BASE))
    assert "'/home/$username': unknown variable $username (set username in machines_user.yml)" in found.errors["hpc"]


def test_leading_shell_variable_is_left_for_the_machine(tmp_path):
    path = write(tmp_path, "machines.yml", BASE + "  runtime_path_template: $SCRATCH/$username\n")
    m, _ = merged(fabsim.load(path, write(tmp_path, "u.yml", "default: {username: me}\n")), "hpc")
    assert m["remote_root"] == "$SCRATCH/me/FabSim"
    assert "shell_setup" not in m


def test_run_command_variables(tmp_path):
    text = BASE + "  run_command: mpirun -np $cores -ppn $ppn $extra\n  ppn: 8\n  extra: --bind-to ${unit}\n" \
                  "  unit: core\n"
    path = write(tmp_path, "machines.yml", text)
    m, where = merged(fabsim.load(path, write(tmp_path, "u.yml", "default: {username: me}\n")), "hpc")
    # hpcdo's own variables stay for each run; the machine's are filled in
    assert m["run_command"] == "mpirun -np $cores -ppn 8 --bind-to core"
    assert where["run_command"] == "%s:10" % path
    path = write(tmp_path, "machines.yml", BASE + "  run_command: mpirun -np $cores -o $job_results/log\n")
    found = fabsim.load(path, write(tmp_path, "u.yml", "default: {username: me}\n"))
    assert found.errors["hpc"] == ("%s:10: machine 'hpc': key 'run_command' uses $job_results, which FabSim3 "
                                   "fills in per job; hpcdo fills in only $cores, $tasks, $threads, $nodes, $cpn and $corespernode"
                                   % path)


def test_header_variable_that_is_not_set_names_the_header_line(tmp_path):
    os.makedirs(tmp_path / "templates")
    write(tmp_path, "templates/slurm-x", "#!/bin/bash\n#SBATCH --job-name=$job_name\n#SBATCH --account=$budget\n")
    path = write(tmp_path, "machines.yml", BASE + "  batch_header: slurm-x\n")
    found = fabsim.load(path, write(tmp_path, "u.yml", "default: {username: me}\n"))
    header = str(tmp_path / "templates" / "slurm-x")
    assert found.errors["hpc"] == ("%s:3: machine 'hpc': batch_header 'slurm-x' directive '--account=$budget': "
                                   "unknown variable $budget (not set for this machine in machines.yml or "
                                   "machines_user.yml)" % header)


def test_header_directive_needing_a_per_job_value_is_dropped_with_a_warning(tmp_path):
    os.makedirs(tmp_path / "templates")
    write(tmp_path, "templates/slurm-y", "#SBATCH --gres=gpu:$cores\n#SBATCH --constraint=$feature\n")
    path = write(tmp_path, "machines.yml", BASE + "  batch_header: slurm-y\n  feature: hbm\n")
    found = fabsim.load(path, write(tmp_path, "u.yml", "default: {username: me}\n"))
    m, _ = merged(found, "hpc")
    assert m["directives"] == ["--constraint=hbm"]
    header = str(tmp_path / "templates" / "slurm-y")
    assert ("%s:1: machine 'hpc': batch_header 'slurm-y': directive '--gres=gpu:$cores' ignored (it uses $cores, "
            "which FabSim3 fills in per job; hpcdo's directives are fixed text)" % header) in found.warnings


def test_header_export_with_a_comment_or_two_commands_leaves_the_run_command_whole(tmp_path):
    """An export line is carried over only as one assignment word (its comment dropped, as the
    shell drops it); a line that is more than that is a warning, never pasted before the command."""
    os.makedirs(tmp_path / "templates")
    write(tmp_path, "templates/slurm-e", """\
        #!/bin/bash
        #SBATCH --account=$budget
        export OMP_NUM_THREADS=1   # no threading
        export A=x; export B=y
        export SRUN_CPUS_PER_TASK=$SLURM_CPUS_PER_TASK   # as archer2's
        export NTASKS=$(( SLURM_JOB_NUM_NODES * (SLURM_NTASKS_PER_NODE + 1) ))  # arithmetic
        export C="$HOME/a b"
        export D=$(hostname)
        export E=`hostname`
        export F=${X:-$(id)}
        export G=x && touch PWNED
        export H=x >/tmp/f
        export I=a b
        export J=$((1+$(id -u)))
        export K="unclosed
        export L=a#b
        export M=
        export N="a # b"
        """)
    path = write(tmp_path, "machines.yml", BASE + "  batch_header: slurm-e\n  budget: b1\n")
    found = fabsim.load(path, write(tmp_path, "u.yml", "default: {username: me}\n"))
    m, _ = merged(found, "hpc")
    # a '#' inside a word is the word's, as in the shell
    assert m["env"] == {"OMP_NUM_THREADS": "1", "L": "a#b", "M": "", "N": "a # b"}
    assert m["run_command"] == ('SRUN_CPUS_PER_TASK=$$SLURM_CPUS_PER_TASK '
                                'NTASKS=$$(( SLURM_JOB_NUM_NODES * (SLURM_NTASKS_PER_NODE + 1) )) '
                                'C="$$HOME/a b" mpirun -np $cores')
    header = str(tmp_path / "templates" / "slurm-e")
    said = [w for w in found.warnings_for("hpc") if w.startswith(header)]
    assert said == ["%s:%d: machine 'hpc': batch_header 'slurm-e': export %s not carried over (its value is not "
                    "one shell word, or runs a command: hpcdo carries NAME=word, where the word may use $NAME, "
                    "${NAME} and $((...)); put other shell in a jobscript template, see jobscript:)"
                    % (header, number, name)
                    for number, name in ((4, "A"), (8, "D"), (9, "E"), (10, "F"), (11, "G"), (12, "H"),
                                         (13, "I"), (14, "J"), (15, "K"))]
    # run as the job runs it: the carried words, then the command
    from hpcdo import launchers
    from hpcdo.config import Machine
    machine = Machine("hpc", {"run_command": m["run_command"], "launcher": None, "launcher_options": None}, {})
    prefix = launchers.prefix(machine, {"cores": 4, "nodes": 2, "corespernode": 2, "cpn": 2, "threads": 1, "tasks": 4})
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "mpirun").write_text('#!/bin/sh\necho "$SRUN_CPUS_PER_TASK|$NTASKS|$C|$*"\n')
    (bindir / "mpirun").chmod(0o755)
    env = {"PATH": "%s:%s" % (bindir, os.environ["PATH"]), "SLURM_CPUS_PER_TASK": "2", "HOME": "/h",
           "SLURM_JOB_NUM_NODES": "2", "SLURM_NTASKS_PER_NODE": "3"}
    for shell in ("dash", "bash"):
        out = subprocess.run([shell, "-c", prefix + " ./app"], capture_output=True, text=True, env=env,
                             cwd=str(tmp_path))
        assert out.stdout == "2|8|/h/a b|-np 4 ./app\n", (shell, out)
    assert not list(tmp_path.rglob("PWNED"))


def test_import_errors(tmp_path):
    path = write(tmp_path, "machines.yml", BASE + "  import: nowhere\n")
    with pytest.raises(ConfigError, match=r"machines\.yml:10: machine 'hpc': key 'import' names unknown machine "
                                          r"'nowhere'"):
        fabsim.load(path, strict=True)
    path = write(tmp_path, "machines.yml", BASE + "  import: other\nother:\n  import: hpc\n")
    found = fabsim.load(path)
    assert "'import' loops" in found.errors["hpc"] and "'import' loops" in found.errors["other"]


def test_dispatch_options_and_qsub_kinds(tmp_path):
    text = BASE.replace("job_dispatch: sbatch", "job_dispatch: qsub -q long -m n") + textwrap.dedent("""\
        pbsbox:
          remote: p.example.org
          job_dispatch: qsub
          batch_header: pbs-site
        torquebox:
          remote: t.example.org
          job_dispatch: qsub
          batch_header: torque-site
        lsfbox:
          remote: l.example.org
          job_dispatch: bsub <
        thbox:
          remote: th.example.org
          job_dispatch: yhbatch
        """)
    path = write(tmp_path, "machines.yml", text)
    found = fabsim.load(path, write(tmp_path, "u.yml", "default: {username: me}\n"))
    m, _ = merged(found, "hpc")
    # qsub with nothing to tell Grid Engine from PBS: Grid Engine, with a warning
    assert m["scheduler"] == "sge"
    assert any(w.startswith("%s:9: machine 'hpc': key 'job_dispatch' 'qsub' does not tell Grid Engine from PBS"
                            % path) for w in found.warnings)
    # options after the submit command: -q is the queue, the rest stay as directives
    assert (m["partition"], m["directives"]) == ("long", ["-m n"])
    assert merged(found, "pbsbox")[0]["scheduler"] == "pbs"
    assert merged(found, "torquebox")[0]["scheduler"] == "torque"
    assert merged(found, "lsfbox")[0]["scheduler"] == "lsf"
    assert merged(found, "thbox")[0]["scheduler"] == "tianhe"


def test_private_machines_replace_public_ones(tmp_path):
    path = write(tmp_path, "machines.yml", BASE)
    write(tmp_path, "machines_private.yml", """\
        hpc:
          remote: secret.example.org
          job_dispatch: sbatch
        """)
    found = fabsim.load(path, write(tmp_path, "u.yml", "default: {username: me}\n"))
    m, where = merged(found, "hpc")
    assert m["host"] == "secret.example.org"
    assert where["host"] == "%s:2" % (tmp_path / "machines_private.yml")


def test_bad_machine_name_is_left_out(tmp_path):
    path = write(tmp_path, "machines.yml", BASE + "'bad name':\n  remote: x\n")
    found = fabsim.load(path, write(tmp_path, "u.yml", "default: {username: me}\n"))
    assert "bad name" not in found.entries
    assert "may use only letters" in found.errors["bad name"]


# -- through hpcdo's own machinery --------------------------------------------------------

def project(tmp_path):
    """A project whose machines/fabsim.yml points at the fixture, and a recipe with two runs."""
    top = tmp_path / "project"
    (top / "machines").mkdir(parents=True)
    (top / "machines" / "fabsim.yml").write_text("fabsim3:\n  machines: %s\n  user: %s\n" % (MACHINES, USER))
    (top / "recipes").mkdir()
    (top / "recipes" / "app.py").write_text(textwrap.dedent("""\
        from hpcdo.recipe import LocalTree, Recipe
        recipe = Recipe(name="fabsimapp", source=LocalTree("src"), executable="fabsimapp")
        recipe.run("big", args=["--steps", 10], cores=256, walltime="01:00:00")
        recipe.run("mid", args=["--steps", 10], cores=24, walltime="02:30:00")
        """))
    (top / "src").mkdir()
    (top / "src" / "CMakeLists.txt").write_text("project(fabsimapp C)\n")
    shutil.copy(os.path.join(ROOT, "dodo.py"), str(top))
    shutil.copy(os.path.join(ROOT, "pyproject.toml"), str(top))      # names hpcdo's task loader
    return top


def test_catalogue_merges_fabsim3_machines(tmp_path):
    cat = Catalogue(str(project(tmp_path)))
    m = cat.machine("kestrel_short")
    assert (m.host, m.user, m.scheduler, m.account, m.partition, m.qos) == (
        "login.kestrel.example.ac.uk", "kdoe42", "slurm", "e999-kdoe", "standard", "short")
    assert m.remote_root == "/work/e999/e999/kdoe42/FabSim"
    assert m.where("account") == "%s:%d" % (USER, line_of(USER, "budget: e999-kdoe"))
    assert m.where("qos") == "%s:%d" % (MACHINES, line_of(MACHINES, "qos_name: short"))
    m = cat.machine("myriadlike")
    assert (m.scheduler, m.pe, m.host) == ("sge", "mpi", "myriad.example.ac.uk")
    assert cat.machine("localhost").is_local


def doit(top, machine, *args):
    argv = [sys.executable, "-m", "doit", "machine=" + machine,
            # the jobscript task connects to nothing; no work root outside the test's directory
            "remote_root=" + str(top.parent / "remote")] + list(args)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(argv, cwd=str(top), capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_jobscripts_of_fabsim3_machines(tmp_path):
    top = project(tmp_path)
    script = doit(top, "kestrel", "jobscript", "big")
    lines = script.splitlines()
    for want in ("#SBATCH --job-name=fabsimapp-big", "#SBATCH --ntasks=256", "#SBATCH --nodes=2",
                 "#SBATCH --time=01:00:00", "#SBATCH --partition=standard", "#SBATCH --account=e999-kdoe",
                 "#SBATCH --qos=standard", "#SBATCH --ntasks-per-node=128",
                 "#SBATCH --mem=200G", "#SBATCH --exclusive"):
        assert want in lines, (want, script)
    assert script.count("--ntasks-per-node") == 1 and "--cpus-per-task" not in script
    assert "module load cray-python" in script and "module load cmake/3.29" in script
    assert "srun --distribution=block:block --hint=nomultithread ./fabsimapp --steps 10" in script
    # nothing of FabSim3's own template language is left
    assert "$job" not in script and "$budget" not in script and "--error" not in script

    short = doit(top, "kestrel_short", "jobscript", "big").splitlines()
    assert "#SBATCH --job-name=fabsimapp-" in short          # max_job_name_chars: 10
    assert "#SBATCH --qos=short" in short

    script = doit(top, "myriadlike", "jobscript", "mid")
    lines = script.splitlines()
    for want in ("#$ -N fabsimapp-mid", "#$ -pe mpi 24", "#$ -l h_rt=02:30:00", "#$ -A UCL_Budget",
                 "#$ -l mem=2G,tmpfs=10G", "#$ -m n"):
        assert want in lines, (want, script)
    assert lines.count("#$ -S /bin/bash") == 1                # hpcdo's own, not the header's too
    assert "module unload default-modules/2018" in script and "module load openmpi/4.1" in script
    assert "mpirun -np 24 ./fabsimapp --steps 10" in script
    assert "$dollar" not in script and "$cores_reserved" not in script


def test_the_importers_scheduler_tables_name_hpcdos_schedulers():
    """headers.py's tables are keyed by scheduler name; SCHEDULERS is the one list of them."""
    from hpcdo.fabsim import headers
    from hpcdo.schedulers import SCHEDULERS
    named = set(headers.DISPATCH.values()) | set(headers.PREFIXES) | set(headers.OPTIONS) | set(headers.RESOURCES)
    assert named <= set(SCHEDULERS), sorted(named - set(SCHEDULERS))
    assert set(headers.PREFIXES) == set(SCHEDULERS) - {"local"}


def test_config_keeps_the_names_other_modules_import():
    """Machine loading moved into layer.py, schema.py and fabsim/; hpcdo.config still offers what it did."""
    from hpcdo import config, layer, schema
    for name in ("Catalogue", "Machine", "Layer", "load_yaml", "parse_overrides", "SCHEMA", "COMMAND_LINE",
                 "CATALOGUE_DIR", "BUILTIN", "USER_FILE", "FABSIM_KEY", "MACHINE_NAME", "ENV_NAME",
                 "MEMORY_RE", "NEEDED", "CHOICES", "text_line"):
        assert hasattr(config, name), name
    assert config.Layer is layer.Layer and config.SCHEMA is schema.SCHEMA
    assert callable(fabsim.load) and fabsim.FabsimMachines


# -- FabSim3's own shipped files (issue 13: "FabSim3 files, faithfully") -------------------
# tests/data/fabsim3/upstream holds FabSim3's machines.yml, its example user file and a few
# of its batch headers, unchanged (see the README there).  The user file is the example with
# its <placeholders> filled in, as FabSim3 asks ("Copy this file as machines_user.yml, and
# fill in your details").

UPSTREAM = os.path.join(DATA, "upstream")
UP_MACHINES = os.path.join(UPSTREAM, "machines.yml")
UP_EXAMPLE = os.path.join(UPSTREAM, "machines_user_example.yml")
FILLED = {"<your-username>": "jdoe", "<your-budget>": "e723-jdoe", "<your-project>": "e723",
          "<your-UCL-ID>": "ucabjdo", "<specify-a-work-dir>": "/home/ucabjdo/Scratch"}


def upstream_user(tmp_path, extra="", replace=()):
    """FabSim3's example user file, filled in, with ``replace`` (old, new) pairs and ``extra`` appended."""
    with open(UP_EXAMPLE) as fh:
        text = fh.read()
    for old, new in list(replace) + list(FILLED.items()):
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "machines_user.yml"
    path.write_text(text + textwrap.dedent(extra))
    return str(path)


def upstream_catalogue(tmp_path, user, project_user=None):
    """The machines a project sees whose machines/fabsim.yml names FabSim3's files."""
    top = tmp_path / "upstream-project"
    (top / "machines").mkdir(parents=True)
    (top / "machines" / "fabsim.yml").write_text("fabsim3:\n  machines: %s\n  user: %s\n" % (UP_MACHINES, user))
    if project_user is not None:
        (top / "machines" / "machines_user.yml").write_text(textwrap.dedent(project_user))
    return Catalogue(str(top))


def test_upstream_machine_named_like_a_catalogue_one_replaces_it_as_a_whole(tmp_path):
    """archer2 and myriad are in FabSim3's file and hpcdo's catalogue: FabSim3's wins, whole, and says so."""
    from hpcdo.config import CATALOGUE_DIR
    cat = upstream_catalogue(tmp_path, upstream_user(tmp_path))
    m = cat.machine("archer2")
    # nothing of hpcdo/catalogue/archer2.yml: not its directive, launcher, env, shell_setup or work root
    assert not [k for k in m.as_dict() if m.where(k).startswith(CATALOGUE_DIR)], m.as_dict()
    assert (m.directives, m.launcher_options, m.description, m.shell_setup) == ([], None, None, [])
    assert m.env == {"OMP_NUM_THREADS": "1"}              # the FabSim3 header's export, not CC=cc
    assert (m.host, m.user, m.account, m.partition, m.qos) == ("archer2", "jdoe", "e723-jdoe", "standard", "standard")
    assert m.remote_root == "/work/e723/e723/jdoe/FabSim"
    assert m.modules == ["load cray-python"]
    line = "%s:%d: FabSim3's machine 'archer2' replaces hpcdo's machine of that name " \
           "(hpcdo/catalogue/archer2.yml) as a whole: none of hpcdo's settings for it apply" % (
               UP_MACHINES, line_of(UP_MACHINES, "archer2:"))
    assert cat.warnings("archer2")[0] == line and line in m.notes
    m = cat.machine("myriad")
    assert not [k for k in m.as_dict() if m.where(k).startswith(CATALOGUE_DIR)], m.as_dict()
    # myriad-header's -l mem=4G; not the catalogue's -l tmpfs=10G, module_init or gerun
    assert (m.directives, m.pe, m.module_init, m.run_command) == (["-l mem=4G"], "smp", None, "/usr/bin/mpirun")
    assert "replaces hpcdo's machine of that name (hpcdo/catalogue/myriad.yml)" in cat.warnings("myriad")[0]
    # a catalogue machine FabSim3 does not name is hpcdo's, untouched and unannounced
    assert cat.machine("cosma8").where("partition").startswith(CATALOGUE_DIR)
    assert cat.warnings("cosma8") == [] and cat.machine("cosma8").notes == []


def test_upstream_project_settings_still_apply_over_the_fabsim3_machine(tmp_path):
    cat = upstream_catalogue(tmp_path, upstream_user(tmp_path),
                             project_user="archer2:\n  account: z01\n  persist: 0\n")
    m = cat.machine("archer2")
    assert (m.account, m.persist) == ("z01", 0)
    assert m.where("account").endswith("machines/machines_user.yml:2")
    assert m.where("run_command").startswith(UPSTREAM)


def test_upstream_bad_value_in_the_users_entry_is_an_error_not_the_catalogue_machine(tmp_path):
    user = upstream_user(tmp_path, replace=[("  cores: 128            # Total cores", "  cores: many  # Total")])
    cat = upstream_catalogue(tmp_path, user)
    with pytest.raises(ConfigError) as err:
        cat.machine("archer2")
    assert str(err.value) == "%s:%d: machine 'archer2': key 'cores' must be a positive integer, not a string" % (
        user, line_of(user, "cores: many"))
    # the other machines are not held up by it, and say nothing of it
    assert cat.machine("myriad").host == "myriad.rc.ucl.ac.uk"
    assert not any("archer2" in line for line in cat.warnings("myriad") + cat.notes("myriad"))


def test_upstream_memory_defaults_to_2GB_as_in_fabsim3(tmp_path):
    """slurm-eagle asks for --mem=$memory; FabSim3 gives a machine without memory 2GB."""
    user = upstream_user(tmp_path, extra="""
        mycluster:
          remote: login.mycluster.example.org
          username: jdoe
          job_dispatch: sbatch
          batch_header: slurm-eagle
          budget: b01
          partition_name: compute
        """)
    cat = upstream_catalogue(tmp_path, user)
    m = cat.machine("mycluster")
    assert (m.scheduler, m.account, m.partition) == ("slurm", "b01", "compute")
    assert m.directives == ["--mem=2GB"]
    # a machine that sets memory has its own (eagle_vecma: 6000, FabSim3's megabytes)
    assert cat.machine("eagle_vecma").directives == ["--mem=6000"]


def test_upstream_shell_variable_in_the_middle_of_a_path_is_the_machines(tmp_path):
    """FabSim3 fills paths with safe_substitute: $SCRATCH stays for the machine's shell, anywhere.

    remote_root keeps it as written, and hpcdo's work root expression (root_expr) expands it on
    the machine: nothing is added to shell_setup, which a project's own shell_setup would replace.
    """
    from hpcdo.remote.scripts import root_expr
    user = upstream_user(tmp_path, replace=[("  home_path_template: /work/<your-username>",
                                             "  home_path_template: /lustre/$SCRATCH/<your-username>")])
    cat = upstream_catalogue(tmp_path, user)
    m = cat.machine("training_hidalgo")
    assert m.remote_root == "/lustre/$SCRATCH/jdoe/FabSim"
    assert m.where("remote_root") == "%s:%d" % (user, line_of(user, "/lustre/$SCRATCH/"))
    # shell_setup is FabSim3's run_prefix_commands, and they may use the path
    assert m.shell_setup == ["export PYTHONPATH=/home/users/jdoe/.local/lib/python3.7/site-packages"]
    assert root_expr(m.remote_root) == '/lustre/"$SCRATCH"/jdoe/FabSim'
    # what the machine's shell makes of it, in every script hpcdo sends
    script = "set -u\nprintf '%s' " + root_expr(m.remote_root) + "\n"
    for shell in ("dash", "bash"):
        out = subprocess.run([shell, "-c", script], capture_output=True, text=True, check=True,
                             env={"SCRATCH": "scratch/grp7", "PATH": os.environ["PATH"]})
        assert out.stdout == "/lustre/scratch/grp7/jdoe/FabSim", (shell, out)


def test_upstream_project_shell_setup_keeps_the_fabsim3_work_root(tmp_path):
    """The project's shell_setup replaces FabSim3's lines (list keys replace), and the work root
    with a variable mid-path still works: it never depended on a shell_setup line."""
    from hpcdo.remote.scripts import prelude
    base = tmp_path / "lustre"
    user = upstream_user(tmp_path, replace=[("  home_path_template: /work/<your-username>",
                                             "  home_path_template: %s/$SCRATCH/<your-username>" % base)])
    cat = upstream_catalogue(tmp_path, user, project_user="training_hidalgo: {shell_setup: ['export GIT_PAGER=cat']}\n")
    m = cat.machine("training_hidalgo")
    assert m.shell_setup == ["export GIT_PAGER=cat"]
    # every remote script: the machine's shell_setup, then the prelude entering the work root
    script = "".join(line + "\n" for line in m.shell_setup) + prelude(m.remote_root) + 'printf "%s" "$PWD"\n'
    for shell in ("dash", "bash"):
        out = subprocess.run([shell, "-c", script], capture_output=True, text=True, cwd=str(tmp_path),
                             env={"SCRATCH": "grp7", "PATH": os.environ["PATH"]})
        assert (out.returncode, out.stderr) == (0, ""), (shell, out)
        assert out.stdout == "%s/grp7/jdoe/FabSim" % base, (shell, out)


BAD_WORK_PATHS = [
    # (home_path_template, what the one error line says is wrong)
    ("/lustre/$(touch${IFS}@TMP@/PWNED)/<your-username>", "a '$' that is not $NAME or ${NAME}"),
    ("/lustre/$((1+1))/<your-username>", "a '$' that is not $NAME or ${NAME}"),
    ("/lustre/${X:-$(touch @TMP@/PWNED)}/<your-username>", "a '$' that is not $NAME or ${NAME}"),
    ("/lustre/$SCRATCH$/<your-username>", "a '$' that is not $NAME or ${NAME}"),
    ("/lustre/`touch @TMP@/PWNED`/<your-username>", "a '`'"),
    ("/lustre/$SCRATCH/a;b/<your-username>", "a ';'"),
    ("/lustre/$SCRATCH/a|b/<your-username>", "a '|'"),
    ("/lustre/$SCRATCH/a#b/<your-username>", "a '#'"),
]


@pytest.mark.parametrize("template,what", BAD_WORK_PATHS)
def test_upstream_work_path_the_shell_would_run_is_one_error_line(tmp_path, template, what):
    """A work path may use the machine's variables ($NAME, ${NAME}), never run a command on it."""
    template = template.replace("@TMP@", str(tmp_path))
    user = upstream_user(tmp_path, replace=[("  home_path_template: /work/<your-username>",
                                             "  home_path_template: %s" % template)])
    cat = upstream_catalogue(tmp_path, user)
    with pytest.raises(ConfigError) as err:
        cat.machine("training_hidalgo")
    line = line_of(user, "  home_path_template: /lustre/")
    assert str(err.value).startswith("%s:%d: machine 'training_hidalgo': key 'home_path_template' gives a work "
                                     "path with %s" % (user, line, what)), str(err.value)
    assert "\n" not in str(err.value) and "touch" not in str(err.value)
    # it is not in shell_setup or anywhere else, and the other machines are not held up by it
    assert cat.machine("archer2").shell_setup == []
    assert not list(tmp_path.rglob("PWNED"))


def test_work_path_variable_in_braces_and_from_another_setting(tmp_path):
    path = write(tmp_path, "machines.yml", BASE + "  home_path_template: /lustre/${SCRATCH}/$username\n")
    m, _ = merged(fabsim.load(path, write(tmp_path, "u.yml", "default: {username: me}\n")), "hpc")
    assert m["remote_root"] == "/lustre/${SCRATCH}/me/FabSim" and "shell_setup" not in m
    # a command that comes in through another setting is said at the template that uses it
    found = fabsim.load(path, write(tmp_path, "u.yml", "default: {username: '$(id)'}\n"))
    assert found.errors["hpc"].startswith("%s:10: machine 'hpc': key 'home_path_template' gives a work path "
                                          "with a '$' that is not $NAME or ${NAME}" % path)


def test_upstream_header_exports_reach_the_job(tmp_path):
    """slurm-archer2 exports OMP_NUM_THREADS, SRUN_CPUS_PER_TASK and SLURM_NTASKS: all reach srun."""
    from hpcdo import launchers
    cat = upstream_catalogue(tmp_path, upstream_user(tmp_path))
    m = cat.machine("archer2")
    # a plain value is the machine's env (exported in the jobscript, before the run's own)
    assert m.env == {"OMP_NUM_THREADS": "1"}
    # one the job's shell expands goes in front of the run command, its one command
    assert m.run_command == ("SRUN_CPUS_PER_TASK=$$SLURM_CPUS_PER_TASK "
                             "SLURM_NTASKS=$$((SLURM_JOB_NUM_NODES * SLURM_NTASKS_PER_NODE)) "
                             "srun --distribution=block:block --hint=nomultithread")
    header = os.path.join(UPSTREAM, "templates", "slurm-archer2")
    assert m.where("run_command") == "%s:%d" % (UP_MACHINES, line_of(UP_MACHINES, "run_command: 'srun"))
    assert not any("'export " in line for line in cat.warnings("archer2") + m.notes)
    prefix = launchers.prefix(m, {"cores": 256, "nodes": 2, "corespernode": 128, "cpn": 128,
                                  "threads": 1, "tasks": 256})
    # run as a job would: a fake srun shows what it was given
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "srun").write_text('#!/bin/sh\necho "$SRUN_CPUS_PER_TASK $SLURM_NTASKS $*"\n')
    (bindir / "srun").chmod(0o755)
    env = {"PATH": "%s:%s" % (bindir, os.environ["PATH"]), "SLURM_CPUS_PER_TASK": "2",
           "SLURM_JOB_NUM_NODES": "2", "SLURM_NTASKS_PER_NODE": "64"}
    for shell in ("dash", "bash"):
        out = subprocess.run([shell, "-c", prefix + " ./app --steps 10"], capture_output=True, text=True,
                             env=env, check=True)
        assert out.stdout == "2 128 --distribution=block:block --hint=nomultithread ./app --steps 10\n", out
    assert os.path.isfile(header)


def test_upstream_lines_only_for_the_machine_in_use_and_only_what_changes_a_job(tmp_path):
    """FabSim3's default block is said about no machine that does not use it; the rest is a note."""
    cat = upstream_catalogue(tmp_path, upstream_user(tmp_path))
    assert cat.warnings("cosma8") == [] and cat.warnings("localhost") == []
    assert cat.machine("localhost").notes == [
        "%s: FabSim3's machine 'localhost' is not imported: hpcdo's built-in localhost is used"
        % os.path.join(str(tmp_path / "upstream-project"), "machines", "fabsim.yml")]
    assert cat.machine("cosma8").notes == []
    user = upstream_user(tmp_path)
    # archer2's warnings: it replaces hpcdo's, and FabSim3 would lay its tasks out otherwise
    assert cat.warnings("archer2") == [
        "%s:%d: FabSim3's machine 'archer2' replaces hpcdo's machine of that name (hpcdo/catalogue/archer2.yml) "
        "as a whole: none of hpcdo's settings for it apply" % (UP_MACHINES, line_of(UP_MACHINES, "archer2:")),
        "%s:%d: machine 'archer2': key 'cpuspertask' ignored (hpcdo writes each run's cpus per task itself, "
        "from the run's threads)" % (user, line_of(user, "cpuspertask: 2", after="archer2:")),
        "%s:%d: machine 'archer2': key 'taskspernode' ignored (hpcdo writes each run's tasks per node itself, "
        "from its cores, threads and corespernode)" % (user, line_of(user, "taskspernode: 64", after="archer2:")),
    ]
    notes = cat.machine("archer2").notes
    # the default block's keys are notes of each machine that has them, with file and line
    assert "%s:%d: default: key 'stat' ignored (hpcdo asks the scheduler about jobs itself)" % (
        UP_MACHINES, line_of(UP_MACHINES, "stat:")) in notes
    for key in ("nb_process", "cancel_job_command", "job_name_template", "temp_path_template", "local_results"):
        assert any("key '%s' ignored (" % key in n for n in notes), key
    assert any("key 'manual_ssh' ignored" in n for n in notes)
    # a value another block replaced is not said twice: cpuspertask 2 from the user file only
    assert not any("cpuspertask" in n for n in notes)
    # the machine in use hears nothing about the others
    for name in ("archer2", "myriad", "eagle_vecma"):
        lines = cat.warnings(name) + cat.notes(name)
        assert not [x for x in lines if "machine '" in x and "machine '%s'" % name not in x], (name, lines)


def test_upstream_error_in_fabsim3s_localhost_leaves_hpcdos_localhost_alone(tmp_path):
    """FabSim3's localhost is never imported, so a mistake in it cannot break hpcdo's, the default machine."""
    from hpcdo.config import BUILTIN
    user = upstream_user(tmp_path, replace=[("  cores: 1              # Total cores user requests",
                                             "  cores: many            # Total cores user requests")])
    cat = upstream_catalogue(tmp_path, user)
    m = cat.machine("localhost")
    assert m.is_local and m.where("scheduler").startswith(BUILTIN + ":")
    assert m.notes == [
        "%s: FabSim3's machine 'localhost' is not imported: hpcdo's built-in localhost is used"
        % os.path.join(str(tmp_path / "upstream-project"), "machines", "fabsim.yml")]
    assert cat.warnings("localhost") == []
    # the other FabSim3 machines are FabSim3's as before
    assert cat.machine("archer2").user == "jdoe"


def test_a_machine_on_remote_localhost_with_a_username_runs_here(tmp_path):
    """FabSim3 machines with ``remote: localhost`` and a username (most users' files set one)
    are this computer: the username is a note, not 'user is set but host is not'."""
    user = upstream_user(tmp_path, extra="""
    mylaptop:
      remote: localhost
      username: jdoe
      home_path_template: /tmp/mylaptop
    """)
    with open(UP_MACHINES) as fh:
        base = fh.read()
    (tmp_path / "machines.yml").write_text(base + "\nmylaptop:\n  remote: localhost\n  job_dispatch: ''\n")
    top = tmp_path / "upstream-project"
    (top / "machines").mkdir(parents=True)
    (top / "machines" / "fabsim.yml").write_text(
        "fabsim3:\n  machines: %s\n  user: %s\n" % (tmp_path / "machines.yml", user))
    cat = Catalogue(str(top))
    m = cat.machine("mylaptop")
    assert m.host is None and m.user is None and m.is_local
    assert any("'username' is not used" in note for note in m.notes), m.notes
    assert not any("username" in w for w in cat.warnings("mylaptop")), cat.warnings("mylaptop")
