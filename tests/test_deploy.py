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


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (DEPLOY / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_dockerfile_matches_installed_ray_and_python() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    base = re.search(r"^FROM python:(\d)\.(\d+)-\S+@sha256:[0-9a-f]{64}\s*$", dockerfile, re.MULTILINE)
    assert base, "the image must start from a Python image pinned by digest"
    assert f"{base.group(1)}.{base.group(2)}" == ".".join(platform.python_version_tuple()[:2])
    assert _constraints()["ray"] == ray.__version__
    for path in re.findall(r"^COPY \S+ (.+) \./", dockerfile, re.MULTILINE):
        for part in path.split():
            assert (REPO / part).exists(), part
    assert "pip install" in dockerfile


# --- the security properties of deploy/ (deploy/SECURITY.md) ---

def test_dockerfile_is_pinned_by_digest_and_installs_from_the_constraints() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    froms = re.findall(r"^FROM\s+(\S+)", dockerfile, re.MULTILINE)
    assert froms and all(re.fullmatch(r"[^@\s]+@sha256:[0-9a-f]{64}", image) for image in froms), froms
    installs = [line for line in dockerfile.splitlines() if re.search(r"\bpip install\b", line)]
    assert installs and all(re.search(r"(-c|--constraint)\s+deploy/constraints\.txt", line) for line in installs)
    assert re.search(r"^COPY \S+ deploy/constraints\.txt ", dockerfile, re.MULTILINE)
    assert re.search(r"^USER (?!root)\S+", dockerfile, re.MULTILINE), "Ray must not run as root in the image"
    assert re.search(r"RAY_AUTH_MODE=token", dockerfile)
    pins = _constraints()
    assert "tamis" not in pins and all(re.fullmatch(r"[0-9][0-9A-Za-z.]*", v) for v in pins.values())
    # the versions installed here (where the tests run) are the ones the image gets
    from importlib.metadata import version
    for name in ("ray", "pyarrow", "trafilatura", "warcio", "s3fs"):
        assert pins[name] == version(name), name


def test_aws_cluster_is_private() -> None:
    config = load("aws-cluster.yaml")
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    for name, node_type in prepared["available_node_types"].items():
        metadata = node_type["node_config"].get("MetadataOptions", {})
        assert metadata.get("HttpTokens") == "required", f"{name}: IMDSv2 must be required"
        assert metadata.get("HttpPutResponseHopLimit", 1) == 1, name
    head = " ".join(prepared["head_start_ray_commands"])
    assert "--dashboard-host=0.0.0.0" not in head and "--dashboard-host=127.0.0.1" in head
    for commands in (prepared["head_start_ray_commands"], prepared["worker_start_ray_commands"]):
        starts = [c for c in commands if "ray start" in c]
        assert starts and all("RAY_AUTH_MODE=token" in c for c in starts), starts
    assert "--env RAY_AUTH_MODE=token" in prepared["docker"]["run_options"]
    assert prepared["file_mounts"].get("~/.ray/auth_token") == "~/.ray/auth_token"
    assert any("chmod 600 ~/.ray/auth_token" in c for c in prepared["setup_commands"])
    rules = prepared["provider"]["security_group"]["IpPermissions"]
    for rule in rules:
        assert (rule["FromPort"], rule["ToPort"]) == (22, 22), "only SSH may be opened to the outside"
        assert all(r["CidrIp"] != "0.0.0.0/0" for r in rule.get("IpRanges", [])), rule


def _pod_templates(spec: dict) -> list[dict]:
    return [spec["headGroupSpec"]["template"], *(g["template"] for g in spec["workerGroupSpecs"])]


def _network_policies() -> list[dict]:
    return [d for d in yaml.safe_load_all((DEPLOY / "kuberay" / "networkpolicy.yaml").read_text()) if d]


def _admitted_only_by_own_pods(labels: dict[str, str], policies: list[dict] | None = None) -> bool:
    """True when a NetworkPolicy selects pods with `labels` for ingress and admits only pods that carry them."""
    for policy in _network_policies() if policies is None else policies:
        assert policy["apiVersion"] == "networking.k8s.io/v1" and policy["kind"] == "NetworkPolicy"
        spec = policy["spec"]
        selected = spec["podSelector"].get("matchLabels", {})
        if not selected or any(labels.get(k) != v for k, v in selected.items()):
            continue
        if "Ingress" not in spec.get("policyTypes", ["Ingress"]):
            continue
        sources = [source for rule in spec.get("ingress", []) for source in rule.get("from", [None])]
        if all(source is not None and set(source) == {"podSelector"}
               and source["podSelector"].get("matchLabels") == selected for source in sources):
            return True
    return False


@pytest.mark.parametrize("name", ["kuberay/raycluster.yaml", "kuberay/rayjob.yaml"])
def test_kuberay_cluster_is_private(name: str) -> None:
    manifest = load(name)
    spec = manifest["spec"] if manifest["kind"] == "RayCluster" else manifest["spec"]["rayClusterSpec"]
    assert spec.get("authOptions", {}).get("mode") == "token"
    assert spec["headGroupSpec"]["rayStartParams"].get("dashboard-host", "127.0.0.1") != "0.0.0.0"
    for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
        assert group["rayStartParams"].get("dashboard-host") in (None, "127.0.0.1"), group
    label_sets = [template.get("metadata", {}).get("labels", {}) for template in _pod_templates(spec)]
    assert all(label_sets) and all(labels == label_sets[0] for labels in label_sets), label_sets
    assert _admitted_only_by_own_pods(label_sets[0]), f"no NetworkPolicy keeps other pods out of {name}"
    for template in _pod_templates(spec):
        for container in template["spec"]["containers"]:
            env = {e["name"]: e for e in container.get("env", [])}
            assert env.get("RAY_AUTH_MODE", {}).get("value", "token") == "token"
    if manifest["kind"] == "RayJob":
        # the dashboard is on the head pod's loopback, so the submitter must run inside that pod
        assert manifest["spec"]["submissionMode"] == "SidecarMode"


def test_a_network_policy_that_admits_others_is_caught() -> None:
    labels = load("kuberay/raycluster.yaml")["spec"]["headGroupSpec"]["template"]["metadata"]["labels"]
    assert _admitted_only_by_own_pods(labels)
    assert not _admitted_only_by_own_pods({"tamis.io/ray-cluster": "some-other-cluster"})
    policy = _network_policies()[0]
    for opened in ([{}], [{"from": [{"namespaceSelector": {}}]}], [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}],
                   [{"from": [{"podSelector": {}}]}]):
        loose = copy.deepcopy(policy)
        loose["spec"]["ingress"] = opened
        assert not _admitted_only_by_own_pods(labels, [loose]), opened
