"""Sweeps in the recipe API: names from values, fields in args and env, signatures per run."""

import pytest

from hpcdo import ConfigError
from hpcdo.recipe import LocalTree, Recipe


def recipe():
    return Recipe(name="r", source=LocalTree("src"), executable="x",
                  geometries={"straight": "g/straight.gmy", "stenosis": "g/stenosis.gmy"})


def test_product_with_replicas_names_each_run_from_its_values():
    rec = recipe()
    runs = rec.sweep("flow", {"geometry": ["straight", "stenosis"], "steps": [1000, 2000]}, replicas=2,
                     args=["--geometry", "{geometry}", "--steps", "{steps}", "--seed", "{replica}"])
    assert [r.name for r in runs] == [
        "flow-straight-steps1000-r1", "flow-straight-steps1000-r2",
        "flow-straight-steps2000-r1", "flow-straight-steps2000-r2",
        "flow-stenosis-steps1000-r1", "flow-stenosis-steps1000-r2",
        "flow-stenosis-steps2000-r1", "flow-stenosis-steps2000-r2"]
    run = rec.runs["flow-stenosis-steps2000-r2"]
    assert run.geometry == "stenosis"
    fields = run.fields(run.layout(1, None), "stenosis.gmy")
    assert run.argv(fields) == ["--geometry", "stenosis.gmy", "--steps", "2000", "--seed", "2"]


def test_zip_pairs_values_and_needs_equal_lengths():
    rec = recipe()
    runs = rec.sweep("z", {"a": [1, 2, 3], "b": ["x", "y", "z"]}, zip=True, args=["{a}{b}"])
    assert [r.name for r in runs] == ["z-a1-bx", "z-a2-by", "z-a3-bz"]
    with pytest.raises(ConfigError, match=r"zip=True needs lists of one length; got a: 2, b: 1"):
        recipe().sweep("z", {"a": [1, 2], "b": [1]}, zip=True)


def test_adding_a_value_keeps_every_other_run_and_its_signature():
    one, two = recipe(), recipe()
    before = one.sweep("s", {"force": [0.1, 0.2]}, replicas=2, args=["{force}"])
    after = two.sweep("s", {"force": [0.05, 0.1, 0.2]}, replicas=2, args=["{force}"])
    old = {r.name: r.spec() for r in before}
    new = {r.name: r.spec() for r in after}
    assert set(new) - set(old) == {"s-force0.05-r1", "s-force0.05-r2"}
    assert all(new[name] == spec for name, spec in old.items())


def test_values_reach_env_and_format_specs_and_the_signature():
    rec = recipe()
    (run,) = rec.sweep("e", {"force": [1e-5]}, args=["{force:.2e}"], env={"FORCE": "{force}"})
    fields = run.fields(run.layout(1, None), None)
    assert run.argv(fields) == ["1.00e-05"]
    assert run.environment(fields) == {"FORCE": "1e-05"}
    assert run.spec()["params"] == {"force": "1e-05", "replica": "1"}
    plain = rec.run("plain", args=["a"])
    assert "params" not in plain.spec()


def test_names_stay_valid_unique_and_short():
    rec = recipe()
    runs = rec.sweep("n", {"label": ["a b", "a_b", "ü/..", "x" * 80]})
    names = [r.name for r in runs]
    assert len(set(names)) == 4
    assert all(len(n) <= 64 for n in names)
    assert names[0].startswith("n-label") and names[0] != names[1]
    again = recipe().sweep("n", {"label": ["x" * 80, "a_b", "a b", "ü/.."]})
    assert sorted(r.name for r in again) == sorted(names)      # from the values, not their order


def test_a_pattern_names_runs_and_a_clash_is_one_error():
    rec = recipe()
    runs = rec.sweep("p", {"force": [1, 2]}, replicas=2, names="f{force}-rep{replica}")
    assert [r.name for r in runs] == ["f1-rep1", "f1-rep2", "f2-rep1", "f2-rep2"]
    with pytest.raises(ConfigError, match=r"name pattern 'f\{nope\}'"):
        recipe().sweep("p", {"force": [1]}, names="f{nope}")
    with pytest.raises(ConfigError, match=r"run 'f1-rep1' is defined twice"):
        rec.sweep("q", {"force": [1]}, names="f{force}-rep{replica}")


@pytest.mark.parametrize("parameters, message", [
    ({}, "parameters must be a dict"),
    ({"cores": [1]}, "parameter 'cores' is a name hpcdo fills in itself"),
    ({"replica": [1]}, "parameter 'replica' is a name"),
    ({"1x": [1]}, "parameter name '1x'"),
    ({"a": []}, "parameter a has no values"),
    ({"a": [1, 1]}, "parameter a lists a value twice"),
    ({"a": [True]}, "value True must be a string or number"),
    ({"geometry": ["nope"]}, "unknown geometry 'nope'"),
])
def test_bad_sweeps_are_one_clear_error(parameters, message):
    with pytest.raises(ConfigError, match=message):
        recipe().sweep("b", parameters)


def test_an_unknown_field_names_the_sweep_fields():
    with pytest.raises(ConfigError, match=r"uses \{forc\}; only .*\{force\} and \{replica\} are known"):
        recipe().sweep("u", {"force": [1]}, args=["{forc}"])


def test_a_thousand_runs_from_one_line():
    rec = recipe()
    runs = rec.sweep("k", {"a": range(10), "b": range(10)}, replicas=10, args=["{a}", "{b}", "{replica}"])
    assert len(runs) == len(rec.runs) == 1000
    assert len({r.name for r in runs}) == 1000
