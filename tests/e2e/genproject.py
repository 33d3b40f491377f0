"""Random but reproducible hpcdo projects, for tests that are not the demo.

``generate(seed)`` builds a :class:`ProjectSpec` from ``random.Random(seed)``:
1-3 recipes, each its own small C or C++ CMake code in one of several
layouts (a flat C program, a static library plus an app in ``apps/``, a
``bin/`` output directory with a ``configure_file`` header and an
``option()``, a C++ code with a ``cmake/`` module), with 1-20 runs each.
Run names sit at the edge of ``recipe.NAME_RE`` (64 characters, one
character, dots, dashes, underscores, digits first); runs write outputs of
very different sizes (0 bytes to a few MB) and counts (none, one, dozens),
in nested directories, matched (or deliberately not matched) by output
patterns; some read a geometry-like input file, some do not.

Every generated program has the same behaviour, which :func:`simulate`
reproduces in Python, so a test knows byte for byte what each run's job
writes and which of those files ``fetch_results`` must bring back
(:meth:`ProjectSpec.expected`).  The program reads its arguments in order:

``--run NAME``              the run's name, part of every file's content
``--file PATH SIZE``        write SIZE bytes to PATH (parent directories made)
``file=PATH:SIZE``          the same, in one argument
``--many PREFIX N SIZE``    write PREFIX000 ... PREFIX<N-1>, SIZE bytes each
``--input PATH OUT``        write "PATH <size> <fnv1a32>" of the file PATH to OUT
``--echo OUT``              write every argument, one a line, then ``env=$GEN_MODE``
``--note TEXT``, ``--cores N``  only echoed

A file's content is lines ``<salt>|<run>|<path> <i> <hash>``, cut to SIZE
bytes; the salt is a CMake option of the recipe, so results also prove
which build made them.

The end of the module holds what the tests using these projects share
(``make_project``, ``Checks``: failed checks collected so that a scenario goes
on and reports all of them, each fetched file compared with what its run
wrote).

Run it by hand to look at one project::

    python3 tests/e2e/genproject.py SEED DIR
"""

import fnmatch
import json
import os
import random
import shutil
import string
import sys

import pytest

#: files hpcdo itself puts in every fetched result directory
HPCDO_FILES = {"job.sh", "job.out", "job.exit", "job.id", "job.started", "hpcdo-provenance.json"}

FNV0 = 2166136261
MASK = 0xFFFFFFFF
NAME_FIRST = string.ascii_letters + string.digits
NAME_REST = string.ascii_letters + string.digits + "_.-"
MB = 1024 * 1024


# -- what a generated program does (the reference the tests check against) ----

def fnv1a(data, h=FNV0):
    for byte in data:
        h = ((h ^ byte) * 16777619) & MASK
    return h


def _mix(h, i):
    h ^= (i * 2654435761) & MASK
    h ^= h >> 15
    h = (h * 2246822519) & MASK
    h ^= h >> 13
    return h


def content(salt, run, path, size):
    """The bytes ``--file path size`` writes in run ``run`` of a program built with ``salt``."""
    tag = "%s|%s|%s" % (salt, run, path)
    h = fnv1a(tag.encode())
    out, n, i = [], 0, 0
    while n < size:
        line = "%s %d %08x\n" % (tag, i, _mix(h, i))
        out.append(line)
        n += len(line)
        i += 1
    return "".join(out).encode()[:size]


def simulate(salt, echo_header, argv, inputs, env_mode=None):
    """{path: bytes} that the program writes when run with ``argv`` (arguments after the
    program name) in a directory where ``inputs`` ({name: bytes}) are present."""
    files = {}
    run = "norun"
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--run" and i + 1 < len(argv):
            run = argv[i + 1]
            i += 1
        elif a == "--file" and i + 2 < len(argv):
            files[argv[i + 1]] = content(salt, run, argv[i + 1], int(argv[i + 2]))
            i += 2
        elif a.startswith("file="):
            path, size = a[5:].rsplit(":", 1)
            files[path] = content(salt, run, path, int(size))
        elif a == "--many" and i + 3 < len(argv):
            prefix, count, size = argv[i + 1], int(argv[i + 2]), int(argv[i + 3])
            for k in range(count):
                path = "%s%03d" % (prefix, k)
                files[path] = content(salt, run, path, size)
            i += 3
        elif a == "--input" and i + 2 < len(argv):
            data = inputs[argv[i + 1]]
            files[argv[i + 2]] = ("%s %d %08x\n" % (argv[i + 1], len(data), fnv1a(data))).encode()
            i += 2
        elif a == "--echo" and i + 1 < len(argv):
            text = "# gen echo %s\n" % salt if echo_header else ""
            text += "".join(x + "\n" for x in argv)
            text += "env=%s\n" % ("(unset)" if env_mode is None else env_mode)
            files[argv[i + 1]] = text.encode()
            i += 1
        elif a in ("--note", "--cores") and i + 1 < len(argv):
            i += 1
        else:
            raise ValueError("the generated program would refuse argument %r" % a)
        i += 1
    return files


def matched(path, patterns):
    """Whether the remote shell's ``for f in $pattern`` picks ``path`` (or a directory holding it)."""
    parts = path.split("/")
    for pattern in patterns:
        pp = pattern.split("/")
        if len(pp) <= len(parts) and all(
                fnmatch.fnmatchcase(parts[k], pp[k]) and not (parts[k].startswith(".") and not pp[k].startswith("."))
                for k in range(len(pp))):
            return True
    return False


