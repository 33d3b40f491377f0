"""Modules through the module system (real Lmod), in effect in the build and in the job.

The test writes a modulefile of its own that sets a variable and prepends a
directory to PATH, loads it through the machine's ``modules`` list, and
builds a small C program whose CMake configure records the variable (the
build saw the module) and whose run records it again (the job saw it).
Nothing is put in a remote ``.bashrc``: ``module_init`` is sourced by
hpcdo's own scripts.
"""

import os
import shlex
import uuid

import pytest

CMAKELISTS = """cmake_minimum_required(VERSION 3.13)
project(modprobe C)
add_executable(modprobe main.c)
target_compile_definitions(modprobe PRIVATE BUILD_SAW="$ENV{HPCDO_MODULE_PROBE}")
"""

MAIN_C = r"""#include <stdio.h>
#include <stdlib.h>
int main(void) {
    const char *job = getenv("HPCDO_MODULE_PROBE");
    FILE *f = fopen("probe.txt", "w");
    if (!f) return 1;
    fprintf(f, "build=%s\njob=%s\n", BUILD_SAW, job ? job : "");
    return fclose(f) != 0;
}
"""

RECIPE = """from hpcdo.recipe import LocalTree, Recipe
recipe = Recipe(name="modprobe", source=LocalTree("modprobe"), executable="modprobe",
                outputs=["probe.txt"])
recipe.run("one", walltime="00:05:00")
"""


@pytest.fixture(params=["testslurm", "testsge", "testpbs"])
def module_project(request, tmp_path, cluster):
    from conftest import Project
    init = cluster.env.get("HPCDO_LMOD_INIT_SH")
    moduledir = cluster.env.get("HPCDO_MODULEFILES")
    assert init and moduledir, "the test cluster has no Lmod (cluster.env lacks HPCDO_LMOD_INIT_SH)"
    root = "hpcdo-tests/%s" % uuid.uuid4().hex[:12]
    project = Project(tmp_path / "project", request.param, root, cluster)
    os.remove(project.file("recipes/lbflow.py"))
    os.makedirs(project.file("modprobe"))
    for name, text in (("recipes/modprobe.py", RECIPE), ("modprobe/CMakeLists.txt", CMAKELISTS),
                       ("modprobe/main.c", MAIN_C)):
        with open(project.file(name), "w") as fh:
            fh.write(text)
    # a modulefile of this test's own, in the cluster's module directory
    name = "hpcdotest%s" % uuid.uuid4().hex[:8]
    value = "loaded-%s" % uuid.uuid4().hex[:8]
    lua = 'setenv("HPCDO_MODULE_PROBE", "%s")\n' % value
    cluster.ssh("mkdir -p %s && printf %%s %s > %s" % (
        shlex.quote("%s/%s" % (moduledir, name)), shlex.quote(lua),
        shlex.quote("%s/%s/1.0.lua" % (moduledir, name))))
    project.module_args = ("module_init=%s" % init,
                           "modules=[use %s, load %s/1.0]" % (moduledir, name))
    project.module_value = value
    yield project
    cluster.ssh("rm -rf %s %s" % (shlex.quote("%s/%s" % (moduledir, name)), shlex.quote(root)), check=False)


def test_module_is_in_effect_in_build_and_job(module_project):
    out = module_project.doit("fetch_results", *module_project.module_args)
    assert {"configure", "compile", "submit:one", "fetch_results:one"} <= out.ran_set(), out
    with open(os.path.join(module_project.results("one"), "probe.txt")) as fh:
        seen = fh.read()
    value = module_project.module_value
    assert seen == "build=%s\njob=%s\n" % (value, value), seen
    # the jobscript loads it through the module command, not through a shell start-up file
    script = module_project.remote("cat modprobe/runs/one/job.sh")
    assert "module load" in script and module_project.module_args[0].split("=", 1)[1] in script, script
    assert module_project.remote("cat .bashrc .profile 2>/dev/null | grep -c HPCDO_MODULE_PROBE").strip() in ("", "0")


def test_unknown_module_fails_the_build_with_the_module_systems_message(module_project):
    out = module_project.doit("compile", module_project.module_args[0],
                              "modules=[use /nonexistent, load no-such-module/9.9]", ok=False)
    assert "no-such-module" in out.out, out
    assert "Traceback" not in out.out
    # nothing recorded as done
    assert module_project.remote("ls modprobe/build/.hpcdo-configure 2>/dev/null").strip() == ""
