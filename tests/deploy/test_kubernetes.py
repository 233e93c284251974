"""The Kubernetes manifests in deploy/kubernetes: Kubernetes' object schemas and our own rules."""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes.client.models as k8s_models
import pytest
import yaml

from chatops_core.cli import build_parser
from chatops_core.settings import Settings, load_settings
from chatops_core.tasks import QUEUES

ROOT = Path(__file__).resolve().parents[2]
DIR = ROOT / "deploy" / "kubernetes"
# Lists the Secret's keys with placeholders; never applied, so never listed in the kustomization.
SECRET_EXAMPLE = "secret.example.yaml"
SECRET_NAME = "chatops-secrets"
PLACEHOLDER = "CHANGE-ME"
IMAGE = "chatops-incidents:0.1.0"
# API groups whose objects are checked against the kubernetes client's models.
CORE_GROUPS = {"", "apps", "batch", "autoscaling", "policy"}
# Settings that hold secrets: only ever from a Secret (or "${NAME}" in the config file).
SECRET_SETTINGS = {"api_token", "database_url", "bot_token", "signing_secret", "token", "public_key"}
SECRETISH = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|DATABASE_URL|PRIVATE|CREDENTIAL", re.IGNORECASE)


def manifest_files() -> list[Path]:
    return sorted(p for p in DIR.glob("*.yaml") if p.name != "kustomization.yaml")


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def applied() -> list[dict[str, Any]]:
    """Every object `kubectl apply -k` applies."""
    return [d for p in manifest_files() if p.name != SECRET_EXAMPLE for d in documents(p)]


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in applied() if d["kind"] == kind]


def named(kind: str, name: str) -> dict[str, Any]:
    (obj,) = [d for d in of_kind(kind) if d["metadata"]["name"] == name]
    return obj


def pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in applied():
        if obj["kind"] in ("Deployment", "Job"):
            yield f"{obj['kind']} {obj['metadata']['name']}", obj["spec"]["template"]["spec"]


def containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for where, spec in pod_specs():
        for c in spec.get("initContainers", []) + spec["containers"]:
            yield f"{where} container {c['name']}", c


def env_config() -> dict[str, str]:
    return named("ConfigMap", "chatops-env")["data"]


def config_toml() -> str:
    return named("ConfigMap", "chatops-config")["data"]["chatops.toml"]


def secret_example() -> dict[str, Any]:
    (secret,) = documents(DIR / SECRET_EXAMPLE)
    return secret


# --- Kubernetes' schemas --------------------------------------------------------------------

_PRIMITIVES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "datetime": (str,),
    "date": (str,),
    "bytes": (str,),
}


def strict_model(data: Any, type_name: str, where: str = "") -> Any:
    """``data`` built into the kubernetes client's model ``type_name``, refusing what the API
    would: an unknown (or misspelled) field, a value of the wrong type, a required field missing
    (the models' own client-side validation)."""
    if type_name == "object":
        return data
    if type_name in _PRIMITIVES:
        wanted = _PRIMITIVES[type_name]
        if not isinstance(data, wanted) or (bool not in wanted and isinstance(data, bool)):
            raise TypeError(f"{where}: {data!r} is not a {type_name}")
        return data
    if m := re.fullmatch(r"[Ll]ist\[(.+)\]", type_name):
        if not isinstance(data, list):
            raise TypeError(f"{where}: expected a list")
        return [strict_model(v, m.group(1), f"{where}[{i}]") for i, v in enumerate(data)]
    if m := re.fullmatch(r"(?:dict\(str, (.+)\)|Dict\[str, (.+)\])", type_name):
        if not isinstance(data, dict):
            raise TypeError(f"{where}: expected a mapping")
        inner = m.group(1) or m.group(2)
        return {k: strict_model(v, inner, f"{where}.{k}") for k, v in data.items()}
    cls = getattr(k8s_models, type_name)
    if not isinstance(data, dict):
        raise TypeError(f"{where}: expected a {type_name} mapping")
    by_json = {json_name: attr for attr, json_name in cls.attribute_map.items()}
    unknown = sorted(set(data) - set(by_json))
    if unknown:
        raise ValueError(f"{where}: {type_name} has no field(s) {', '.join(unknown)}")
    kwargs = {
        by_json[k]: strict_model(v, cls.openapi_types[by_json[k]], f"{where}.{k}") for k, v in data.items()
    }
    return cls(**kwargs)


