"""The recipe API refuses what cannot be deployed safely, with a plain message."""

import pytest

from hpcdo import ConfigError
from hpcdo.recipe import Git, LocalTree, Recipe


def recipe(**kw):
    args = dict(name="code", source=LocalTree("src"), executable="bin/code",
                geometries={"g": "g.txt"}, outputs=["out.dat"])
    args.update(kw)
    return Recipe(**args)


@pytest.mark.parametrize("name", ["a b", "x;rm -rf /", "$(id)", "`id`", "a\nb", "ab\n", "", "..", "-x", "ü"])
def test_hostile_run_names_are_refused(name):
    with pytest.raises(ConfigError, match="run name"):
        recipe().run(name, geometry="g")


def fields(run, cores, corespernode=None, geometry_file="g.txt"):
    return run.fields(run.layout(cores, corespernode), geometry_file)


def test_arguments_keep_hostile_text_literally():
    run = recipe().run("r", geometry="g", args=["--title", "a b; $(id) `x` 'q' \"d\"\nnext", 3])
    assert run.argv(fields(run, 4)) == ["--title", "a b; $(id) `x` 'q' \"d\"\nnext", "3"]


def test_placeholders():
    run = recipe().run("r", geometry="g", args=["{geometry}", "-n", "{cores}", "{run}.log", "{{lit}}"])
    assert run.argv(fields(run, 8)) == ["g.txt", "-n", "8", "r.log", "{lit}"]
    with pytest.raises(ConfigError, match=r"uses \{home\}"):
        recipe().run("s", geometry="g", args=["{home}"])


def test_layout_fields_fill_args_and_env_alike():
    run = recipe().run("r", geometry="g", cores=256, threads=4,
                       args=["-t", "{threads}", "-n", "{tasks}", "--nodes={nodes}", "{cores:05d}", "{geometry}"],
                       env={"OMP_NUM_THREADS": "{threads}", "NAME": "{run}-{cores}", "GEO": "{geometry}",
                            "BRACES": "{{x}} $(id)", "PLAIN": 7})
    values = fields(run, 256, corespernode=128)
    assert values == {"geometry": "g.txt", "cores": 256, "threads": 4, "tasks": 64, "nodes": 2, "run": "r"}
    assert run.argv(values) == ["-t", "4", "-n", "64", "--nodes=2", "00256", "g.txt"]
    assert run.environment(values) == {"OMP_NUM_THREADS": "4", "NAME": "r-256", "GEO": "g.txt",
                                       "BRACES": "{x} $(id)", "PLAIN": "7"}


@pytest.mark.parametrize("env,message", [
    ({"X": "{home}"}, r"run s: env X value '\{home\}' uses \{home\}; only \{geometry\}, \{cores\}, "
                      r"\{threads\}, \{tasks\}, \{nodes\} and \{run\} are known"),
    ({"X": "{cores"}, r"run s: env X value '\{cores': .*write \{\{ and \}\} for literal braces"),
    ({"X": "}"}, r"run s: env X value '\}'"),
    ({"X": "{geometry}"}, r"uses \{geometry\} but the run has none"),
    ({"X": "{cores:q}"}, r"run s: env X value '\{cores:q\}'"),
    ({"X": "{cores.real}"}, r"uses \{cores.real\}"),
    ({"X": "a\rb"}, r"carriage return"),
])
def test_run_env_values_are_checked_like_arguments(env, message):
    with pytest.raises(ConfigError, match=message):
        recipe().run("s", env=env)


def test_a_bad_format_in_an_argument_is_one_error_not_a_traceback():
    for arg in ("{", "{cores!z}", "{run:d}"):
        with pytest.raises(ConfigError, match=r"run s: argument"):
            recipe().run("s", args=[arg])


# -- cores, threads, tasks, nodes ------------------------------------------------------

@pytest.mark.parametrize("cores,threads,nodes,per_node,want", [
    # cores, threads, run nodes, corespernode -> (tasks, nodes, tasks per node)
    (256, 4, None, 128, (64, 2, 32)),        # the case: 32 tasks of 4 threads per node
    (256, 1, None, 128, (256, 2, 128)),
    (2, 2, None, None, (1, 1, 1)),           # an OpenMP code: one task of two threads
    (200, 1, None, 128, (200, 2, 100)),      # balanced, not 128 + 72
    (256, 1, 4, 128, (256, 4, 64)),          # the run's nodes win over the fewest possible
    (6, 1, 4, 8, (6, 4, 2)),                 # uneven: at most 2 per node
    (24, 3, None, 8, (8, 4, 2)),             # 8 // 3 = 2 tasks of 3 threads per node
    (8, 1, 2, None, (8, 2, 4)),              # no corespernode: the run's nodes, else one
    (8, 1, None, None, (8, 1, 8)),
])
def test_layout_arithmetic(cores, threads, nodes, per_node, want):
    run = recipe().run("r", threads=threads, nodes=nodes)
    lay = run.layout(cores, per_node)
    assert (lay.tasks, lay.nodes, lay.cpn) == want
    assert (lay.cores, lay.threads) == (cores, threads) and lay.tasks * threads == cores
    assert lay.nodes * lay.cpn >= lay.tasks >= lay.nodes
    if per_node:
        assert lay.cpn * threads <= per_node


