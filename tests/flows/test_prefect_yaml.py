"""configs/prefect.yaml, the example for ``prefect deploy`` and a worker's process pool:
valid to Prefect's own model of the file, each entrypoint a wxens flow, and the deployment
the one of configs/uk_schedule.yaml, whose load-time checks it passes."""

from __future__ import annotations

from pathlib import Path

import yaml
from prefect.cli.deploy._models import PrefectYamlModel
from prefect.flows import load_flow_from_entrypoint

from flows.deployments import load_schedule
from flows.pipelines import FLOWS

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_prefect_yaml_deploys_the_schedule_file_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # entrypoints and parameter paths are relative to the root
    document = yaml.safe_load((ROOT / "configs" / "prefect.yaml").read_text(encoding="utf-8"))
    model = PrefectYamlModel.model_validate(document)
    entries = []
    for deployment in model.deployments:
        flow = load_flow_from_entrypoint(deployment.entrypoint)
        assert flow.name in FLOWS, deployment.entrypoint
        (schedule,) = deployment.schedules
        assert deployment.work_pool.name == "wxens"
        entries.append(
            {
                "name": deployment.name,
                "flow": flow.name,
                "cron": schedule.cron,
                "timezone": schedule.timezone,
                "parameters": deployment.parameters,
            }
        )
    as_schedule = tmp_path / "schedule.yaml"
    as_schedule.write_text(yaml.safe_dump({"deployments": entries}), encoding="utf-8")
    assert load_schedule(as_schedule) == load_schedule(ROOT / "configs" / "uk_schedule.yaml")