# -- the C and C++ sources ----------------------------------------------------------

C_WRITER = r"""/* gen writer: deterministic output files (see tests/e2e/genproject.py) */
#include "%(header)s"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

uint32_t gen_fnv(const unsigned char *p, size_t n, uint32_t h)
{
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 16777619u; }
    return h;
}

static uint32_t mix(uint32_t h, uint32_t i)
{
    h ^= i * 2654435761u; h ^= h >> 15; h *= 2246822519u; h ^= h >> 13;
    return h;
}

int gen_mkdirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof buf) return -1;
    memcpy(buf, path, n + 1);
    for (char *s = buf + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
        *s = '/';
    }
    return 0;
}

int gen_write(const char *salt, const char *run, const char *path, long size)
{
    char tag[1024], line[1200];
    snprintf(tag, sizeof tag, "%%s|%%s|%%s", salt, run, path);
    uint32_t h = gen_fnv((const unsigned char *)tag, strlen(tag), 2166136261u);
    if (gen_mkdirs(path)) return -1;
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    long done = 0;
    uint32_t i = 0;
    while (done < size) {
        int len = snprintf(line, sizeof line, "%%s %%lu %%08lx\n", tag, (unsigned long)i,
                           (unsigned long)mix(h, i));
        long take = len < size - done ? len : size - done;
        if (fwrite(line, 1, (size_t)take, f) != (size_t)take) { fclose(f); return -1; }
        done += take;
        i++;
    }
    return fclose(f);
}

int gen_sum(const char *input, const char *out)
{
    FILE *f = fopen(input, "rb");
    if (!f) return -1;
    unsigned char buf[65536];
    size_t n;
    long total = 0;
    uint32_t h = 2166136261u;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) { h = gen_fnv(buf, n, h); total += (long)n; }
    fclose(f);
    if (gen_mkdirs(out)) return -1;
    FILE *o = fopen(out, "wb");
    if (!o) return -1;
    fprintf(o, "%%s %%ld %%08lx\n", input, total, (unsigned long)h);
    return fclose(o);
}

int gen_echo(const char *salt, int echo_header, const char *out, int argc, char **argv)
{
    if (gen_mkdirs(out)) return -1;
    FILE *o = fopen(out, "wb");
    if (!o) return -1;
    if (echo_header) fprintf(o, "# gen echo %%s\n", salt);
    for (int i = 1; i < argc; i++) fprintf(o, "%%s\n", argv[i]);
    const char *mode = getenv("GEN_MODE");
    fprintf(o, "env=%%s\n", mode ? mode : "(unset)");
    return fclose(o);
}
"""

C_HEADER = r"""#ifndef %(guard)s
#define %(guard)s
#include <stddef.h>
#include <stdint.h>
uint32_t gen_fnv(const unsigned char *p, size_t n, uint32_t h);
int gen_mkdirs(const char *path);
int gen_write(const char *salt, const char *run, const char *path, long size);
int gen_sum(const char *input, const char *out);
int gen_echo(const char *salt, int echo_header, const char *out, int argc, char **argv);
#endif
"""

C_MAIN = r"""/* %(title)s: writes the files its arguments ask for */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "%(header)s"
%(config)s
static int fail(const char *what, const char *arg)
{
    fprintf(stderr, "%(title)s: %%s %%s failed\n", what, arg);
    return 1;
}

int main(int argc, char **argv)
{
    const char *run = "norun";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--run") && i + 1 < argc) {
            run = argv[++i];
        } else if (!strcmp(a, "--file") && i + 2 < argc) {
            if (gen_write(GEN_SALT, run, argv[i + 1], atol(argv[i + 2]))) return fail("write", argv[i + 1]);
            i += 2;
        } else if (!strncmp(a, "file=", 5)) {
            char path[2048];
            const char *colon = strrchr(a, ':');
            if (!colon || (size_t)(colon - a - 5) >= sizeof path) return fail("parse", a);
            memcpy(path, a + 5, (size_t)(colon - a - 5));
            path[colon - a - 5] = 0;
            if (gen_write(GEN_SALT, run, path, atol(colon + 1))) return fail("write", path);
        } else if (!strcmp(a, "--many") && i + 3 < argc) {
            int count = atoi(argv[i + 2]);
            for (int k = 0; k < count; k++) {
                char path[2048];
                snprintf(path, sizeof path, "%%s%%03d", argv[i + 1], k);
                if (gen_write(GEN_SALT, run, path, atol(argv[i + 3]))) return fail("write", path);
            }
            i += 3;
        } else if (!strcmp(a, "--input") && i + 2 < argc) {
            if (gen_sum(argv[i + 1], argv[i + 2])) return fail("read", argv[i + 1]);
            i += 2;
        } else if (!strcmp(a, "--echo") && i + 1 < argc) {
            if (gen_echo(GEN_SALT, GEN_ECHO_HEADER, argv[i + 1], argc, argv)) return fail("echo", argv[i + 1]);
            i += 1;
        } else if ((!strcmp(a, "--note") || !strcmp(a, "--cores")) && i + 1 < argc) {
            i += 1;
        } else {
            fprintf(stderr, "%(title)s: unknown argument %%s\n", a);
            return 2;
        }
    }
    printf("%(title)s: run %%s done\n", run);
    return 0;
}
"""

