"""What the deployment tests need to read ``infra/deploy``: a small kustomize (the subset the
manifests use: resources, labels, images, namespace, strategic-merge patches) and lookups.

No kustomize binary is available here, so the overlay is rendered in Python; every patch must
find its target (a patch that resolves to nothing is an error, as in kustomize).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import typer
import yaml

from infra.cli import app
from infra.settings import Settings

Doc = dict[str, Any]

DEPLOY = Path(__file__).resolve().parents[2] / "infra" / "deploy"
K8S = DEPLOY / "k8s"
BUILTIN_GROUPS = ("v1", "apps/v1", "batch/v1", "policy/v1", "autoscaling/v2")
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


def load_docs(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def ident(doc: Doc) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def strategic_merge(base: Any, patch: Any, *, builtin: bool) -> Any:
    """Kubernetes' strategic merge for what our patches touch: maps merge key by key; lists of
    named objects (containers, volumes, ports, env) merge by ``name`` on built-in kinds; every
    other list (and every list of a custom resource) is replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = (
                strategic_merge(base[key], value, builtin=builtin) if key in base else value
            )
        return merged
    if builtin and isinstance(base, list) and isinstance(patch, list) and _named(base + patch):
        merged_list = list(base)
        index = {item["name"]: i for i, item in enumerate(merged_list)}
        for item in patch:
            if item["name"] in index:
                i = index[item["name"]]
                merged_list[i] = strategic_merge(merged_list[i], item, builtin=builtin)
            else:
                merged_list.append(item)
        return merged_list
    return copy.deepcopy(patch)


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(i, dict) and "name" in i for i in items)


def kustomize(folder: Path) -> list[Doc]:
    """Render the kustomization in ``folder`` (recursively for folder resources)."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    known = {"apiVersion", "kind", "resources", "labels", "images", "namespace", "patches"}
    unknown = set(spec) - known
    assert not unknown, f"{folder}: kustomization fields this renderer cannot apply: {unknown}"
    docs: list[Doc] = []
    for entry in spec.get("resources", []):
        target = (folder / entry).resolve()
        docs += kustomize(target) if target.is_dir() else load_docs(target)
    for patch_entry in spec.get("patches", []):
        assert set(patch_entry) == {"path"}, f"unsupported patch form {patch_entry}"
        for patch in load_docs(folder / patch_entry["path"]):
            matches = [i for i, d in enumerate(docs) if ident(d) == ident(patch)]
            assert matches, f"{folder}: patch {ident(patch)} has no target in the resources"
            for i in matches:
                builtin = docs[i]["apiVersion"] in BUILTIN_GROUPS
                docs[i] = strategic_merge(docs[i], patch, builtin=builtin)
    for label in spec.get("labels", []):
        for doc in docs:
            doc["metadata"].setdefault("labels", {}).update(label["pairs"])
    for image in spec.get("images", []):
        for container in containers_of_all(docs):
            if container["image"].split(":")[0] == image["name"]:
                container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    if "namespace" in spec:
        for doc in docs:
            if doc["kind"] not in CLUSTER_SCOPED:
                doc["metadata"]["namespace"] = spec["namespace"]
    return docs


def pod_spec(doc: Doc) -> Doc | None:
    if doc["kind"] in ("Deployment", "Job"):
        return dict(doc["spec"]["template"]["spec"])
    return None


def containers_of_all(docs: list[Doc]) -> list[Doc]:
    return [c for d in docs if (p := pod_spec(d)) is not None for c in p["containers"]]


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if ident(d) == (kind, name)]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def setting_names() -> set[str]:
    """Every environment variable ``Settings.from_env`` reads (recorded, not listed by hand)."""

    class Recorder(dict[str, str]):
        def __init__(self) -> None:
            super().__init__()
            self.seen: set[str] = set()

        def get(self, key: str, default: Any = None) -> Any:
            self.seen.add(key)
            return default

    recorder = Recorder()
    Settings.from_env(recorder)
    return recorder.seen


def is_eco2_command(argv: list[str]) -> bool:
    """Whether ``eco2 *argv`` names a command (not a group) of the real CLI."""
    command: Any = typer.main.get_command(app)  # typer's own (vendored) click objects
    rest = list(argv)
    while hasattr(command, "list_commands"):  # a group
        if not rest:
            return False
        sub = command.get_command(None, rest.pop(0))
        if sub is None:
            return False
        command = sub
    takes_arguments = any(p.param_type_name == "argument" for p in command.params)
    return not rest or takes_arguments
