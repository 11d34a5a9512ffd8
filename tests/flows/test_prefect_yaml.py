"""configs/prefect.yaml, the example for ``prefect deploy`` and a worker's process pool:
valid to Prefect's own model of the file, each entrypoint a wxens flow, and the deployment
the one of configs/uk_schedule.yaml, whose load-time checks it passes; ``wxens check``
runs those checks on a prefect.yaml or a schedule file before anything is deployed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from flows.cli import main
from flows.deployments import load_schedule
from flows.prefect_yaml import prefect_yaml_deployments
from pipeline.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "configs" / "prefect.yaml"
SCHEDULE = ROOT / "configs" / "uk_schedule.yaml"
OK_LINE = "uk-ensemble: ensemble_run, cron 0 */6 * * * UTC, ok"


def absent_warning(path: str = "stores/uk.zarr") -> str:
    """The line ``wxens check`` adds after the shipped deployment's where its analysis
    store ``path`` is not there."""
    return (
        f"uk-ensemble: warning: store {path} does not exist yet: each run fails until it "
        "does (a feed may make it before the first run); make it with `wxens ingest SOURCES "
        f"--store {path}`"
    )


def at_the_root() -> list[str]:
    """What check warns of the shipped store at the root: there only in a checkout that
    followed the README (stores/ is not tracked)."""
    return [] if (ROOT / "stores" / "uk.zarr").exists() else [absent_warning()]


@pytest.fixture(autouse=True)
def _at_the_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # entrypoints and parameter paths are relative to the root


def shipped_with(tmp_path: Path, **changes) -> Path:
    """A copy of the shipped prefect.yaml with its deployment's keys changed (``parameters``
    merged into its own)."""
    document = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    (deployment,) = document["deployments"]
    deployment["parameters"].update(changes.pop("parameters", {}))
    deployment.update(changes)
    path = tmp_path / "prefect.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def test_the_shipped_prefect_yaml_deploys_the_schedule_file_checked(tmp_path):
    (deployment,) = prefect_yaml_deployments(SHIPPED)
    assert deployment.name == "uk-ensemble" and not deployment.skipped
    as_schedule = tmp_path / "schedule.yaml"
    as_schedule.write_text(yaml.safe_dump({"deployments": list(deployment.entries)}))
    assert load_schedule(as_schedule) == load_schedule(SCHEDULE)


@pytest.mark.parametrize("path", [SHIPPED, SCHEDULE], ids=["prefect.yaml", "schedule"])
def test_check_passes_the_shipped_files(path, capsys):
    assert main(["check", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == [OK_LINE, *at_the_root()]


@pytest.mark.parametrize("kind", ["prefect.yaml", "schedule"])
def test_check_warns_of_an_analysis_store_not_there_yet(tmp_path, monkeypatch, capsys, kind):
    """A deployment whose store was not there passed check in silence, and each run failed
    as it fired. A feed may make the store before the first run, so it is not refused: the
    check's report says so, naming the path and how a store is made, until it is there."""
    path = shipped_with(tmp_path, entrypoint=ENTRYPOINT)
    if kind == "schedule":
        path = tmp_path / "schedule.yaml"
        path.write_text(SCHEDULE.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["check", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == [OK_LINE, absent_warning()]
    (tmp_path / "stores" / "uk.zarr").mkdir(parents=True)
    assert main(["check", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == [OK_LINE]


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"members": 0}, "members must be a whole number of at least 1, got 0"),
        ({"member": 50}, "flow 'ensemble_run' has no parameter(s) ['member']"),
        ({"baseline_name": "persistance"}, "persistance"),
        ({"products": {"probability": ["t2m<<0"]}, "products_out": "p.nc"}, "t2m<<0"),
    ],
    ids=["members-0", "typo", "baseline", "products"],
)
def test_check_refuses_a_prefect_yaml_value_a_run_would_refuse(
    tmp_path, capsys, parameters, message
):
    path = shipped_with(tmp_path, parameters=parameters)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: deployment 'uk-ensemble'" in err and message in err, err


def test_check_refuses_a_schedule_file_value_a_run_would_refuse(tmp_path, capsys):
    document = yaml.safe_load(SCHEDULE.read_text(encoding="utf-8"))
    document["deployments"][0]["parameters"]["members"] = 0
    path = tmp_path / "schedule.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: deployment 1" in err and "got 0" in err, err