CXX_WRITER_HPP = r"""#pragma once
// gen writer (C++): deterministic output files, see tests/e2e/genproject.py
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace %(ns)s {

class Writer {
public:
    Writer(std::string salt, bool echo_header) : salt_(std::move(salt)), echo_header_(echo_header) {}
    void set_run(const std::string &run) { run_ = run; }
    void write(const std::string &path, long size) const;
    void sum(const std::string &input, const std::string &out) const;
    void echo(const std::string &out, const std::vector<std::string> &args) const;

private:
    std::string salt_;
    bool echo_header_;
    std::string run_ = "norun";
};

std::uint32_t fnv(const unsigned char *p, std::size_t n, std::uint32_t h = 2166136261u);

}  // namespace %(ns)s
"""

CXX_WRITER_CPP = r"""#include "%(header)s"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace %(ns)s {

std::uint32_t fnv(const unsigned char *p, std::size_t n, std::uint32_t h)
{
    for (std::size_t i = 0; i < n; ++i) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

namespace {

std::uint32_t mix(std::uint32_t h, std::uint32_t i)
{
    h ^= i * 2654435761u;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    return h;
}

std::ofstream open_out(const std::string &path)
{
    std::filesystem::path p(path);
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write " + path);
    return out;
}

}  // namespace

void Writer::write(const std::string &path, long size) const
{
    const std::string tag = salt_ + "|" + run_ + "|" + path;
    const std::uint32_t h = fnv(reinterpret_cast<const unsigned char *>(tag.data()), tag.size());
    std::ofstream out = open_out(path);
    long done = 0;
    std::uint32_t i = 0;
    char line[1200];
    while (done < size) {
        int len = std::snprintf(line, sizeof line, "%%s %%lu %%08lx\n", tag.c_str(),
                                static_cast<unsigned long>(i), static_cast<unsigned long>(mix(h, i)));
        long take = len < size - done ? len : size - done;
        out.write(line, take);
        done += take;
        ++i;
    }
    if (!out) throw std::runtime_error("short write to " + path);
}

void Writer::sum(const std::string &input, const std::string &out_path) const
{
    std::ifstream in(input, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + input);
    std::vector<unsigned char> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::uint32_t h = fnv(data.data(), data.size());
    char line[2300];
    std::snprintf(line, sizeof line, "%%s %%ld %%08lx\n", input.c_str(), static_cast<long>(data.size()),
                  static_cast<unsigned long>(h));
    std::ofstream out = open_out(out_path);
    out << line;
}

void Writer::echo(const std::string &out_path, const std::vector<std::string> &args) const
{
    std::ofstream out = open_out(out_path);
    if (echo_header_) out << "# gen echo " << salt_ << "\n";
    for (const auto &a : args) out << a << "\n";
    const char *mode = std::getenv("GEN_MODE");
    out << "env=" << (mode ? mode : "(unset)") << "\n";
}

}  // namespace %(ns)s
"""

CXX_MAIN = r"""// %(title)s: writes the files its arguments ask for
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "%(header)s"
%(config)s
int main(int argc, char **argv)
{
    const std::vector<std::string> args(argv + 1, argv + argc);
    %(ns)s::Writer writer(GEN_SALT, GEN_ECHO_HEADER != 0);
    std::string run = "norun";
    try {
        for (std::size_t i = 0; i < args.size(); ++i) {
            const std::string &a = args[i];
            const std::size_t left = args.size() - i - 1;
            if (a == "--run" && left >= 1) {
                run = args[++i];
                writer.set_run(run);
            } else if (a == "--file" && left >= 2) {
                writer.write(args[i + 1], std::atol(args[i + 2].c_str()));
                i += 2;
            } else if (a.rfind("file=", 0) == 0) {
                const std::size_t colon = a.rfind(':');
                writer.write(a.substr(5, colon - 5), std::atol(a.c_str() + colon + 1));
            } else if (a == "--many" && left >= 3) {
                const int count = std::atoi(args[i + 2].c_str());
                for (int k = 0; k < count; ++k) {
                    char suffix[16];
                    std::snprintf(suffix, sizeof suffix, "%%03d", k);
                    writer.write(args[i + 1] + suffix, std::atol(args[i + 3].c_str()));
                }
                i += 3;
            } else if (a == "--input" && left >= 2) {
                writer.sum(args[i + 1], args[i + 2]);
                i += 2;
            } else if (a == "--echo" && left >= 1) {
                writer.echo(args[i + 1], args);
                i += 1;
            } else if ((a == "--note" || a == "--cores") && left >= 1) {
                i += 1;
            } else {
                std::cerr << "%(title)s: unknown argument " << a << "\n";
                return 2;
            }
        }
    } catch (const std::exception &e) {
        std::cerr << "%(title)s: " << e.what() << "\n";
        return 1;
    }
    std::cout << "%(title)s: run " << run << " done\n";
    return 0;
}
"""

LAYOUTS = ("flat-c", "libapp-cxx", "bin-c-config", "cxx-cmake-module")


