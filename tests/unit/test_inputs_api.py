"""Run inputs (hpcdo.inputs): declarations, {inputs[NAME]} fields, content digests, signatures,
the store's upload script under dash and bash, and a directory linked into a run directory."""

import os
import types

import pytest

from hpcdo import ConfigError
from hpcdo import inputs as input_store
from hpcdo import jobscript as jobscripts
from hpcdo.recipe import LocalTree, Recipe
from hpcdo.remote import scripts
from hpcdo.target import Target

from test_scripts_shells import SHELLS, Machine, _tar


def recipe(**kwargs):
    kwargs.setdefault("inputs", {"mesh": "data/mesh", "params": "data/p.txt"})
    return Recipe(name="r", source=LocalTree("src"), executable="bin/app",
                  geometries={"g": "geo/straight.gmy"}, **kwargs)


@pytest.fixture
def project(tmp_path):
    (tmp_path / "data" / "mesh" / "deep").mkdir(parents=True)
    (tmp_path / "data" / "mesh" / "a.txt").write_text("a")
    (tmp_path / "data" / "mesh" / "deep" / "b.txt").write_text("b")
    (tmp_path / "data" / "p.txt").write_text("p=1\n")
    return tmp_path


def target(rec, project_dir):
    session = types.SimpleNamespace(machine=types.SimpleNamespace(name="m"),
                                    stamp=lambda key: types.SimpleNamespace(binary="b1"))
    t = Target(session, rec, str(project_dir), jobscripts.environment(str(project_dir)))
    t.jobscript_values = lambda run: {"run": run.name}            # the jobscript is not this test's
    t.template_name = lambda: "slurm.sh.j2"
    return t


def test_runs_name_their_inputs_and_args_use_them():
    rec = recipe()
    run = rec.run("a", inputs=["mesh", "params"], args=["--mesh", "{inputs[mesh]}", "-p={inputs[params]}"],
                  env={"MESH": "{inputs[mesh]}/deep"})
    assert run.inputs == ("mesh", "params")
    fields = run.fields(run.layout(1, None), None)
    assert run.argv(fields) == ["--mesh", "mesh", "-p=params"]
    assert run.environment(fields) == {"MESH": "mesh/deep"}
    assert run.spec()["inputs"] == ["mesh", "params"]
    assert "inputs" not in rec.run("plain").spec()            # a run without inputs signs as before
    swept = rec.sweep("s", {"n": [1, 2]}, inputs=["params"], args=["{inputs[params]}", "{n}"])
    assert [r.inputs for r in swept] == [("params",), ("params",)]


@pytest.mark.parametrize("build, message", [
    (lambda: recipe(inputs={"job.out": "x"}), "input job.out: run directories hold it under its name"),
    (lambda: recipe(inputs={"app": "x"}), "input app: run directories hold it under its name"),
    (lambda: recipe(inputs={".hpcdo-x": "x"}), "input name '.hpcdo-x'"),
    (lambda: recipe(inputs={"x": "/etc/passwd"}), "input x needs a file or directory path inside the project"),
    (lambda: recipe(inputs={"x": "../up"}), "input x needs a file or directory path inside the project"),
    (lambda: recipe(inputs={"x": ""}), "input x needs a file or directory path"),
    (lambda: recipe(inputs=["x"]), "inputs must be a dict"),
    (lambda: recipe(inputs={"a b": "x"}), "input name 'a b'"),
    (lambda: recipe().run("a", inputs=["nope"]), "run a: unknown input 'nope' (the recipe has: mesh, params)"),
    (lambda: recipe().run("a", inputs="mesh"), "run a: inputs must be a list of input names"),
    (lambda: recipe().run("a", inputs=["mesh", "mesh"]), "an input is named twice"),
    (lambda: recipe(inputs={"straight.gmy": "x"}).run("a", geometry="g", inputs=["straight.gmy"]),
     "input straight.gmy has the name of its geometry file"),
    (lambda: recipe().run("a", inputs=["params"], args=["{inputs[mesh]}"]),
     "uses {inputs[mesh]} but the run's inputs are: params"),
    (lambda: recipe().run("a", args=["{inputs[mesh]}"]), "uses {inputs[mesh]} but the run's inputs are: none"),
    (lambda: recipe().run("a", inputs=["mesh"], args=["{inputs}"]), "write an input's name as {inputs[NAME]}"),
    (lambda: recipe().run("a", inputs=["mesh"], env={"M": "{inputs.mesh}"}), "write an input's name as"),
    (lambda: recipe().sweep("s", {"inputs": [1]}), "parameter 'inputs' is a name hpcdo fills in"),
])
def test_bad_declarations_are_one_error(build, message):
    with pytest.raises(ConfigError) as err:
        build()
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_missing_input_path_is_one_error(tmp_path):
    rec = recipe(inputs={"mesh": "data/none"})
    with pytest.raises(ConfigError, match=r"^recipe r: input mesh: data/none does not exist$"):
        input_store.digest(target(rec, tmp_path), "mesh")


