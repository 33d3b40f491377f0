"""Hostile and bad input: names, parameters and paths full of shell syntax.

Every value that travels to the machine -- run arguments, environment
values, a CMake option, a geometry's file name, the work root, the local
project path -- is made of spaces, quotes, ``;``, ``$()``, backticks,
newlines and unicode, each carrying a command that would leave a canary
file in /tmp if any shell ever ran it.  The job (a tiny C program built by
CMake on the cluster) writes back the arguments and environment it got, hex
encoded: they must arrive byte for byte, and no canary may appear.  Values
that cannot be passed literally (names that become task and directory
names, scheduler directives) must be refused with one clear message.
"""

import json
import os
import re
import shlex
import uuid

import pytest

from faults_helpers import jobs_for, no_traceback

ECHOARGS_C = r"""
#include <stdio.h>
#include <stdlib.h>
static void hex(FILE *f, const char *s) { for (; *s; s++) fprintf(f, "%02x", (unsigned char)*s); fputc('\n', f); }
int main(int argc, char **argv) {
    FILE *f = fopen("args.hex", "w");
    if (!f) return 1;
    for (int i = 1; i < argc; i++) hex(f, argv[i]);
    const char *e = getenv("HPCDO_WEIRD");
    fputs("env=", f);
    hex(f, e ? e : "(unset)");
    const char *r = getenv("HPCDO_WEIRD_RECIPE");
    fputs("env=", f);
    hex(f, r ? r : "(unset)");
    return fclose(f) != 0;
}
"""

ECHOARGS_CMAKE = """cmake_minimum_required(VERSION 3.10)
project(echoargs C)
add_executable(echoargs echoargs.c)
file(WRITE "${CMAKE_BINARY_DIR}/weird-option.txt" "${HPCDO_WEIRD_OPT}")
"""


class Canaries:
    """Commands that leave /tmp/hpcdo-pwned-<id>-<n> if a shell ever runs them."""

    def __init__(self):
        self.base = "/tmp/hpcdo-pwned-%s" % uuid.uuid4().hex[:10]
        self.n = 0

    def cmd(self):
        self.n += 1
        return "touch %s-%d" % (self.base, self.n)

    def cmd_noslash(self):
        """The same, without a '/' (for file names): printf writes the slashes."""
        self.n += 1
        path = "%s-%d" % (self.base, self.n)
        return "touch $(printf '%s')" % path.replace("/", "\\057")

    def hatched(self):
        d = os.path.dirname(self.base)
        return sorted(f for f in os.listdir(d) if f.startswith(os.path.basename(self.base)))


def weird_values(c):
    return [
        "has space", "it's", 'say "hi"', "back\\slash", "", "*", "$HOME", "--", "%s%n",
        "a;%s" % c.cmd(),
        "$(%s)" % c.cmd(),
        "`%s`" % c.cmd(),
        "line1\nline2; %s" % c.cmd(),
        "'; %s; echo '" % c.cmd(),
        '"; %s; echo "' % c.cmd(),
        "| %s &" % c.cmd(),
        "ünïcødé ✓ 数据 \u202e",
        "{{literal braces}}",
    ]


def make_project(tmp_path, cluster, canaries, weird_root=True):
    from conftest import Project
    base = "hpcdo-tests/%s" % uuid.uuid4().hex[:12]
    # CMake and make cannot build below a path holding ; " \\ | or # (see
    # test_work_root_cmake_cannot_use); everything else goes in.  Slashes in the work
    # root only make more directories, so the canary keeps its own.  $NAME and ${NAME}
    # expand on the machine by design (tests/unit/test_scripts.py); $1 and $$
    # are no variable names and must stay literal text.
    root = base + ("/work root 'q' ü $1 $$ & {a} `%s`" % canaries.cmd() if weird_root else "")
    local = tmp_path / ("pro ject 'x' $(%s) ü;" % canaries.cmd_noslash())
    project = Project(local, "testslurm", root, cluster)
    project.cleanup_root = base
    src = project.file("demo/echoargs")
    os.makedirs(src)
    with open(os.path.join(src, "echoargs.c"), "w") as fh:
        fh.write(ECHOARGS_C)
    with open(os.path.join(src, "CMakeLists.txt"), "w") as fh:
        fh.write(ECHOARGS_CMAKE)
    return project


@pytest.fixture
def canaries():
    c = Canaries()
    yield c
    for name in c.hatched():
        os.remove(os.path.join("/tmp", name))


