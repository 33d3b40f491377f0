"""A small project that is not shaped like the demo, for end-to-end tests of the core.

``tool`` is one C file built by CMake.  Each run's arguments say what it
does: ``--bytes N NAME`` writes NAME with N bytes (directories made as
needed), ``--files N SIZE PREFIX`` writes N files PREFIX0 ... PREFIX<N-1> of
SIZE bytes each, ``--tag NAME`` writes the CMake option TOOL_TAG it was built with,
``--sleep S`` sleeps, ``--exit C`` ends with code C.  Runs are
given as ``(name, args)`` pairs, so a test can make runs whose outputs
differ in size and count, runs that fail, and runs that take a while.
"""

import os
import textwrap

TOOL_C = r"""
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void make_parents(char *path) {
    for (char *p = strchr(path, '/'); p; p = strchr(p + 1, '/')) {
        *p = 0; mkdir(path, 0755); *p = '/';
    }
}

static int write_file(char *name, long n) {
    make_parents(name);
    FILE *f = fopen(name, "w");
    if (!f) { fprintf(stderr, "tool: cannot write %s: %s\n", name, strerror(errno)); return 4; }
    for (long k = 0; k < n; k++) fputc('a' + (int)(k % 26), f);
    fclose(f);
    return 0;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--bytes") && i + 2 < argc) {
            if (write_file(argv[i + 2], atol(argv[i + 1]))) return 4;
            i += 2;
        } else if (!strcmp(argv[i], "--files") && i + 3 < argc) {
            long count = atol(argv[i + 1]), size = atol(argv[i + 2]);
            char name[4096];
            for (long j = 0; j < count; j++) {
                snprintf(name, sizeof name, "%s%ld", argv[i + 3], j);
                if (write_file(name, size)) return 4;
            }
            i += 3;
        } else if (!strcmp(argv[i], "--tag") && i + 1 < argc) {
            FILE *f = fopen(argv[++i], "w");
            if (!f) return 4;
            fprintf(f, "%s\n", TOOL_TAG);
            fclose(f);
        } else if (!strcmp(argv[i], "--sleep") && i + 1 < argc) {
            sleep((unsigned)atoi(argv[++i]));
        } else if (!strcmp(argv[i], "--exit") && i + 1 < argc) {
            int code = atoi(argv[++i]);
            fprintf(stderr, "tool: exiting with %d as asked\n", code);
            return code;
        } else {
            fprintf(stderr, "tool: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    printf("tool: done\n");
    return 0;
}
"""

CMAKELISTS = """\
cmake_minimum_required(VERSION 3.10)
project(tool LANGUAGES C)
set(TOOL_TAG "plain" CACHE STRING "a word built into tool")
add_executable(tool tool.c)
target_compile_definitions(tool PRIVATE TOOL_TAG="${TOOL_TAG}")
"""


def write_source(project_dir, subdir="tool"):
    src = os.path.join(project_dir, subdir)
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "tool.c"), "w") as fh:
        fh.write(TOOL_C)
    with open(os.path.join(src, "CMakeLists.txt"), "w") as fh:
        fh.write(CMAKELISTS)
    return src


def write_recipe(project_dir, runs, cmake_options=None, source="LocalTree('tool')", outputs=("*",),
                 walltime="00:05:00", extra=""):
    """Replace the project's recipes with one recipe ``tool`` making ``runs`` ((name, args) pairs)."""
    rdir = os.path.join(project_dir, "recipes")
    for name in os.listdir(rdir):
        if name.endswith(".py"):
            os.remove(os.path.join(rdir, name))
    lines = [
        "from hpcdo.recipe import Git, LocalTree, Recipe",
        "recipe = Recipe(name='tool', source=%s, executable='tool'," % source,
        "                cmake_options=%r, outputs=%r)" % (dict(cmake_options or {}), list(outputs)),
    ]
    for name, args in runs:
        lines.append("recipe.run(%r, args=%r, cores=1, walltime=%r)" % (name, [str(a) for a in args], walltime))
    with open(os.path.join(rdir, "tool.py"), "w") as fh:
        fh.write("\n".join(lines) + "\n" + textwrap.dedent(extra))


def make(project, runs, **kwargs):
    """Turn a conftest ``Project`` copy into the tool project with ``runs``."""
    write_source(project.path)
    write_recipe(project.path, runs, **kwargs)
    return project


def read_bytes(project, run, name):
    with open(os.path.join(project.results(run), name), "rb") as fh:
        return fh.read()


def expected(n):
    return bytes(ord("a") + k % 26 for k in range(n))
