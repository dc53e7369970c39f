"""deploy/ configs, validated offline: Ray's cluster schema, KubeRay's required fields, the Dockerfile."""

from __future__ import annotations

import copy
import platform
import re

import jsonschema
import pytest
import ray
import yaml
from conftest import REPO
from ray.autoscaler._private.util import prepare_config, validate_config

DEPLOY = REPO / "deploy"


def load(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def test_aws_cluster_config_passes_rays_own_validation() -> None:
    config = load("aws-cluster.yaml")
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    assert prepared["head_node_type"] == "ray.head.default"
    assert prepared["available_node_types"]["ray.head.default"]["resources"] == {"CPU": 0}
    spot = prepared["available_node_types"]["ray.worker.spot"]
    assert spot["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot"


def test_a_broken_cluster_config_is_rejected() -> None:
    config = load("aws-cluster.yaml")
    config["max_workerz"] = 3
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(config))
    config = load("aws-cluster.yaml")
    config["head_node_type"] = "missing"
    with pytest.raises(ValueError):
        validate_config(prepare_config(config))


def _ray_cluster_spec_ok(spec: dict) -> list[str]:
    images = []
    assert spec["rayVersion"] == ray.__version__
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    images += [c["image"] for c in head["template"]["spec"]["containers"]]
    for group in spec["workerGroupSpecs"]:
        assert group["groupName"]
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        images += [c["image"] for c in group["template"]["spec"]["containers"]]
    return images


def test_kuberay_raycluster_manifest() -> None:
    manifest = load("kuberay/raycluster.yaml")
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] == "RayCluster"
    images = _ray_cluster_spec_ok(manifest["spec"])
    assert len(set(images)) == 1


def test_kuberay_rayjob_manifest_runs_tamis() -> None:
    manifest = load("kuberay/rayjob.yaml")
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] == "RayJob"
    spec = manifest["spec"]
    assert spec["entrypoint"].startswith("tamis run pipelines/fineweb.yaml")
    assert "--output s3://" in spec["entrypoint"]
    assert spec["shutdownAfterJobFinishes"] is True
    images = _ray_cluster_spec_ok(spec["rayClusterSpec"])
    cluster_head = load("kuberay/raycluster.yaml")["spec"]["headGroupSpec"]["template"]["spec"]
    assert set(images) == {cluster_head["containers"][0]["image"]}


def test_dockerfile_matches_installed_ray_and_python() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    base = re.search(r"^FROM rayproject/ray:(\S+)-py(\d)(\d+)", dockerfile, re.MULTILINE)
    assert base, "the image must start from Ray's own image"
    assert base.group(1) == ray.__version__
    assert f"{base.group(2)}.{base.group(3)}" == ".".join(platform.python_version_tuple()[:2])
    for path in re.findall(r"^COPY \S+ (.+) \./", dockerfile, re.MULTILINE):
        for part in path.split():
            assert (REPO / part).exists(), part
    assert "pip install" in dockerfile