def test_check_names_each_bad_deployment(tmp_path, capsys):
    """Every deployment is checked, not only up to the first error."""
    document = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    first = document["deployments"][0]
    second = {**first, "name": "uk-second", "parameters": {**first["parameters"], "seed": -1}}
    first["parameters"]["members"] = 0
    document["deployments"].append(second)
    path = tmp_path / "prefect.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "deployment 'uk-ensemble'" in err and "deployment 'uk-second'" in err, err


def test_check_skips_a_flow_not_of_wxens_and_says_so(tmp_path, capsys):
    script = tmp_path / "other.py"
    script.write_text("from prefect import flow\n\n@flow\ndef forecast(n: int = 1):\n    pass\n")
    document = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    document["deployments"].append(
        {"name": "theirs", "entrypoint": f"{script}:forecast", "parameters": {"n": 2}}
    )
    path = tmp_path / "prefect.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:-1] == [OK_LINE, *at_the_root()], out  # nothing read of theirs, no warning
    assert out[-1].startswith("theirs: skipped") and "not a wxens flow" in out[-1], out


@pytest.mark.parametrize(
    "entrypoint", ["flows/pipelines.py:no_such_flow", "flows/nowhere.py:ensemble_run"]
)
def test_check_refuses_a_broken_entrypoint(tmp_path, capsys, entrypoint):
    path = shipped_with(tmp_path, entrypoint=entrypoint)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"deployment 'uk-ensemble': entrypoint {entrypoint!r}" in err, err


