"""The shipped Grafana dashboard and Prometheus alert rules: valid PromQL (`promtool`), the
alerts firing on the series they watch (`promtool test rules`), and naming only series the
workers export."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.paths import REPO

OBSERVABILITY = REPO / "deploy" / "observability"
#: Debian's `prometheus` package; `.ci/run` installs it.
PROMTOOL = shutil.which("promtool")

#: Charter's own series, as the Prometheus endpoint names them (counters end in `_total`).
CHARTER_SERIES = {
    "charter_runs_total",
    "charter_proposals_total",
    "charter_act_refusals_total",
    "charter_stage_completions_total",
    "charter_model_tokens_total",
    "charter_open_exceptions",
    "charter_duplicate_payments",
    "charter_time_to_decision_bucket",
}
#: The SDK's, from the same endpoint.
SDK_SERIES = {
    "temporal_workflow_task_execution_failed_total",
    "temporal_worker_task_slots_available",
    "temporal_activity_execution_latency_bucket",
}


def _promtool(*argv: str) -> str:
    if PROMTOOL is None:
        pytest.fail("promtool is not installed: apt-get install prometheus (.ci/run does)")
    done = subprocess.run([PROMTOOL, *argv], capture_output=True, text=True, cwd=OBSERVABILITY)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads((OBSERVABILITY / "charter-dashboard.json").read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


def _alert_exprs() -> list[str]:
    rules = yaml.safe_load((OBSERVABILITY / "charter-alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def test_alert_rules_are_valid_and_fire_on_their_series() -> None:
    assert "SUCCESS: 6 rules found" in _promtool("check", "rules", "charter-alerts.yml")
    assert "SUCCESS" in _promtool("test", "rules", "charter-alerts.test.yml")
    names = {
        rule["alert"]
        for group in yaml.safe_load((OBSERVABILITY / "charter-alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    assert {"CharterRunsStuck", "CharterExceptionsAgeing", "CharterActRefusals"} <= names
    assert {"CharterDuplicatePaymentPrevented", "CharterPaidTwice"} <= names


def test_the_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """Each panel's query as a recording rule: `promtool check rules` parses its PromQL."""
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"charter:panel_{n}", "expr": expr}
                    for n, expr in enumerate(_dashboard_exprs())
                ],
            }
        ]
    }
    checked = tmp_path / "dashboard-rules.yml"
    checked.write_text(yaml.safe_dump(rules))
    assert "SUCCESS" in _promtool("check", "rules", str(checked))


def test_only_exported_series_are_named() -> None:
    named = {
        name
        for expr in _dashboard_exprs() + _alert_exprs()
        for name in re.findall(r"\b((?:charter|temporal)_[a-z_]+)\b", expr)
    }
    assert named <= CHARTER_SERIES | SDK_SERIES, named - (CHARTER_SERIES | SDK_SERIES)
    assert named >= CHARTER_SERIES  # every Charter series is on the dashboard or alerted on
