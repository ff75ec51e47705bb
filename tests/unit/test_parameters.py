"""Every run parameter is declared once (musicrec.settings.PARAMETERS); the trigger form, `musicrec run`'s
options, the run's conf, the "nothing changed" check and docs/parameters.md are made from it."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

from musicrec import cli, settings
from musicrec.airflow.params import dag_params
from support.project import PROJECT_DIR


def test_the_form_and_the_options_are_made_from_the_declaration():
    params = dag_params()
    assert list(params) == [p.name for p in settings.PARAMETERS]
    for p in settings.PARAMETERS:
        schema = params[p.name].schema
        assert schema["section"] == p.section and schema["title"] == p.title
        assert params[p.name].value == settings.defaults()[p.name]
    run = cli.parser()._subparsers._group_actions[0].choices["run"]
    flags = {option: action.dest for action in run._actions for option in action.option_strings}
    assert {p.flag: p.name for p in settings.PARAMETERS if p.flag} == {
        flag: dest for flag, dest in flags.items() if flag not in ("-h", "--help")
    }


def test_every_option_given_reaches_the_run(tmp_path):
    """Before, each option was copied into the conf by hand: one left out never reached the run."""
    values = {"n_components": 7, "n_neighbors": 3, "metric": "euclidean", "hubness": "none"}
    values |= {"metadata_weight": 0.5, "files_per_shard": 9, "workers": 1, "max_analysis_minutes": 2.5}
    values |= {"lock_wait_minutes": 0.25, "folders": ["a", "b"], "full_refresh": True}
    argv = ["run", "--library", str(tmp_path), "--metadata", str(tmp_path / "m.csv"), "--data-dir", str(tmp_path)]
    argv += ["--folders", "a,b", "--full-refresh"]
    for name, value in values.items():
        if name not in ("folders", "full_refresh"):
            argv += [settings.BY_NAME[name].flag, str(value)]
    conf = cli.run_conf(cli.parser().parse_args(argv))
    assert {name: conf[name] for name in values} == values
    assert conf["library_path"] == conf["data_dir"] == str(tmp_path) and conf["metadata_path"] == str(
        tmp_path / "m.csv"
    )
    assert set(conf) <= set(settings.BY_NAME)


def test_the_parameter_table_in_the_docs_is_current():
    assert settings.markdown_table() in (PROJECT_DIR / "docs" / "parameters.md").read_text()


ADDED = """    Parameter(
        "test_knob",
        "integer",
        3,
        "Test knob",
        "A parameter added in a test.",
        INDEX,
        env="MUSICREC_TEST_KNOB",
        minimum=1,
        maximum=9,
        flag="--test-knob",
        shapes_index=True,
    ),
)

BY_NAME = """

PROBE = """
import json, sys
from musicrec import cli, settings
from musicrec.airflow.params import dag_params
from musicrec.pipeline import changes

param = dag_params()["test_knob"]
args = cli.parser().parse_args(["run", "--library", sys.argv[1], "--test-knob", "5"])
from pathlib import Path  # noqa: E402
inputs = changes.index_inputs(Path(sys.argv[1]), None, settings.defaults() | {"test_knob": 5})
print(json.dumps({
    "form": [param.value, param.schema["section"], param.schema["maximum"]],
    "conf": cli.run_conf(args).get("test_knob"),
    "index_key": inputs["params"].get("test_knob"),
    "default": settings.defaults()["test_knob"],
}))
"""


def test_a_parameter_added_in_its_declaration_alone_reaches_the_form_the_option_the_run_and_the_index_key(
    tmp_path,
):
    package = Path(settings.__file__).parent
    copy = shutil.copytree(package, tmp_path / "musicrec", ignore=shutil.ignore_patterns("__pycache__"))
    source = (copy / "settings.py").read_text()
    assert source.count(")\n\nBY_NAME = ") == 1
    (copy / "settings.py").write_text(source.replace(")\n\nBY_NAME = ", ADDED, 1))
    env = {"PYTHONPATH": str(tmp_path), "MUSICREC_TEST_KNOB": "4", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == {"form": [4, "Index", 9], "conf": 5, "index_key": 5, "default": 4}