def test_digests_follow_content_only(project):
    rec = recipe()
    first = {n: input_store.digest(target(rec, project), n) for n in ("mesh", "params")}
    assert first["mesh"] != first["params"]
    # the same content elsewhere is the same input; an untouched file keeps its digest
    os.utime(str(project / "data" / "mesh" / "deep" / "b.txt"), (1, 1))
    assert input_store.digest(target(rec, project), "mesh") == first["mesh"]
    (project / "data" / "mesh" / "deep" / "b.txt").write_text("B")
    again = {n: input_store.digest(target(rec, project), n) for n in ("mesh", "params")}
    assert again["mesh"] != first["mesh"] and again["params"] == first["params"]
    (project / "data" / "mesh" / "deep" / "b.txt").write_text("b")
    (project / "data" / "mesh" / "deep" / "b.txt").chmod(0o755)        # the mode travels, so it counts
    assert input_store.digest(target(rec, project), "mesh") != first["mesh"]
    (project / "data" / "mesh" / "deep" / "b.txt").chmod(0o644)
    (project / "data" / "mesh" / "deep" / "c.txt").write_text("")        # a new file counts
    assert input_store.digest(target(rec, project), "mesh") != first["mesh"]


def test_a_runs_signature_holds_its_inputs_digests_only(project):
    rec = recipe()
    both = rec.run("both", inputs=["mesh", "params"])
    mesh = rec.run("mesh", inputs=["mesh"])
    plain = rec.run("plain")
    before = {r.name: target(rec, project).submit_sig(r) for r in (both, mesh, plain)}
    (project / "data" / "p.txt").write_text("p=2\n")
    after = {r.name: target(rec, project).submit_sig(r) for r in (both, mesh, plain)}
    assert after["both"] != before["both"]
    assert after["mesh"] == before["mesh"] and after["plain"] == before["plain"]
    (project / "data" / "mesh" / "deep" / "b.txt").write_text("changed")
    last = {r.name: target(rec, project).submit_sig(r) for r in (both, mesh, plain)}
    assert last["both"] != after["both"] and last["mesh"] != after["mesh"] and last["plain"] == after["plain"]


def test_inputs_are_stored_by_content_and_linked_by_name(project):
    rec = recipe()
    run = rec.run("a", inputs=["mesh", "params"])
    t = target(rec, project)
    mesh, params = input_store.digest(t, "mesh"), input_store.digest(t, "params")
    stamps, _runs = t.probe_items()
    assert ("input:r/%s" % mesh, "r/inputs/%s/.hpcdo-stamp" % mesh, ["r/inputs/%s/content" % mesh]) in stamps
    assert input_store.links(t, run) == [("../../inputs/%s/content" % mesh, "mesh"),
                                  ("../../inputs/%s/content" % params, "params")]


@pytest.fixture(params=SHELLS)
def machine(request, tmp_path):
    return Machine(tmp_path, request.param)