def _sources(layout, project_name, exe, salt_default):
    """{relative path: text} of one generated code, and its executable path in the build dir."""
    p = project_name
    if layout == "flat-c":
        files = {
            "CMakeLists.txt": (
                "cmake_minimum_required(VERSION 3.13)\n"
                "project(%(p)s C)\n"
                'set(GEN_SALT "unset" CACHE STRING "salt written into every output")\n'
                "option(GEN_ECHO_HEADER \"start echo files with a header line\" OFF)\n"
                "add_executable(%(exe)s main.c writer.c)\n"
                "target_compile_definitions(%(exe)s PRIVATE GEN_SALT=\"${GEN_SALT}\")\n"
                "if(GEN_ECHO_HEADER)\n"
                "  target_compile_definitions(%(exe)s PRIVATE GEN_ECHO_HEADER=1)\n"
                "endif()\n" % {"p": p, "exe": exe}),
            "writer.h": C_HEADER % {"guard": "GEN_WRITER_H"},
            "writer.c": C_WRITER % {"header": "writer.h"},
            "main.c": C_MAIN % {"title": exe, "header": "writer.h",
                                "config": "#ifndef GEN_ECHO_HEADER\n#define GEN_ECHO_HEADER 0\n#endif\n"},
        }
        return files, exe
    if layout == "libapp-cxx":
        files = {
            "CMakeLists.txt": (
                "cmake_minimum_required(VERSION 3.13)\n"
                "project(%(p)s VERSION 1.0 LANGUAGES CXX)\n"
                "set(CMAKE_CXX_STANDARD 17)\n"
                "set(CMAKE_CXX_STANDARD_REQUIRED ON)\n"
                'set(GEN_SALT "unset" CACHE STRING "salt written into every output")\n'
                "option(GEN_ECHO_HEADER \"start echo files with a header line\" OFF)\n"
                "add_subdirectory(lib)\n"
                "add_subdirectory(apps)\n" % {"p": p}),
            "lib/CMakeLists.txt": (
                "configure_file(salt.hpp.in ${CMAKE_CURRENT_BINARY_DIR}/gen/salt.hpp @ONLY)\n"
                "add_library(genio STATIC writer.cpp)\n"
                "target_include_directories(genio PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include\n"
                "                                 ${CMAKE_CURRENT_BINARY_DIR})\n"),
            "lib/salt.hpp.in": ('#pragma once\n#define GEN_SALT "@GEN_SALT@"\n'
                                "#cmakedefine01 GEN_ECHO_HEADER\n"),
            "lib/include/gen/writer.hpp": CXX_WRITER_HPP % {"ns": "gen"},
            "lib/writer.cpp": CXX_WRITER_CPP % {"header": "gen/writer.hpp", "ns": "gen"},
            "apps/CMakeLists.txt": ("add_executable(%(exe)s %(exe)s.cpp)\n"
                                    "target_link_libraries(%(exe)s PRIVATE genio)\n" % {"exe": exe}),
            "apps/%s.cpp" % exe: CXX_MAIN % {"title": exe, "header": "gen/writer.hpp", "ns": "gen",
                                             "config": '#include "gen/salt.hpp"\n'},
        }
        return files, "apps/" + exe
    if layout == "bin-c-config":
        files = {
            "CMakeLists.txt": (
                "cmake_minimum_required(VERSION 3.13)\n"
                "project(%(p)s VERSION 0.3.1 LANGUAGES C)\n"
                "include(${CMAKE_CURRENT_SOURCE_DIR}/cmake/Options.cmake)\n"
                "set(CMAKE_RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)\n"
                "configure_file(src/config.h.in ${CMAKE_BINARY_DIR}/generated/config.h)\n"
                "add_library(%(exe)s_core STATIC src/writer.c)\n"
                "target_include_directories(%(exe)s_core PUBLIC include)\n"
                "add_executable(%(exe)s src/main.c)\n"
                "target_include_directories(%(exe)s PRIVATE ${CMAKE_BINARY_DIR}/generated)\n"
                "target_link_libraries(%(exe)s PRIVATE %(exe)s_core)\n" % {"p": p, "exe": exe}),
            "cmake/Options.cmake": (
                'set(GEN_SALT "unset" CACHE STRING "salt written into every output")\n'
                "option(GEN_ECHO_HEADER \"start echo files with a header line\" OFF)\n"),
            "src/config.h.in": ("/* generated by CMake from config.h.in */\n"
                                '#define GEN_SALT "@GEN_SALT@"\n'
                                "#cmakedefine01 GEN_ECHO_HEADER\n"
                                '#define GEN_VERSION "@PROJECT_VERSION@"\n'),
            "include/gen_writer.h": C_HEADER % {"guard": "GEN_WRITER_H"},
            "src/writer.c": C_WRITER % {"header": "gen_writer.h"},
            "src/main.c": C_MAIN % {"title": exe, "header": "gen_writer.h", "config": '#include "config.h"\n'},
        }
        return files, "bin/" + exe
    if layout == "cxx-cmake-module":
        files = {
            "CMakeLists.txt": (
                "cmake_minimum_required(VERSION 3.13)\n"
                "project(%(p)s LANGUAGES CXX)\n"
                "list(APPEND CMAKE_MODULE_PATH ${CMAKE_CURRENT_SOURCE_DIR}/cmake)\n"
                "include(GenSettings)\n"
                "add_executable(%(exe)s src/main.cpp src/writer.cpp)\n"
                "target_include_directories(%(exe)s PRIVATE src ${CMAKE_CURRENT_BINARY_DIR})\n"
                "gen_configure(%(exe)s)\n" % {"p": p, "exe": exe}),
            "cmake/GenSettings.cmake": (
                "set(CMAKE_CXX_STANDARD 17)\n"
                'set(GEN_SALT "unset" CACHE STRING "salt written into every output")\n'
                "option(GEN_ECHO_HEADER \"start echo files with a header line\" OFF)\n"
                "function(gen_configure target)\n"
                "  configure_file(${PROJECT_SOURCE_DIR}/src/settings.h.in ${PROJECT_BINARY_DIR}/settings.h)\n"
                "endfunction()\n"),
            "src/settings.h.in": ('#pragma once\n#define GEN_SALT "${GEN_SALT}"\n'
                                  "#cmakedefine01 GEN_ECHO_HEADER\n"),
            "src/writer.hpp": CXX_WRITER_HPP % {"ns": "sim"},
            "src/writer.cpp": CXX_WRITER_CPP % {"header": "writer.hpp", "ns": "sim"},
            "src/main.cpp": CXX_MAIN % {"title": exe, "header": "writer.hpp", "ns": "sim",
                                        "config": '#include "settings.h"\n'},
        }
        return files, exe
    raise ValueError(layout)


