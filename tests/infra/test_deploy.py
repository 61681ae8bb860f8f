"""``infra/deploy`` is valid and consistent with the code: Kubernetes base and production overlay
(schemas of Kubernetes 1.x via kubernetes-validate, KEDA's from the shipped JSON Schemas), the
compose file and the Dockerfile. Nothing is built or run: there is no Docker daemon or cluster."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from eventstore.keys import Layout
from infra.settings import Settings
from tests.infra.deploy_render import (
    BUILTIN_GROUPS,
    DEPLOY,
    K8S,
    Doc,
    find,
    is_eco2_command,
    kustomize,
    of_kind,
    pod_spec,
    setting_names,
)

K8S_VERSION = "1.30.0"
KEDA_SCHEMAS = {
    "ScaledObject": DEPLOY / "schemas" / "keda-scaledobject.json",
    "TriggerAuthentication": DEPLOY / "schemas" / "keda-triggerauthentication.json",
}
WORKER_GROUPS = {"scan": "commands", "reward": "events", "chat": "commands"}
ROLES = {
    "gateway": ["gateway"],
    "characters": ["grpc", "characters"],
    "worker-scan": ["worker", "scan"],
    "worker-reward": ["worker", "reward"],
    "worker-chat": ["worker", "chat"],
    "snapshot": ["worker", "snapshot"],
    "projectors": ["projections", "run"],
}
SECRET_NAMES = re.compile(r"(SECRET|_KEY$|_KEY_ID$|TOKEN$|^REDIS_URL$|^DATABASE_URL$)")

RENDERED = {"base": K8S / "base", "production": K8S / "overlays" / "production"}


@pytest.fixture(scope="module", params=sorted(RENDERED))
def docs(request: pytest.FixtureRequest) -> list[Doc]:
    return kustomize(RENDERED[request.param])


def config_of(docs: list[Doc]) -> dict[str, str]:
    return dict(find(docs, "ConfigMap", "eco2-config")["data"])


def secrets_of(docs: list[Doc]) -> dict[str, str]:
    return dict(find(docs, "Secret", "eco2-secrets")["stringData"])


def test_every_manifest_is_valid_against_its_schema(docs: list[Doc]) -> None:
    validators = {
        kind: jsonschema.Draft7Validator(json.loads(path.read_text()))
        for kind, path in KEDA_SCHEMAS.items()
    }
    for doc in docs:
        if doc["apiVersion"] in BUILTIN_GROUPS:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        else:
            assert doc["kind"] in validators, f"no schema for {doc['apiVersion']} {doc['kind']}"
            validators[doc["kind"]].validate(doc)


def test_the_validators_do_reject_mistakes() -> None:
    """Control: the schemas are not vacuous (a typo in a field or a trigger is caught)."""
    deployment = find(kustomize(RENDERED["base"]), "Deployment", "gateway")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    scaled = find(kustomize(RENDERED["base"]), "ScaledObject", "worker-scan")
    validator = jsonschema.Draft7Validator(json.loads(KEDA_SCHEMAS["ScaledObject"].read_text()))
    typo = json.loads(json.dumps(scaled))
    typo["spec"]["triggers"][0]["metadata"]["lagcount"] = "5"
    assert not validator.is_valid(typo)
    no_address = json.loads(json.dumps(scaled))
    del no_address["spec"]["triggers"][0]["metadata"]["addresses"]
    assert not validator.is_valid(no_address)


def test_one_deployment_per_role_running_a_real_eco2_command(docs: list[Doc]) -> None:
    deployments = {d["metadata"]["name"]: d for d in of_kind(docs, "Deployment")}
    assert set(deployments) == set(ROLES)
    for name, doc in deployments.items():
        (container,) = doc["spec"]["template"]["spec"]["containers"]
        assert container["args"] == ROLES[name]
        assert is_eco2_command(container["args"]), container["args"]
        assert container["image"].split(":")[0] in ("eco2", "registry.example.kr/eco2/eco2")
    (job,) = of_kind(docs, "Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    assert is_eco2_command(["migrate"])
    assert not is_eco2_command(["worker", "nope"]) and not is_eco2_command(["worker"])


def test_probes_resources_drain_and_non_root(docs: list[Doc]) -> None:
    config = config_of(docs)
    health_port = int(config["ECO2_HEALTH_PORT"])
    grace = float(config["ECO2_DRAIN_GRACE_S"])
    for doc in of_kind(docs, "Deployment"):
        spec = pod_spec(doc)
        assert spec is not None
        (container,) = spec["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["health"] == health_port
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"),
                            ("startupProbe", "/healthz")):
            assert container[probe]["httpGet"] == {"path": path, "port": "health"}
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"]
        pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
        assert spec["terminationGracePeriodSeconds"] > grace + pre_stop
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        refs = [next(iter(e.values()))["name"] for e in container["envFrom"]]
        assert refs == ["eco2-config", "eco2-secrets"]


def test_disruption_budgets_and_services_select_their_pods(docs: list[Doc]) -> None:
    pods = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
            for d in of_kind(docs, "Deployment")}
    budgets = of_kind(docs, "PodDisruptionBudget")
    covered = set()
    for pdb in budgets:
        selector = pdb["spec"]["selector"]["matchLabels"]
        matched = [n for n, labels in pods.items() if selector.items() <= labels.items()]
        assert len(matched) == 1, pdb["metadata"]["name"]
        covered.update(matched)
    assert covered == set(pods)
    for service in of_kind(docs, "Service"):
        selector = service["spec"]["selector"]
        (name,) = [n for n, labels in pods.items() if selector.items() <= labels.items()]
        container = find(docs, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        names = {p["name"] for p in container["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= names


def test_the_gateway_has_an_hpa(docs: list[Doc]) -> None:
    (hpa,) = of_kind(docs, "HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "gateway")
    find(docs, "Deployment", "gateway")
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]


def test_keda_scales_each_worker_group_on_its_streams_lag(docs: list[Doc]) -> None:
    config = config_of(docs)
    layout = Layout(config["ECO2_NAMESPACE"], int(config["ECO2_SHARDS"]))
    scaled = {d["spec"]["scaleTargetRef"]["name"]: d for d in of_kind(docs, "ScaledObject")}
    assert set(scaled) == {f"worker-{group}" for group in WORKER_GROUPS}
    for group, source in WORKER_GROUPS.items():
        obj = scaled[f"worker-{group}"]
        assert find(docs, "Deployment", f"worker-{group}")["spec"]["template"]["spec"][
            "containers"][0]["args"] == ["worker", group]
        triggers = obj["spec"]["triggers"]
        # Every stream the group reads (eventstore.groups: source and own retry), every shard.
        streams = {getattr(layout.keys(k), source) for k in range(layout.shards)}
        streams |= {layout.keys(k).retry(group) for k in range(layout.shards)}
        assert {t["metadata"]["stream"] for t in triggers} == streams
        assert len(triggers) == len(streams)
        for trigger in triggers:
            assert trigger["type"] == "redis-cluster-streams"
            assert trigger["metadata"]["consumerGroup"] == group
            assert int(trigger["metadata"]["lagCount"]) > 0
            auth = find(docs, "TriggerAuthentication", trigger["authenticationRef"]["name"])
            for ref in auth["spec"]["secretTargetRef"]:
                assert ref["key"] in find(docs, "Secret", ref["name"])["stringData"]
        assert obj["spec"]["minReplicaCount"] >= 1  # in-flight work keeps a consumer


def test_every_setting_is_wired_and_nothing_else(docs: list[Doc]) -> None:
    config, secrets = config_of(docs), secrets_of(docs)
    assert not set(config) & set(secrets)
    assert set(config) | set(secrets) == setting_names()
    assert not [name for name in config if SECRET_NAMES.search(name)], "secret in a ConfigMap"
    # The values are valid settings (with a real secret, as the operator provides).
    env = {**config, **secrets, "ECO2_SECRET_KEY": "x" * 32}
    settings = Settings.from_env(env)
    assert settings.production and settings.media_url is not None
    assert settings.health_port == 9000
    # Workers reach the character service by its Service, not their own ECO2_HOST (0.0.0.0).
    service = find(docs, "Service", "characters")
    assert settings.characters_target == f"characters:{service['spec']['ports'][0]['port']}"


def test_the_production_overlay_changes_what_it_says(docs: list[Doc]) -> None:
    production = kustomize(RENDERED["production"])
    assert {d["metadata"].get("namespace") for d in production} == {"eco2"}
    gateway = find(production, "Deployment", "gateway")["spec"]["template"]["spec"]
    assert gateway["containers"][0]["resources"]["requests"]["cpu"] == "1"
    assert gateway["containers"][0]["image"] == "registry.example.kr/eco2/eco2:0.1.0"
    assert gateway["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/readyz"  # kept
    scan = find(production, "ScaledObject", "worker-scan")["spec"]
    assert scan["maxReplicaCount"] == 80 and len(scan["triggers"]) == 8  # merged, not replaced
    assert config_of(production)["ECO2_SHARDS"] == config_of(kustomize(RENDERED["base"]))[
        "ECO2_SHARDS"]


# -- compose ------------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    text = (DEPLOY / "compose.yaml").read_text()
    # Interpolation as docker compose does it for the variables the file uses.
    text = re.sub(r"\$\{(\w+):\?[^}]*\}", "from-the-environment-0123456789", text)
    text = re.sub(r"\$\{(\w+):-([^}]*)\}", r"\2", text)
    return dict(yaml.safe_load(text))


def test_compose_runs_one_of_each_role_with_real_commands_and_settings() -> None:
    spec = compose()
    services = spec["services"]
    eco2 = {n: s for n, s in services.items() if s.get("image", "").startswith("eco2")}
    commands = sorted(tuple(s["command"]) for s in eco2.values())
    assert commands == sorted([tuple(a) for a in ROLES.values()] + [("migrate",)])
    names = setting_names()
    for name, service in eco2.items():
        assert is_eco2_command(service["command"]), name
        env = {k: str(v) for k, v in service["environment"].items()}
        assert set(env) <= names, set(env) - names
        Settings.from_env(env)  # every value parses
        assert service["build"]["dockerfile"] == "infra/deploy/Dockerfile"
        if name != "migrate":
            assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert {"redis", "postgres"} <= set(services)
    assert "noeviction" in services["redis"]["command"]
    command = services["redis"]["command"]  # rewrites from 1 GB, as the embedded one by default
    assert command[command.index("--auto-aof-rewrite-min-size") + 1] == "1gb"
    for service in eco2.values():  # workers dial the characters container, not themselves
        host = service["environment"]["ECO2_CHARACTERS_ADDR"].split(":")[0]
        assert host in services and services[host]["command"] == ["grpc", "characters"]
    for service in services.values():
        assert set(service.get("depends_on", {})) <= set(services)
    assert set(spec["volumes"]) >= {v.split(":")[0] for s in services.values()
                                    for v in s.get("volumes", [])}


def test_the_dockerfile_is_multi_stage_non_root_and_ships_every_package() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)", text, re.M)
    assert stages == ["build", "runtime"]
    runtime = text.split("AS runtime", 1)[1]
    user = re.search(r"^USER (\S+)", runtime, re.M)
    assert user is not None and not user.group(1).startswith(("0", "root"))
    assert 'ENTRYPOINT ["eco2"]' in runtime
    cmd = re.search(r"^CMD (\[.*\])", runtime, re.M)
    assert cmd is not None and is_eco2_command(json.loads(cmd.group(1)))
    pyproject = Path(DEPLOY.parents[1] / "pyproject.toml").read_text()
    packages = re.search(r'include = \[([^\]]*)\]', pyproject)
    assert packages is not None
    wanted = {p.strip(' "*') for p in packages.group(1).split(",")}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", text, re.M))
    assert copied == wanted
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text()
    assert all(f"!{p}/" in ignore for p in wanted)


def test_compose_and_kubernetes_agree_on_ports() -> None:
    base = kustomize(RENDERED["base"])
    config = config_of(base)
    env = compose()["services"]["gateway"]["environment"]
    assert str(env["ECO2_HEALTH_PORT"]) == config["ECO2_HEALTH_PORT"]
    text = (DEPLOY / "Dockerfile").read_text()
    assert f"ECO2_HEALTH_PORT={config['ECO2_HEALTH_PORT']}" in text
    assert yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())["images"][0][
        "name"] == "eco2"


# -- alert rules --------------------------------------------------------------------------------


def exported_metric_names() -> set[str]:
    """Metric families the code defines (names given to prometheus-client), with the
    ``_total`` sample name of counters."""
    root = DEPLOY.parents[1]
    names: set[str] = set()
    for package in ("gateway", "projections", "commands", "eventstore", "infra", "agents"):
        for path in (root / package).rglob("*.py"):
            text = path.read_text()
            for kind, name in re.findall(r'(Counter|Gauge|GaugeMetricFamily|Histogram)\(\s*"(eco2_\w+)"',
                                         text):
                names.add(name)
                if kind == "Counter":
                    names.add(f"{name}_total")
                if kind == "Histogram":
                    names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    return names


def test_alert_rules_use_only_metrics_the_processes_export() -> None:
    rules = yaml.safe_load((DEPLOY / "observability" / "prometheus-rules.yaml").read_text())
    exported = exported_metric_names()
    assert {"eco2_dlq_entries", "eco2_worker_in_flight", "eco2_projection_lag"} <= exported
    seen = 0
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
            assert rule["labels"]["severity"] in ("warning", "critical")
            used = set(re.findall(r"\beco2_\w+", rule["expr"]))
            assert used and used <= exported, (rule["alert"], used - exported)
            seen += 1
    assert seen >= 5


def test_the_dashboard_uses_only_metrics_the_processes_export() -> None:
    dashboard = json.loads((DEPLOY / "observability" / "grafana-dashboard.json").read_text())
    exported = exported_metric_names()
    assert dashboard["uid"] and dashboard["panels"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["type"] == "timeseries" and panel["targets"], panel["title"]
        for target in panel["targets"]:
            used = set(re.findall(r"\beco2_\w+", target["expr"]))
            assert used and used <= exported, (panel["title"], used - exported)
            assert target["expr"].count("(") == target["expr"].count(")")
