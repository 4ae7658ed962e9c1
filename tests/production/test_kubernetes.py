"""The Kubernetes overlays as rendered (`kubectl kustomize`): the worker drains within its
pod's grace and is taken out of rotation while it does, voluntary disruptions keep a worker,
secrets are files, and the two overlays point at self-hosted Temporal or Temporal Cloud.
(`make kube-check` validates every object against the Kubernetes schemas.)"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.support.paths import REPO

OVERLAYS = REPO / "deploy" / "kubernetes" / "overlays"
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|(?<!TLS)_KEYS?$|KEK|DATABASE_URL")


def rendered(overlay: str) -> dict[tuple[str, str], dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is not installed (.ci/run installs it)")
    out = subprocess.run(
        [kubectl, "kustomize", str(OVERLAYS / overlay)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(out.stdout)}


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


@pytest.mark.parametrize("overlay", ["self-hosted", "temporal-cloud"])
def test_worker_drains_gracefully_and_secrets_are_files(overlay: str) -> None:
    objects = rendered(overlay)
    worker = objects[("Deployment", "charter-worker")]["spec"]["template"]["spec"]
    [container] = worker["containers"]
    assert _env(container)["CHARTER_SHUTDOWN_GRACE"] == "PT30S"
    assert worker["terminationGracePeriodSeconds"] > 30
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert objects[("PodDisruptionBudget", "charter-worker")]["spec"]["minAvailable"] == 1
    assert ("Job", "charter-migrate") in objects and ("Job", "charter-temporal-setup") in objects
    config = objects[("ConfigMap", next(n for k, n in objects if k == "ConfigMap"))]["data"]
    for kind, name in objects:
        if kind == "ConfigMap":
            assert all(k.endswith("_FILE") or not SECRET_NAME.search(k) for k in config), config
        spec = objects[(kind, name)].get("spec", {})
        pod = spec.get("template", {}).get("spec", {})
        for c in pod.get("containers", []):
            for variable in _env(c):
                # Secrets by file only: no variable carries one (nor a secretKeyRef).
                assert variable.endswith("_FILE") or not SECRET_NAME.search(variable), variable
            assert all("valueFrom" not in e for e in c.get("env", [])), (name, c["name"])
    assert all(not v.startswith("postgresql://") for v in config.values())


def test_the_overlays_choose_the_temporal() -> None:
    def config(overlay: str) -> dict[str, str]:
        objects = rendered(overlay)
        return next(o["data"] for (kind, _), o in objects.items() if kind == "ConfigMap")

    assert config("self-hosted")["TEMPORAL_ADDRESS"].startswith("temporal-frontend.")
    cloud = config("temporal-cloud")
    assert cloud["TEMPORAL_ADDRESS"].endswith(".tmprl.cloud:7233")
    assert cloud["TEMPORAL_TLS_CLIENT_CERT_PATH"].startswith("/run/")
    codec = rendered("temporal-cloud")[("Deployment", "charter-codec-server")]
    env = _env(codec["spec"]["template"]["spec"]["containers"][0])
    assert env["CHARTER_CODEC_JWKS_URL"].startswith("https://")
    assert env["CHARTER_CODEC_TLS_CERT"] and env["CHARTER_CODEC_UI_ORIGINS"].startswith("https://")