def test_the_store_keeps_a_sealed_tree_read_only_and_stamps_it(machine):
    d = machine.root / "r" / "inputs" / "abc"
    script = scripts.input_script(str(machine.root), "r/inputs/abc", "mesh", "seal-1", '{"sig": "abc"}')
    cut = machine.run(script, _tar({"content/a.txt": b"a", "content/deep/b.txt": b"b"}))
    assert cut.returncode == 1 and b"upload of input mesh was cut short" in cut.stderr
    assert not (d / ".hpcdo-stamp").exists() and not (d / "content").exists()
    assert os.listdir(str(d)) == []                            # no staging directory left
    proc = machine.run(script, _tar({"content/a.txt": b"a", "content/deep/b.txt": b"b",
                                     ".hpcdo-end": b"seal-1\n"}))
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(str(d))) == [".hpcdo-stamp", "content"]
    assert (d / "content" / "deep" / "b.txt").read_text() == "b"
    assert (d / ".hpcdo-stamp").read_text() == '{"sig": "abc"}\n'
    for path in (d / "content", d / "content" / "deep", d / "content" / "a.txt"):
        assert not os.stat(str(path)).st_mode & 0o222, path
    # sent again (a stamp lost): the read-only tree is replaced, not refused
    (d / ".hpcdo-stamp").unlink()
    proc = machine.run(script, _tar({"content/a.txt": b"A", ".hpcdo-end": b"seal-1\n"}))
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(str(d / "content"))) == ["a.txt"] and (d / "content" / "a.txt").read_text() == "A"
    os.system("chmod -R u+w '%s'" % machine.root)


def test_a_file_input_and_an_empty_directory(machine):
    script = scripts.input_script(str(machine.root), "r/inputs/f", "params", "s", '{"sig": "f"}')
    proc = machine.run(script, _tar({"content": b"p=1\n", ".hpcdo-end": b"s\n"}))
    assert proc.returncode == 0, proc.stderr
    assert (machine.root / "r" / "inputs" / "f" / "content").read_text() == "p=1\n"
    script = scripts.input_script(str(machine.root), "r/inputs/e", "empty", "s", '{"sig": "e"}')
    proc = machine.run(script, _tar({".hpcdo-end": b"s\n"}))
    assert proc.returncode == 0, proc.stderr
    assert (machine.root / "r" / "inputs" / "e" / "content").is_dir()
    os.system("chmod -R u+w '%s'" % machine.root)


def test_a_submission_links_a_directory_input_and_hard_links_a_file(machine):
    from hpcdo.schedulers import get
    store = machine.root / "r" / "inputs"
    (store / "d1" / "content" / "deep").mkdir(parents=True)
    (store / "d1" / "content" / "deep" / "b.txt").write_text("b")
    (store / "f1").mkdir()
    (store / "f1" / "content").write_text("p=1\n")
    (machine.root / "r" / "build").mkdir(parents=True)
    (machine.root / "r" / "build" / "app").write_text("#!/bin/sh\n")
    machine.fake("sbatch", 'echo "4242;cluster1"')
    links = [("../../build/app", "app"), ("../../inputs/d1/content", "mesh"), ("../../inputs/f1/content", "params")]
    for expected in ("", "4242"):        # submitted, then submitted again over its own links
        request = scripts.SubmitRequest("r1", "r/runs/a", expected, "sig1", links, ["*"], "#!/bin/sh\ntrue\n",
                                        fresh=bool(expected))
        proc = machine.run(scripts.submit_script(str(machine.root), [request], get("slurm")))
        assert proc.returncode == 0 and b"@submitted r1 4242" in proc.stdout, (proc.stdout, proc.stderr)
        rundir = machine.root / "r" / "runs" / "a"
        assert os.readlink(str(rundir / "mesh")) == "../../inputs/d1/content"
        assert (rundir / "mesh" / "deep" / "b.txt").read_text() == "b"
        assert os.stat(str(rundir / "params")).st_ino == os.stat(str(store / "f1" / "content")).st_ino
        assert not (rundir / "previous" / "4242" / "mesh").exists()       # links are not a job's files