# -- the project --------------------------------------------------------------------

class RunSpec:
    def __init__(self, name, geometry, args, outputs, cores, walltime, env_mode):
        self.name = name
        self.geometry = geometry          # geometry name or None
        self.args = list(args)            # as written in the recipe ({run}, {geometry}, {cores})
        self.outputs = outputs            # None: the recipe's
        self.cores = cores
        self.walltime = walltime
        self.env_mode = env_mode          # GEN_MODE in the run's env, or None


class RecipeSpec:
    def __init__(self, name, layout, exe_target, salt, echo_header, geometries, outputs, make_jobs,
                 build_target):
        self.name = name
        self.layout = layout
        self.salt = salt
        self.echo_header = echo_header
        self.geometries = geometries      # {gname: (project-relative path, bytes)}
        self.outputs = outputs            # None: hpcdo's default ("*")
        self.make_jobs = make_jobs
        self.build_target = build_target
        self.source_dir = "codes/%s" % name
        self.files, self.executable = _sources(layout, "gen_" + name.replace(".", "_").replace("-", "_"),
                                               exe_target, salt)
        self.runs = []
        self.index = 0

    def patterns(self, run):
        if run.outputs is not None:
            return run.outputs
        return self.outputs if self.outputs is not None else ["*"]

    def recipe_file(self):
        return "recipes/gen%d_%s.py" % (self.index, self.name.replace(".", "_").replace("-", "_"))

    def recipe_text(self):
        options = {"CMAKE_BUILD_TYPE": "Release", "GEN_SALT": self.salt, "GEN_ECHO_HEADER": self.echo_header}
        lines = [
            '"""Generated by tests/e2e/genproject.py (layout %s)."""' % self.layout,
            "from hpcdo.recipe import LocalTree, Recipe",
            "",
            "recipe = Recipe(",
            "    name=%r," % self.name,
            "    source=LocalTree(%r)," % self.source_dir,
            "    executable=%r," % self.executable,
            "    cmake_options=%r," % options,
            "    geometries=%r," % {g: path for g, (path, _data) in sorted(self.geometries.items())},
        ]
        if self.outputs is not None:
            lines.append("    outputs=%r," % self.outputs)
        if self.make_jobs:
            lines.append("    make_jobs=%d," % self.make_jobs)
        if self.build_target:
            lines.append("    build_target=%r," % self.build_target)
        lines.append(")")
        for run in self.runs:
            kw = ["%r" % run.name, "geometry=%r" % run.geometry, "args=%r" % run.args,
                  "walltime=%r" % run.walltime]
            if run.cores is not None:
                kw.append("cores=%d" % run.cores)
            if run.outputs is not None:
                kw.append("outputs=%r" % run.outputs)
            if run.env_mode is not None:
                kw.append("env=%r" % {"GEN_MODE": run.env_mode})
            lines.append("recipe.run(%s)" % ", ".join(kw))
        return "\n".join(lines) + "\n"

    def argv(self, run, machine_cores=1):
        cores = run.cores or machine_cores
        geometry = os.path.basename(self.geometries[run.geometry][0]) if run.geometry else ""
        return [a.format(geometry=geometry, cores=cores, run=run.name) for a in run.args]

    def written(self, run):
        """{path: bytes} the run's job writes in its run directory."""
        inputs = {}
        if run.geometry:
            path, data = self.geometries[run.geometry]
            inputs[os.path.basename(path)] = data
        return simulate(self.salt, self.echo_header, self.argv(run), inputs, run.env_mode)

    def expected(self, run):
        """{path: bytes} of the run's outputs that fetch_results must bring back."""
        patterns = self.patterns(run)
        return {p: data for p, data in self.written(run).items() if matched(p, patterns)}


