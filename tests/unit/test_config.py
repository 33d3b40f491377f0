"""Machine files: layering, overrides, and one clear error per mistake."""

import textwrap

import pytest

from hpcdo import ConfigError
from hpcdo.config import Catalogue, parse_overrides


def project(tmp_path, **files):
    mdir = tmp_path / "machines"
    mdir.mkdir(exist_ok=True)
    for name, text in files.items():
        (mdir / name).write_text(textwrap.dedent(text))
    return Catalogue(str(tmp_path))


def test_layers_defaults_parent_user_and_command_line(tmp_path):
    cat = project(tmp_path, **{
        "a.yml": """\
            default:
              make_jobs: 3
            base:
              host: example.org
              scheduler: slurm
              cores: 8
              env: {A: "1"}
            child:
              extends: base
              cores: 16
              env: {B: "2"}
            """,
        "machines_user.yml": """\
            child:
              user: me
            """})
    m = cat.machine("child", parse_overrides({"cores": "32", "partition": "debug"}))
    assert (m.host, m.scheduler, m.user, m.make_jobs) == ("example.org", "slurm", "me", 3)
    assert m.cores == 32 and m.partition == "debug"
    assert m.env == {"A": "1", "B": "2"}
    assert m.where("user").endswith("machines_user.yml:2")
    assert m.where("cores") == "command line"
    assert cat.machine("localhost").is_local


def test_misspelled_key_names_file_line_and_suggests(tmp_path):
    cat = project(tmp_path, **{"m.yml": "hpc:\n  host: x\n  scheduler: slurm\n  corse: 4\n"})
    with pytest.raises(ConfigError) as err:
        cat.machine("hpc")
    msg = str(err.value)
    assert msg.endswith("m.yml:4: machine 'hpc': unknown key 'corse' (did you mean 'cores'?)")


def test_wrong_type_names_file_line_and_key(tmp_path):
    cat = project(tmp_path, **{"m.yml": "hpc:\n  host: x\n  cores: two\n"})
    with pytest.raises(ConfigError, match=r"m\.yml:3: machine 'hpc': key 'cores' must be a positive integer"):
        cat.machine("hpc")


def test_yaml_syntax_error_names_line(tmp_path):
    with pytest.raises(ConfigError, match=r"m\.yml:4: YAML syntax error: (did not find )?expected ',' or '\]'"):
        project(tmp_path, **{"m.yml": "hpc:\n  host: x\n  cores: [1, 2\n"})


def test_unknown_machine_lists_known_ones(tmp_path):
    cat = project(tmp_path, **{"m.yml": "archer2:\n  host: x\n"})
    with pytest.raises(ConfigError, match=r"unknown machine 'archer'.*did you mean 'archer2'.*localhost"):
        cat.machine("archer")


def test_extends_loop_and_unknown_parent(tmp_path):
    cat = project(tmp_path, **{"m.yml": "a:\n  extends: b\nb:\n  extends: a\nc:\n  extends: nowhere\n"})
    with pytest.raises(ConfigError, match="loops"):
        cat.machine("a")
    with pytest.raises(ConfigError, match="unknown machine 'nowhere'"):
        cat.machine("c")


def test_command_line_typo_is_refused(tmp_path):
    cat = project(tmp_path)
    with pytest.raises(ConfigError, match=r"command line: .*unknown key 'cors' \(did you mean 'cores'\?\)"):
        cat.machine("localhost", parse_overrides({"cors": "4"}))


def test_command_line_string_keys_stay_strings():
    layer = parse_overrides({"partition": "123", "cores": "4", "modules": "[a, b]"})
    assert layer.values == {"partition": "123", "cores": 4, "modules": ["a", "b"]}


@pytest.mark.parametrize("key", ["A=1; touch pwned; B", "A B", "1A", "A-B", "$(id)"])
def test_env_names_are_checked_as_names(tmp_path, key):
    """Issue 11.10: a machine env key reached the shell as 'export KEY=...' unchecked."""
    cat = project(tmp_path, **{"a.yml": 'm:\n  host: h\n  scheduler: slurm\n  env: {%r: v}\n' % key})
    with pytest.raises(ConfigError, match=r"a\.yml:4: machine 'm': key 'env' must be a mapping of variable names"):
        cat.machine("m")
    assert not (tmp_path / "pwned").exists()