@pytest.fixture
def weird_project(tmp_path, cluster, canaries):
    project = make_project(tmp_path, cluster, canaries)
    yield project
    cluster.cancel_all("testslurm")
    cluster.ssh("rm -rf %s" % shlex.quote(project.cleanup_root), check=False)


def test_weird_values_reach_the_job_literally_and_never_run(weird_project, canaries):
    project = weird_project
    args = weird_values(canaries)
    env_value = "$(%s) `%s`; it's \"x\"\nnext" % (canaries.cmd(), canaries.cmd())
    recipe_env = "ü $HOME ;%s" % canaries.cmd()
    option = "x;$(%s) 'q' \"dq\" `%s`" % (canaries.cmd(), canaries.cmd())
    geometry_name = "g e'o$(%s)`%s`;\"ü\"\n.gmy" % (canaries.cmd_noslash(), canaries.cmd_noslash())
    os.makedirs(project.file("demo/weird"))
    with open(project.file("demo/weird/" + geometry_name), "w") as fh:
        fh.write("not really a geometry\n")
    with open(project.file("recipes/lbflow.py"), "w") as fh:
        fh.write("from hpcdo.recipe import LocalTree, Recipe\n"
                 "recipe = Recipe(name='echo', source=LocalTree('demo/echoargs'), executable='echoargs',\n"
                 "    cmake_options={'HPCDO_WEIRD_OPT': %r},\n"
                 "    geometries={'g': %r}, outputs=['args.hex'], env={'HPCDO_WEIRD_RECIPE': %r})\n"
                 "recipe.run('weird', geometry='g', args=%r + ['{geometry}', '{run}'],\n"
                 "           env={'HPCDO_WEIRD': %r}, cores=1, walltime='00:05:00')\n"
                 % (option, "demo/weird/" + geometry_name, recipe_env, args, env_value))
    out = project.doit("fetch_results")
    no_traceback(out)
    assert canaries.hatched() == [], "a value was executed as shell code: %s" % canaries.hatched()

    lines = open(os.path.join(project.results("weird"), "args.hex")).read().splitlines()
    got_args = [bytes.fromhex(h).decode("utf-8") for h in lines if not h.startswith("env=")]
    got_env = [bytes.fromhex(h[4:]).decode("utf-8") for h in lines if h.startswith("env=")]
    expected = [a.replace("{{", "{").replace("}}", "}") for a in args] + [geometry_name, "weird"]
    assert got_args == expected
    assert got_env == [env_value, recipe_env]
    assert project.remote("cat echo/build/weird-option.txt") == option
    # the geometry reached the run directory under its own name, and the provenance is valid JSON
    assert project.remote("cat echo/runs/weird/%s" % shlex.quote(geometry_name)) == "not really a geometry\n"
    prov = json.load(open(os.path.join(project.results("weird"), "hpcdo-provenance.json")))
    assert prov["run_settings"]["args"][:len(args)] == args
    # and nothing is stale on the next call
    assert project.doit("fetch_results").ran == []
    assert canaries.hatched() == []


def one_error_line(out, *needles):
    assert out.rc != 0, out
    no_traceback(out)
    errors = [line for line in out.out.splitlines() if line.startswith("hpcdo: error:")]
    assert len(errors) == 1, out
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize("name", ["two words", "a;b", "$(id)", "`id`", "new\nline", "quo'te", "dq\"x",
                                  "ünï", "../up", "-rf", ""])
def test_unsafe_run_names_are_refused(local_project, canaries, name):
    with open(local_project.file("recipes/lbflow.py"), "a") as fh:
        fh.write("\nrecipe.run(%r, geometry='straight')\n" % name)
    line_no = len(open(local_project.file("recipes/lbflow.py")).read().splitlines())
    out = local_project.doit("list", ok=None)
    one_error_line(out, "recipes/lbflow.py:%d:" % line_no, "run name")


@pytest.mark.parametrize("key,value", [
    ("partition", "debug;touch {canary}"),
    ("account", "$(touch {canary})"),
    ("qos", "`touch {canary}`"),
    ("memory", "4G;touch {canary}"),
])
def test_unsafe_scheduler_values_are_refused(slurm_project, canaries, key, value):
    """Values that go into #SBATCH lines cannot be quoted there: they are refused, nothing is queued."""
    project = slurm_project
    value = value.format(canary=canaries.cmd()[len("touch "):])
    out = project.doit("fetch_results", "%s=%s" % (key, value), ok=False)
    no_traceback(out)
    assert re.search(r"cannot go into a scheduler directive|must be", out.out), out
    # the message names the key (a type error does not repeat the value: it might be a secret)
    assert value in out.out or repr(value) in out.out or "key '%s'" % key in out.out, out
    assert canaries.hatched() == []
    assert jobs_for(project, "straight") == []