class ProjectSpec:
    def __init__(self, seed):
        self.seed = seed
        self.recipes = []
        self._rng = random.Random("extra-%s" % seed)   # for later edits (added runs, changed args)

    # -- lookups
    def runs(self):
        return [(r, run) for r in self.recipes for run in r.runs]

    def run(self, name):
        for recipe, run in self.runs():
            if run.name == name:
                return recipe, run
        raise KeyError(name)

    def names(self):
        taken = {run.name for _r, run in self.runs()}
        return taken

    def build_tasks(self):
        if len(self.recipes) == 1:
            return {"clone", "configure", "compile"}
        return {"%s:%s" % (s, r.name) for s in ("clone", "configure", "compile") for r in self.recipes}

    def geometry_tasks(self):
        """The uploads ``fetch_results`` needs: the geometries some run reads (an unused one is not sent)."""
        return {"send_geometry:" + run.geometry for _r, run in self.runs() if run.geometry}

    def expected_runs(self, names=None):
        """(run name, recipe name, {path: bytes} it must fetch) of every run, or of those in ``names``."""
        return [(run.name, r.name, r.expected(run)) for r, run in self.runs() if names is None or run.name in names]

    def describe(self):
        out = ["seed %s: %d recipes, %d runs" % (self.seed, len(self.recipes), len(self.runs()))]
        for r in self.recipes:
            out.append("  recipe %s (%s, executable %s, outputs %s): %d runs"
                       % (r.name, r.layout, r.executable, r.outputs, len(r.runs)))
            for run in r.runs:
                exp = r.expected(run)
                out.append("    %-66s %3d files %9d bytes  patterns %s" % (
                    run.name, len(exp), sum(len(v) for v in exp.values()), r.patterns(run)))
        return "\n".join(out)

    # -- writing
    def write(self, project_dir):
        """Put every recipe, source tree and input file into ``project_dir`` (replacing recipes/*.py)."""
        rdir = os.path.join(project_dir, "recipes")
        if os.path.isdir(rdir):
            for name in os.listdir(rdir):
                if name.endswith(".py"):
                    os.remove(os.path.join(rdir, name))
        os.makedirs(rdir, exist_ok=True)
        for recipe in self.recipes:
            src = os.path.join(project_dir, recipe.source_dir)
            if os.path.isdir(src):
                shutil.rmtree(src)
            for rel, text in recipe.files.items():
                _write(os.path.join(src, rel), text.encode())
            for _g, (path, data) in recipe.geometries.items():
                _write(os.path.join(project_dir, path), data)
        self.write_recipes(project_dir)

    def write_recipes(self, project_dir):
        for recipe in self.recipes:
            _write(os.path.join(project_dir, recipe.recipe_file()), recipe.recipe_text().encode())

    # -- edits
    def add_run(self):
        """Add one new run to the first recipe; returns its name."""
        recipe = self.recipes[0]
        run = _make_run(self._rng, recipe, self.names(), big_ok=True)
        recipe.runs.append(run)
        return run.name

    def change_args(self, name):
        """Change what run ``name`` writes (one more file of a new size); returns the new file's path."""
        recipe, run = self.run(name)
        patterns = recipe.patterns(run)
        if patterns and patterns != ["*"]:
            path = _path_for(self._rng, self._rng.choice(patterns))     # a file the run's patterns fetch
        else:
            path = "changed/%d.txt" % self._rng.randrange(1000)
        size = self._rng.choice([1, 50, 8192, 123457])
        run.args = run.args + ["--file", path, str(size)]
        return path


def _write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)


def edge_name(rng, taken, kind=None):
    """A run name at the edge of NAME_RE: 64 characters, one, dots, dashes, digits first..."""
    kinds = ["max", "one", "digits", "dots", "dashes", "mixed", "mixed"]
    for _attempt in range(1000):
        k = kind or rng.choice(kinds)
        if k == "max":
            name = rng.choice(NAME_FIRST) + "".join(rng.choice(NAME_REST) for _ in range(63))
        elif k == "one":
            name = rng.choice(NAME_FIRST)
        elif k == "digits":
            name = "".join(rng.choice(string.digits) for _ in range(rng.randint(1, 6))) + \
                rng.choice(["", "_", ".", "-"]) + "".join(rng.choice(NAME_REST) for _ in range(rng.randint(0, 8)))
        elif k == "dots":
            name = rng.choice(NAME_FIRST) + "".join(rng.choice([".", "..", "a", "1", "Z"]) for _ in range(rng.randint(1, 10)))
        elif k == "dashes":
            name = rng.choice(string.digits) + "".join(rng.choice(["-", "--", "_", "x", "9"]) for _ in range(rng.randint(1, 12)))
        else:
            name = rng.choice(NAME_FIRST) + "".join(rng.choice(NAME_REST) for _ in range(rng.randint(1, 40)))
        name = name[:64]
        if name not in taken and name not in (".", ".."):
            taken.add(name)
            return name
    raise RuntimeError("no free name")


#: output patterns a recipe may list; each generated file path is drawn so some match and some not
PATTERN_POOL = ["*.txt", "*.csv", "out/*/*/*.dat", "parts", "data/[a-m]*.bin", "chunk.*", "echo/args.txt",
                "out/in/*.sum", "big.bin", "deep/x/y/z/*"]


def _path_for(rng, pattern):
    """A file path the output ``pattern`` matches."""
    out = []
    for part in pattern.split("/"):
        part = part.replace("[a-m]", rng.choice("abcdm")).replace("*", "w%d" % rng.randrange(100))
        out.append(part)
    if "*" not in pattern and "." not in pattern.rsplit("/", 1)[-1]:
        out.append("f%d.out" % rng.randrange(100))      # a directory pattern: a file inside it
    return "/".join(out)


def _file_path(rng, patterns=None):
    if patterns and patterns != ["*"] and rng.random() < 0.75:
        return _path_for(rng, rng.choice(patterns))
    return rng.choice([
        "summary.txt", "table.csv", "log-%d.txt" % rng.randrange(10),
        "out/a/b/f%d.dat" % rng.randrange(100), "out/%s/%s/%s.dat" % (rng.choice("abc"), rng.choice("xyz"), rng.randrange(50)),
        "out/a/shallow%d.dat" % rng.randrange(10),
        "data/%s%d.bin" % (rng.choice("abkmz"), rng.randrange(20)),
        "tmp/scratch%d.bin" % rng.randrange(5),
        "deep/x/y/z/leaf%d" % rng.randrange(9),
        "notes.md",
    ])