def test_check_from_another_directory_names_the_entrypoint_that_loads(
    tmp_path, capsys, monkeypatch
):
    """Deployed from a data directory, not the checkout, flows/pipelines.py is not there:
    the error named the same relative entrypoint as its example; it names the one that
    loads (an absolute one, which prefect deploy and a worker load as they are)."""
    path = shipped_with(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "entrypoint 'flows/pipelines.py:ensemble_run' does not load a flow" in err, err
    assert f"give {ENTRYPOINT}" in err, err
    assert main(["check", str(shipped_with(tmp_path, entrypoint=ENTRYPOINT))]) == 0


def test_a_prefect_yaml_is_read_as_prefect_deploy_reads_it(tmp_path, monkeypatch):
    """Anchors of ``definitions:`` and ``{{ $VAR }}`` of the environment resolve as
    ``prefect deploy`` resolves them."""
    monkeypatch.setenv("WXENS_MEMBERS_DIR", "forecasts")
    text = SHIPPED.read_text(encoding="utf-8").replace(
        "forecasts/uk.zarr", "'{{ $WXENS_MEMBERS_DIR }}/uk.zarr'"
    )
    text = text.replace("work_pool: {name: wxens}", "work_pool: *pool")
    path = tmp_path / "prefect.yaml"
    path.write_text("definitions:\n  pool: &pool {name: wxens}\n" + text, encoding="utf-8")
    (deployment,) = prefect_yaml_deployments(path)
    (shipped,) = prefect_yaml_deployments(SHIPPED)
    assert deployment.entries == shipped.entries


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("forecasts/uk.zarr", "'{{ prefect.variables.out }}'", "{{ prefect.variables.out }}"),
        ("forecasts/uk.zarr", "'{{ $WXENS_UNSET_VARIABLE }}'", "WXENS_UNSET_VARIABLE"),
        ("members: 50", "members: !env MEMBERS", "!env"),
    ],
    ids=["variable", "unset-environment", "tag"],
)
def test_a_value_wxens_check_cannot_know_is_refused_naming_it(tmp_path, old, new, message):
    path = tmp_path / "prefect.yaml"
    path.write_text(SHIPPED.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    with pytest.raises(InputError, match=str(path)) as err:
        for deployment in prefect_yaml_deployments(path):
            deployment.check()
    assert message in str(err.value)


def test_each_schedule_is_checked_with_its_own_parameters(tmp_path, capsys):
    """A schedule's parameters override the deployment's for its runs, as Prefect runs them."""
    schedules = [
        {"cron": "0 0 * * *", "timezone": "Europe/London"},
        {"interval": 3600, "parameters": {"members": 10}},
    ]
    path = shipped_with(tmp_path, schedules=schedules)
    (deployment,) = prefect_yaml_deployments(path)
    assert [e["parameters"]["members"] for e in deployment.entries] == [50, 10]
    assert main(["check", str(path)]) == 0
    said = "uk-ensemble: ensemble_run, cron 0 0 * * * Europe/London; interval 1:00:00, ok"
    assert capsys.readouterr().out.splitlines() == [said, *at_the_root()]
    schedules[1]["parameters"]["members"] = 0
    assert main(["check", str(shipped_with(tmp_path, schedules=schedules))]) == 2
    assert "got 0" in capsys.readouterr().err


ENTRYPOINT = f"{ROOT / 'flows' / 'pipelines.py'}:ensemble_run"
WORKDIR_STEP = "prefect.deployments.steps.set_working_directory"


def deployed_from(tmp_path: Path, monkeypatch) -> Path:
    """A directory to deploy from in which ``forecasts`` is a file: the shipped outputs
    (forecasts/uk-scores.nc, ...) could not be written from it."""
    here = tmp_path / "deployed"
    here.mkdir()
    (here / "forecasts").write_text("not a folder", encoding="utf-8")
    monkeypatch.chdir(here)
    return here


def test_check_reads_relative_paths_in_the_pull_steps_working_directory(
    tmp_path, monkeypatch, capsys
):
    """A worker runs the pull steps before each run: set_working_directory moves the run,
    and its parameters' relative paths with it. A deployment's own ``pull`` replaces the
    file's; a relative directory is read from the worker's ``working_dir``."""
    deployed_from(tmp_path, monkeypatch)
    (tmp_path / "srv" / "forecasts").mkdir(parents=True)  # the outputs can be written there
    old = tmp_path / "old"
    (old / "forecasts" / "uk-scores.nc").mkdir(parents=True)  # a folder where scores go
    gone = tmp_path / "gone"
    document = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    (first,) = document["deployments"]
    first["entrypoint"] = ENTRYPOINT
    first["work_pool"]["job_variables"] = {"working_dir": str(tmp_path)}
    document["pull"] = [{WORKDIR_STEP: {"directory": "srv"}}]
    for name, directory in (("uk-old", old), ("uk-gone", gone)):
        own = [{WORKDIR_STEP: {"directory": str(directory)}}]
        document["deployments"].append({**first, "name": name, "pull": own})
    path = tmp_path / "prefect.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    assert main(["check", str(path)]) == 2
    captured = capsys.readouterr()
    srv = (tmp_path / "srv").resolve()
    # the store is read in srv too, where there is none
    said = [f"{OK_LINE}, relative paths read in {srv}", absent_warning()]
    assert captured.out.splitlines() == said
    old_error, gone_error = captured.err.strip().splitlines()[-2:]
    assert "deployment 'uk-old'" in old_error and "uk-scores.nc is a directory" in old_error
    assert str(old.resolve()) in old_error, old_error
    assert "deployment 'uk-gone'" in gone_error and str(gone) in gone_error, gone_error


@pytest.mark.parametrize(
    ("step", "said"),
    [
        (
            {"prefect.deployments.steps.git_clone": {"repository": "https://x.org/w.git"}},
            "git_clone",
        ),
        ({WORKDIR_STEP: {"directory": "wxens"}}, "set_working_directory"),
    ],
    ids=["git_clone", "relative-directory"],
)
def test_check_says_once_where_the_pull_steps_hide_the_paths(
    tmp_path, monkeypatch, capsys, step, said
):
    """After a step wxens cannot run offline (a clone, a download), or a relative directory
    of a worker's working directory the file does not give, the paths a run reads cannot be
    known here: it says so once, naming the step, and skips only the checks of the files
    there; every other check still runs."""
    deployed_from(tmp_path, monkeypatch)  # the outputs could not be written from here
    assert main(["check", str(shipped_with(tmp_path, entrypoint=ENTRYPOINT, pull=[step]))]) == 0
    note, ok = capsys.readouterr().out.splitlines()
    assert note.startswith("uk-ensemble: ") and said in note and ok == OK_LINE, note
    bad = shipped_with(tmp_path, entrypoint=ENTRYPOINT, pull=[step], parameters={"members": 0})
    assert main(["check", str(bad)]) == 2
    captured = capsys.readouterr()
    assert "deployment 'uk-ensemble'" in captured.err and "got 0" in captured.err
    assert captured.out.splitlines() == [note]
