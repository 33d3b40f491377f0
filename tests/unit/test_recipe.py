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


def test_arguments_keep_hostile_text_literally():
    run = recipe().run("r", geometry="g", args=["--title", "a b; $(id) `x` 'q' \"d\"\nnext", 3])
    assert run.argv(4, "g.txt") == ["--title", "a b; $(id) `x` 'q' \"d\"\nnext", "3"]


def test_placeholders():
    run = recipe().run("r", geometry="g", args=["{geometry}", "-n", "{cores}", "{run}.log", "{{lit}}"])
    assert run.argv(8, "g.txt") == ["g.txt", "-n", "8", "r.log", "{lit}"]
    with pytest.raises(ConfigError, match=r"uses \{home\}"):
        recipe().run("s", geometry="g", args=["{home}"])


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