def _size(rng, big_ok):
    sizes = [0, 0, 1, 50, 50, 777, 8192, 8192, 65536]
    if big_ok:
        sizes += [3 * MB + 17]
    return rng.choice(sizes)


def _make_run(rng, recipe, taken, big_ok):
    name = edge_name(rng, taken)
    geometry = None
    if recipe.geometries and rng.random() < 0.6:
        geometry = rng.choice(sorted(recipe.geometries))
    outputs = None
    r = rng.random()
    if r < 0.1:
        outputs = []                       # nothing but hpcdo's own files
    elif r < 0.25:
        outputs = rng.sample(PATTERN_POOL, rng.randint(1, 3))
    elif r < 0.3:
        outputs = ["out"]                  # a whole directory
    args = []
    # the run's name reaches the program as the placeholder or as literal text
    args += ["--run", rng.choice(["{run}", "{run}", name])]
    if rng.random() < 0.3:
        args += ["--cores", "{cores}"]
    n_files = rng.choice([0, 0, 1, 1, 2, 3, 5])
    big = big_ok
    used = set()
    for _ in range(n_files):
        path = _file_path(rng, outputs or recipe.outputs)
        if path in used:
            continue
        used.add(path)
        size = _size(rng, big)
        if size > MB:
            big = False           # at most one big file per run
        if rng.random() < 0.5:
            args += ["--file", path, str(size)]
        else:
            args.append("file=%s:%d" % (path, size))
    if rng.random() < 0.35:
        prefix = rng.choice(["parts/p", "chunk.", "out/m/n/part", "data/k"])
        args += ["--many", prefix, str(rng.choice([0, 1, 12, 40])), str(rng.choice([0, 50, 300]))]
    if geometry and rng.random() < 0.85:
        args += ["--input", "{geometry}", rng.choice(["input.sum", "out/in/geometry.sum", "geom.txt"])]
    if rng.random() < 0.5:
        args += ["--note", rng.choice(["plain", "two words", "it's \"quoted\" $HOME; *.c \\ {{braces}}",
                                       "-starts-with-dash", ""])]
    if rng.random() < 0.5:
        args += ["--echo", rng.choice(["echo/args.txt", "args.txt", "out/echo.csv"])]
    env_mode = rng.choice([None, None, "fast", "a b"])
    return RunSpec(name, geometry, args, outputs, rng.choice([None, 1]),
                   rng.choice(["00:05:00", "0-00:10:00", "1:00:00"]), env_mode)


def generate(seed, max_runs=20):
    """A ProjectSpec, the same for the same ``seed``."""
    rng = random.Random(seed)
    spec = ProjectSpec(seed)
    n_recipes = rng.choice([1, 1, 2, 2, 3])
    recipe_names = set()
    run_names = set()
    geometry_names = set()
    big_left = 1 if rng.random() < 0.7 else 0          # at most one multi-MB run per project
    for index in range(n_recipes):
        name = edge_name(rng, recipe_names, kind=rng.choice(["mixed", "digits", "dots", "one"]))
        layout = LAYOUTS[(seed + index) % len(LAYOUTS)] if rng.random() < 0.5 else rng.choice(LAYOUTS)
        exe = rng.choice(["tool", "solver", "gen_app", "x2", "mini-app", "sim"])
        geometries = {}
        for k in range(rng.choice([0, 1, 1, 2, 3])):
            gname = edge_name(rng, geometry_names, kind=rng.choice(["mixed", "dots", "one"]))
            fname = rng.choice(["mesh.gmy", "deck.inp", "input-%d.dat" % k, "g%d" % k, "case.%d.in" % k])
            if any(os.path.basename(p) == fname for p, _d in geometries.values()):
                fname = "%d-%s" % (k, fname)
            size = rng.choice([0, 1, 300, 5000, 20000])
            geometries[gname] = ("inputs/%s/%s/%s" % (name, k, fname), rng.randbytes(size))
        r = rng.random()
        if r < 0.4:
            outputs = None                                  # hpcdo's default: everything ("*")
        else:
            outputs = rng.sample(PATTERN_POOL, rng.randint(2, 6))
        target = os.path.basename(_sources(layout, "x", exe, "")[1])
        recipe = RecipeSpec(name, layout, exe, "s%d%s" % (seed, "".join(rng.choice(string.ascii_lowercase) for _ in range(6))),
                            rng.random() < 0.5, geometries, outputs, rng.choice([None, 1, 3]),
                            target if rng.random() < 0.3 else None)
        recipe.index = index
        n_runs = rng.randint(1, max_runs)
        for _ in range(n_runs):
            run = _make_run(rng, recipe, run_names, big_ok=big_left > 0)
            if any(len(v) > MB for v in recipe.written(run).values()):
                big_left -= 1
            recipe.runs.append(run)
        spec.recipes.append(recipe)
    return spec


# -- helpers for the tests that use these projects ------------------------------------

def make_project(request, tmp_path, machine):
    """A copy of the project (conftest's Project) on ``machine``, a fresh work root there.

    On the test cluster it comes from conftest's cluster_project, which
    cancels the project's jobs and removes its work root afterwards.
    """
    from conftest import Project, cluster_project
    if machine == "localhost":
        return Project(tmp_path / "project", "localhost", str(tmp_path / "remote"))
    gen = cluster_project(tmp_path, request.getfixturevalue("cluster"), machine)
    project = next(gen)
    request.addfinalizer(lambda: next(gen, None))
    return project