@pytest.mark.parametrize("kw,cores,per_node,message", [
    ({"threads": 4}, 6, None, r"^run r: cores=6 \(cores= on the command line\) is not a multiple of threads=4 "
                              r"\(cores counts every core: tasks x threads\)$"),
    ({"threads": 256}, 256, 128, r"^run r: threads=256 do not fit on one node \(corespernode=128 of machine m\)$"),
    ({"nodes": 1}, 256, 128, r"^run r: nodes=1 cannot hold 256 tasks of 1 threads \(corespernode=128 of "
                             r"machine m\): a node holds 128, so cores=256 .* needs nodes=2 or more$"),
    ({"nodes": 2, "threads": 4}, 512, 128, r"cannot hold 128 tasks of 4 threads .* a node holds 32, .* "
                                           r"needs nodes=4 or more$"),
    ({"nodes": 4, "threads": 2}, 4, None, r"^run r: nodes=4 is more than its 2 tasks \(cores=4 .*threads=2\)"),
])
def test_layouts_that_cannot_be_met_are_one_error_line(kw, cores, per_node, message):
    run = recipe().run("r", **kw)
    with pytest.raises(ConfigError, match=message) as err:
        run.layout(cores, per_node, "cores= on the command line", "m")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kw,message", [
    ({"threads": 0}, "threads must be a positive integer"), ({"threads": "4"}, "threads must be a positive"),
    ({"threads": True}, "threads must be a positive"), ({"threads": 2.0}, "threads must be a positive"),
    ({"cores": 6, "threads": 4}, r"cores=6 is not a multiple of threads=4"),
    ({"nodes": 0}, "nodes must be a positive integer"),
])
def test_run_refuses_bad_threads_early(kw, message):
    with pytest.raises(ConfigError, match=message):
        recipe().run("r", **kw)


def test_threads_are_part_of_the_runs_spec():
    a = recipe().run("r", cores=4)
    b = recipe().run("r", cores=4, threads=2)
    assert a.spec()["threads"] == 1 and b.spec()["threads"] == 2
    assert a.spec() != b.spec()


@pytest.mark.parametrize("pattern", ["../x", "/etc/passwd", "a b", "$(id)", "x;y", "out.dat\n"])
def test_output_patterns_stay_inside_the_run_directory(pattern):
    with pytest.raises(ConfigError, match="output pattern"):
        recipe(outputs=[pattern])


def test_other_checks():
    with pytest.raises(ConfigError, match="unknown geometry"):
        recipe().run("r", geometry="nope")
    with pytest.raises(ConfigError, match="walltime"):
        recipe().run("r", geometry="g", walltime="1 hour")
    with pytest.raises(ConfigError, match="one string"):
        recipe().run("r", geometry="g", args="--steps 3")
    with pytest.raises(ConfigError, match="not a CMake option"):
        recipe(cmake_options={"A;B": 1})
    with pytest.raises(ConfigError, match="executable"):
        recipe(executable="../../bin/sh")
    with pytest.raises(ConfigError, match="source"):
        recipe(source="src")
    with pytest.raises(ConfigError, match="defined twice"):
        r = recipe()
        r.run("a", geometry="g")
        r.run("a", geometry="g")
    assert Git("https://example.org/x.git", "v1").describe() == "git https://example.org/x.git @ v1"


def test_cmake_options_layer_recipe_machine_file_then_recipe_per_machine():
    class M:
        name = "archer2"
        cmake_options = {"B": "machine", "C": "machine"}
    r = recipe(cmake_options={"A": "recipe", "B": "recipe"},
               machine_cmake_options={"archer2": {"C": "per-machine"}, "other": {"A": "x"}})
    assert r.cmake_options_for(M) == {"A": "recipe", "B": "machine", "C": "per-machine"}


def test_batch_scope_follows_the_command_line():
    from hpcdo.tasks import batch_scope
    runs = ["a", "b", "c"]
    assert batch_scope([], runs) == {"a", "b", "c"}                       # default: fetch_results
    assert batch_scope(["4", "thread", "fetch_results"], runs) == {"a", "b", "c"}
    assert batch_scope(["submit:a", "wait:c"], runs) == {"a", "c"}
    assert batch_scope(["fetch_results:b"], runs) == {"b"}
    assert batch_scope(["compile"], runs) == set()
    assert batch_scope(["list"], runs) == {"a", "b", "c"}                 # lists only; harmless


@pytest.mark.parametrize("path", ["geo/job.out", "job.sh", "submit.log", "x/previous", "bin/app"])
def test_a_geometry_may_not_take_a_run_directory_name(path):
    """Issue 11.12: a geometry named job.out was overwritten by the job log through the run
    directory's hard link, while its stamp still said it was uploaded."""
    with pytest.raises(ConfigError, match="is one hpcdo uses in run directories"):
        Recipe(name="r", source=LocalTree("."), executable="bin/app", geometries={"g": path})