def test_module_names_are_passed_literally(slurm_project, canaries):
    """A module name full of shell syntax reaches `module load` as one word, and fails there."""
    project = slurm_project
    bad = "$(%s);`%s`" % (canaries.cmd(), canaries.cmd())
    out = project.doit("configure", "module_init=/usr/share/lmod/lmod/init/sh",
                       "modules=[%s]" % json.dumps(bad), ok=False)
    no_traceback(out)
    assert canaries.hatched() == []
    assert "configure" in out.ran, out


@pytest.mark.parametrize("bad", ["a;b", 'a"b', "a\\b", "a|b", "a[1]", "a?b", "$(touch {canary})", "r & x#y",
                                 "a${{X:-y}}b", "a${{Xb"])
def test_work_root_cmake_cannot_use(slurm_project, canaries, bad):
    """A work root CMake or make cannot build in is refused with a clear message naming
    remote_root, or else the build works in it.  (CMake splits ; into a list and mangles \\
    and "; make cuts a line at # and its shell then runs what follows a & in the path: with
    "r & x#y" the build fails with "/bin/sh: 1: x: not found".)"""
    project = slurm_project
    bad = bad.format(canary=canaries.cmd()[len("touch "):])
    project.remote_root = project.remote_root + "/" + bad
    out = project.doit("compile", ok=None)
    no_traceback(out)
    assert canaries.hatched() == []
    if out.rc != 0:
        errors = [line for line in out.out.splitlines() if "remote_root" in line]
        assert errors, out
        assert "CMake Error" not in out.out, out
    else:
        assert project.remote("test -x lbflow/build/lbflow && echo ok").strip() == "ok"


def test_carriage_return_in_an_argument(slurm_project, canaries):
    """Slurm refuses a jobscript holding a carriage return ("DOS line breaks"), so an argument
    with one is either passed some other way, literally, or refused when the recipe loads --
    not after building, by sbatch, with a message that does not say which argument."""
    project = slurm_project
    arg = "x\r\n%s #" % canaries.cmd()
    with open(project.file("recipes/lbflow.py"), "a") as fh:
        fh.write("\nrecipe.run('cr', geometry='straight', args=['--geometry', '{geometry}', '--steps', '100', %r])\n"
                 % arg)
    out = project.doit("submit:cr", ok=None)
    no_traceback(out)
    assert canaries.hatched() == []
    if out.rc != 0:
        line_no = len(open(project.file("recipes/lbflow.py")).read().splitlines())
        one_error_line(out, "recipes/lbflow.py:%d:" % line_no, "run cr")
        assert out.ran == [], out
    else:
        assert "submit:cr" in out.ran, out
        # (ssh output is read as text, which turns \r into \n: count on the machine)
        assert project.remote("grep -c \"$(printf '\\r')\" lbflow/runs/cr/job.sh").strip() == "0"


@pytest.mark.parametrize("shape", ["{base}/a #b", "{base}/a\t#b", "'{tag}'", "&x {tag}", "!!str {tag}"])
def test_command_line_values_are_taken_literally(slurm_project, shape):
    """``key=value`` words on the command line: a string setting gets the text as typed.
    (They are read as YAML: " #" starts a comment, "&x " an anchor, "!!str " a tag, and
    quotes vanish -- each silently changes a path.)"""
    project = slurm_project
    tag = "hpcdo-literal-%s" % uuid.uuid4().hex[:8]
    root = shape.format(base=project.remote_root, tag=tag)
    project.remote_root = root
    try:
        out = project.doit("clone", ok=None)
        no_traceback(out)
        if out.rc == 0:
            assert project.cluster.ssh("cd %s && test -f lbflow/src/CMakeLists.txt" % shlex.quote(root),
                                       check=False).returncode == 0, "the work root is not %r" % root
        else:
            one_error_line(out, "remote_root")
    finally:
        project.cluster.ssh("rm -rf %s %s" % (shlex.quote(tag), shlex.quote(root)), check=False)