def run_tasks(names, steps=("submit", "wait", "fetch_results")):
    return {"%s:%s" % (step, name) for step in steps for name in names}


def local_files(where):
    found = set()
    for dirpath, _dirs, files in os.walk(where):
        for name in files:
            found.add(os.path.relpath(os.path.join(dirpath, name), where).replace(os.sep, "/"))
    return found


def remote_job_ids(project):
    """{run name: job id} of every run directory on the machine, in one command."""
    text = project.remote("for f in */runs/*/job.id; do [ -f \"$f\" ] && printf '%s %s\\n' \"$f\" \"$(cat \"$f\")\"; done")
    ids = {}
    for line in text.splitlines():
        path, _, job = line.partition(" ")
        ids[path.split("/")[-2]] = job.strip()
    return ids


class Checks:
    """Failed checks, kept so that the scenario goes on and reports all of them at the end."""

    def __init__(self, project, describe=""):
        self.project = project
        self.describe = describe      # what the failure message ends with (the project's make-up)
        self.failures = []

    def check(self, label, ok, detail=""):
        if not ok:
            self.failures.append("%s: %s" % (label, detail))
        return ok

    def call(self, label, *args):
        out = self.project.doit(*args, ok=None)
        hint = ""
        if "CANCELLED" in out.out and self.project.cluster is not None:
            hint = ("\n(no test here cancels a job: if the scheduler's log shows them cancelled by "
                    "the test user, another test session on the shared cluster did it)")
        self.check(label, out.rc == 0, "doit %s exited %s:\n%s%s" % (" ".join(args), out.rc, out.out[-2500:], hint))
        return out

    def ran(self, label, out, expected):
        """Exactly ``expected`` ran, except that a wait may find its job already ended (see test_pipeline)."""
        waits = {t for t in expected if t.startswith("wait:")}
        ran = out.ran_set()
        extra, missing = sorted(ran - expected), sorted((expected - waits) - ran)
        unwaited = sorted(waits - ran - set(out.uptodate))
        return self.check(label, not extra and not missing and not unwaited,
                          "tasks that should not have run: %s; tasks that did not run: %s%s"
                          % (short(extra), short(missing), "; waits neither run nor up to date: %s"
                             % short(unwaited) if unwaited else ""))

    def results(self, label, runs, ids=None):
        """Each run's fetched files are exactly what its job wrote and its output patterns pick.

        ``runs``: (run name, recipe name, {path: bytes}) triples; ``ids``: the
        machine's {run name: job id}, which the fetched job.id must match.
        """
        ok = True
        for name, recipe, expected in runs:
            where = self.project.results(name)
            got = local_files(where) if os.path.isdir(where) else set()
            problems = []
            missing = sorted(set(expected) - got)
            extra = sorted(got - set(expected) - HPCDO_FILES)
            if not os.path.isdir(where):
                problems.append("no results directory")
            else:
                if missing:
                    problems.append("missing %s" % short(missing))
                if extra:
                    problems.append("unexpected %s" % short(extra))
                for rel in sorted(set(expected) & got):
                    with open(os.path.join(where, rel), "rb") as fh:
                        data = fh.read()
                    if data != expected[rel]:
                        problems.append("%s: %d bytes, expected %d%s" % (
                            rel, len(data), len(expected[rel]), "" if len(data) != len(expected[rel]) else
                            " (content differs)"))
                for marker in ("job.id", "job.exit", "hpcdo-provenance.json"):
                    if marker not in got:
                        problems.append("no %s" % marker)
                if "job.exit" in got:
                    code = open(os.path.join(where, "job.exit")).read().split()[:1]
                    if code != ["0"]:
                        problems.append("job.exit says %s" % code)
                if "job.id" in got and "hpcdo-provenance.json" in got:
                    with open(os.path.join(where, "hpcdo-provenance.json")) as fh:
                        said = str(json.load(fh).get("job_id"))
                    local = open(os.path.join(where, "job.id")).read().strip()
                    if said != local:
                        problems.append("hpcdo-provenance.json says job %s, job.id says %s (files of two jobs)"
                                        % (said, local))
                if ids is not None and "job.id" in got:
                    local = open(os.path.join(where, "job.id")).read().strip()
                    if local != ids.get(name):
                        problems.append("job.id %s in results, the machine's is %s (stale results)"
                                        % (local, ids.get(name)))
            if problems:
                ok = False
                self.failures.append("%s: run %s (recipe %s): %s" % (label, name, recipe, "; ".join(problems)))
        return ok

    def finish(self):
        if self.failures:
            pytest.fail("%d failed checks on %s\n%s\n\n%s" % (
                len(self.failures), self.project.machine, "\n".join(self.failures), self.describe),
                pytrace=False)


def short(items, limit=8):
    items = list(items)
    text = ", ".join(items[:limit])
    return text + (" ... (%d in all)" % len(items) if len(items) > limit else "") if items else "none"


def parse_seeds(text):
    """'0-19' -> 0..19; '7' -> 0..6 (a count); '3,8,11' -> those."""
    text = text.strip()
    if "," in text:
        return [int(s) for s in text.split(",") if s.strip()]
    if "-" in text:
        lo, hi = text.split("-", 1)
        return list(range(int(lo), int(hi) + 1))
    return list(range(int(text)))


if __name__ == "__main__":
    spec = generate(int(sys.argv[1]))
    if len(sys.argv) > 2:
        spec.write(sys.argv[2])
    print(spec.describe())