def model_name(obj: dict[str, Any]) -> str:
    version = obj["apiVersion"].rpartition("/")[2]
    return version[0].upper() + version[1:] + obj["kind"]


def test_manifests_parse_as_kubernetes_objects() -> None:
    for path in manifest_files():
        docs = documents(path)
        assert docs, f"{path.name} holds no object"
        for obj in docs:
            assert {"apiVersion", "kind", "metadata"} <= set(obj), f"{path.name}: {obj}"
            assert "namespace" not in obj["metadata"], f"{path.name}: the kustomization sets the namespace"
            assert obj["kind"] != "Namespace", f"{path.name}: the kustomization sets the namespace"


def test_core_objects_match_the_schemas() -> None:
    checked = set()
    for path in manifest_files():
        for obj in documents(path):
            group = obj["apiVersion"].rpartition("/")[0]
            if group not in CORE_GROUPS:
                continue
            strict_model(obj, model_name(obj), f"{path.name}: {obj['kind']} {obj['metadata']['name']}")
            checked.add(obj["kind"])
    assert {
        "ConfigMap",
        "Secret",
        "Job",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    } <= checked


@pytest.mark.parametrize(
    "bad",
    [
        {"spec": {"template": {"spec": {"containers": [{"name": "a", "imagee": "x"}]}}}},
        {"spec": {"replicas": "2"}},
        {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}},
    ],
    ids=["misspelled field", "wrong type", "required field missing"],
)
def test_the_schema_check_refuses_what_the_api_would(bad: dict[str, Any]) -> None:
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}} | bad
    obj["spec"].setdefault("selector", {"matchLabels": {"a": "b"}})
    obj["spec"].setdefault("template", {"spec": {"containers": [{"name": "a"}]}})
    with pytest.raises((ValueError, TypeError)):
        strict_model(obj, model_name(obj))


# --- The kustomization ----------------------------------------------------------------------


def test_the_kustomization_lists_every_manifest_and_nothing_else() -> None:
    kustomization = yaml.safe_load((DIR / "kustomization.yaml").read_text(encoding="utf-8"))
    assert kustomization["kind"] == "Kustomization"
    assert kustomization["namespace"]
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed))
    for name in listed:
        assert (DIR / name).is_file(), f"kustomization.yaml lists {name}, which does not exist"
    expected = {p.name for p in manifest_files()} - {SECRET_EXAMPLE}
    assert set(listed) == expected
    assert SECRET_EXAMPLE not in listed, "applying the example would overwrite the real Secret"
    assert not of_kind("Secret"), "no Secret is applied: it is created by hand (README)"


# --- Our rules ------------------------------------------------------------------------------


def test_labels_match_selectors() -> None:
    deployments = of_kind("Deployment")
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in deployments]
    for d in deployments:
        match = d["spec"]["selector"]["matchLabels"]
        assert match.items() <= d["spec"]["template"]["metadata"]["labels"].items(), d["metadata"]["name"]
        others = [
            o
            for o in deployments
            if o is not d and match.items() <= o["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert not others, f"{d['metadata']['name']}'s selector also selects another Deployment's pods"
    for kind in ("Service", "PodDisruptionBudget", "ServiceMonitor"):
        for obj in of_kind(kind):
            selector = obj["spec"]["selector"]
            selector = selector.get("matchLabels", selector) if kind != "Service" else selector
            source = (
                pod_labels
                if kind != "ServiceMonitor"
                else [s["metadata"]["labels"] for s in of_kind("Service")]
            )
            hits = [labels for labels in source if selector.items() <= labels.items()]
            assert len(hits) == 1, f"{kind} {obj['metadata']['name']} selects {len(hits)} sets of labels"
    names = {d["metadata"]["name"] for d in deployments}
    for hpa in of_kind("HorizontalPodAutoscaler"):
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert hpa["spec"]["scaleTargetRef"]["name"] in names


def test_every_container_runs_a_chatops_subcommand() -> None:
    parser = build_parser()
    seen = set()
    for where, c in containers():
        assert c["command"] == ["chatops"], f"{where}: command {c.get('command')}"
        argv = [str(a) for a in c.get("args", [])]
        try:
            args = parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"{where}: `chatops {shlex.join(argv)}` is not a chatops command")
        seen.add(args.command)
        if args.command == "worker":
            assert set(args.queues.split(",")) <= set(QUEUES), f"{where}: unknown queue in {args.queues}"
    assert {"ingress", "worker", "beat", "db"} <= seen


def test_one_worker_deployment_per_queue_and_beat_alone() -> None:
    parser = build_parser()
    queues = []
    for d in of_kind("Deployment"):
        (c,) = d["spec"]["template"]["spec"]["containers"]
        args = parser.parse_args([str(a) for a in c["args"]])
        if args.command == "worker":
            assert "," not in args.queues, f"{d['metadata']['name']}: one queue per pool"
            queues.append(args.queues)
            assert "replicas" not in d["spec"], "the ScaledObject owns a worker pool's replica count"
        if args.command == "beat":
            assert d["spec"]["replicas"] == 1
            assert d["spec"]["strategy"]["type"] == "Recreate"
    assert sorted(queues) == sorted(QUEUES)


def test_every_deployment_serving_http_has_probes() -> None:
    for d in of_kind("Deployment"):
        for c in d["spec"]["template"]["spec"]["containers"]:
            ports = {p.get("name") for p in c.get("ports", [])} | {
                p["containerPort"] for p in c.get("ports", [])
            }
            if not c.get("ports"):
                continue
            for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
                get = c[probe]["httpGet"]
                assert get["path"] == path, f"{d['metadata']['name']}: {probe}"
                assert get["port"] in ports, f"{d['metadata']['name']}: {probe} on an unknown port"
    ingress = named("Deployment", "chatops-ingress")
    assert ingress["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 8080
    service = named("Service", "chatops-ingress")
    assert [p["port"] for p in service["spec"]["ports"]] == [8080]


def _allowed_env() -> set[str]:
    # CHATOPS_CONFIG names the file; every other CHATOPS_* variable is a field of Settings.
    return {"CHATOPS_CONFIG"} | {f"CHATOPS_{name.upper()}" for name in Settings.model_fields}


def _file_refs() -> set[str]:
    return set(re.findall(r'"\$\{([A-Za-z_][A-Za-z0-9_]*)\}"', config_toml()))


def _keda_env() -> set[str]:
    return {
        t["metadata"][k]
        for s in of_kind("ScaledObject")
        for t in s["spec"]["triggers"]
        for k in t["metadata"]
        if k.endswith("FromEnv")
    }


def test_every_environment_variable_is_read() -> None:
    allowed = _allowed_env()
    others = _file_refs() | _keda_env()
    names = set(env_config())
    for _, c in containers():
        names |= {e["name"] for e in c.get("env", [])}
    for name in names:
        if name.startswith("CHATOPS_"):
            assert name in allowed, f"{name} is not a setting chatops reads"
        else:
            assert name in others, f"{name} is read by neither the config file nor KEDA"


def test_no_secret_value_inline() -> None:
    for where, c in containers():
        for e in c.get("env", []):
            if SECRETISH.search(e["name"]):
                assert "value" not in e, f"{where}: {e['name']} is inline"
                assert e["valueFrom"]["secretKeyRef"]["name"] == SECRET_NAME, f"{where}: {e['name']}"
        for source in c.get("envFrom", []):
            assert "configMapRef" in source or "secretRef" in source
    for key, value in env_config().items():
        assert not SECRETISH.search(key), f"ConfigMap chatops-env holds {key}"
        parts = urlsplit(value) if "://" in value else None
        assert not (parts and parts.password), f"ConfigMap chatops-env: {key} holds a password"
    file = tomllib.loads(config_toml())
    for table in [file.get("chatops", {}), *file.get("providers", {}).values()]:
        for key, value in table.items():
            if key in SECRET_SETTINGS:
                assert re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}", value), f"config file: {key} inline"


def test_the_secret_template_holds_placeholders_and_every_key_used() -> None:
    secret = secret_example()
    assert secret["metadata"]["name"] == SECRET_NAME
    values = {**secret.get("stringData", {}), **secret.get("data", {})}
    assert values and set(values.values()) == {PLACEHOLDER}
    used = set()
    for where, c in containers():
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == SECRET_NAME and ref["key"] in values, f"{where}: {ref}"
                used.add(ref["key"])
    assert used == set(values)
    create = (DIR / SECRET_EXAMPLE).read_text(encoding="utf-8")
    assert f"kubectl -n chatops create secret generic {SECRET_NAME}" in create
    for key in values:
        assert f"--from-literal={key}=" in create


def _pod_environ(c: dict[str, Any], tmp: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        assert source["configMapRef"]["name"] == "chatops-env"
        env.update(env_config())
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        elif ref := e["valueFrom"].get("configMapKeyRef"):
            env[e["name"]] = named("ConfigMap", ref["name"])["data"][ref["key"]]
        else:
            env[e["name"]] = "postgresql://u:p@db/chatops" if "DATABASE" in e["name"] else "placeholder"
    if "CHATOPS_CONFIG" in env:
        mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
        assert str(Path(env["CHATOPS_CONFIG"]).parent) in mounts
        config = tmp / "chatops.toml"
        config.write_text(config_toml(), encoding="utf-8")
        env["CHATOPS_CONFIG"] = str(config)
    return env


def test_every_pod_s_settings_load(tmp_path: Path) -> None:
    for where, c in containers():
        settings = load_settings(environ=_pod_environ(c, tmp_path))
        if c["args"][0] != "beat":  # beat only publishes
            assert settings.database_url, f"{where}: no database"
        if c["args"][0] in ("ingress", "worker", "beat"):
            assert settings.broker_url, f"{where}: no broker"
            assert settings.providers, f"{where}: no provider"
        if c["args"][0] == "ingress":
            assert (settings.host, settings.port) == ("0.0.0.0", 8080)


def test_keda_scales_each_worker_pool_on_its_queue() -> None:
    scaled = {}
    for so in of_kind("ScaledObject"):
        assert so["apiVersion"] == "keda.sh/v1alpha1"
        spec = so["spec"]
        target = named("Deployment", spec["scaleTargetRef"]["name"])
        (c,) = target["spec"]["template"]["spec"]["containers"]
        queue = build_parser().parse_args([str(a) for a in c["args"]]).queues
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "redis"
        meta = trigger["metadata"]
        assert all(isinstance(v, str) for v in meta.values()), "KEDA trigger metadata values are strings"
        assert meta["listName"] == queue and queue in QUEUES
        assert int(meta["listLength"]) > 0
        # The address is the broker's, read from the worker's own environment.
        assert "address" not in meta
        env = {e["name"]: e for e in c["env"]}
        assert env[meta["addressFromEnv"]]["valueFrom"]["configMapKeyRef"]["name"] == "chatops-env"
        broker = urlsplit(env_config()["CHATOPS_BROKER_URL"])
        assert env_config()[meta["addressFromEnv"]] == f"{broker.hostname}:{broker.port or 6379}"
        assert meta.get("databaseIndex", "0") == (broker.path.strip("/") or "0")
        assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        scaled[queue] = spec
    assert sorted(scaled) == sorted(QUEUES)
    assert scaled["interactive"]["minReplicaCount"] >= 1


def test_service_monitor_scrapes_metrics() -> None:
    (monitor,) = of_kind("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    service = named("Service", "chatops-ingress")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}


def test_pods_run_as_non_root_with_a_read_only_root() -> None:
    for where, spec in pod_specs():
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["automountServiceAccountToken"] is False, where
        # Service links would add CHATOPS_<SERVICE>_PORT=tcp://... variables to the environment.
        assert spec["enableServiceLinks"] is False, where
    for where, c in containers():
        assert c["image"] == IMAGE and "/" not in c["image"], where
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, where
        assert sc["capabilities"]["drop"] == ["ALL"], where
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert "/tmp" in mounts, f"{where}: nowhere to write temporary files"
        resources = c["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"], where


def test_workers_get_time_to_finish_a_task_in_flight() -> None:
    from workers.retry import CAP_SECONDS

    visibility = Settings.model_fields["visibility_timeout_seconds"].default
    assert int(env_config()["CHATOPS_VISIBILITY_TIMEOUT_SECONDS"]) > CAP_SECONDS + 60
    parser = build_parser()
    for d in of_kind("Deployment"):
        spec = d["spec"]["template"]["spec"]
        if parser.parse_args([str(a) for a in spec["containers"][0]["args"]]).command == "worker":
            # Long enough for a running task (a few platform calls of 10 s); a task waiting out a
            # retry countdown is given back at once, so the retry cap does not count.
            assert 60 <= spec["terminationGracePeriodSeconds"] < visibility, d["metadata"]["name"]
    hpa = named("HorizontalPodAutoscaler", "chatops-ingress")
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["spec"]["minReplicas"] >= 2
