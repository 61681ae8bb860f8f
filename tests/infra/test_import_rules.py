"""The import rules of ARCHITECTURE.md §6 are contracts in pyproject.toml, checked by
``lint-imports``: the project keeps them, and the same contracts break on a tree that does
what §6 forbids — imports inside functions and under TYPE_CHECKING included."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")

# §6, one (importer, imported) per rule: what must be refused.
FORBIDDEN = [
    ("schemas", "eventstore"),  # schemas imports no other package
    ("eventstore", "readmodels"),  # eventstore imports only schemas
    ("eventstore", "commands"),
    ("agents", "eventstore"),  # agents never imports eventstore or gateway
    ("agents", "gateway"),
    ("agents", "commands"),  # commands and agents not in a circle (commands use agents)
    ("projections", "commands"),  # projections never imports commands
    ("readmodels", "eventstore"),  # readmodels never reads the log
    ("readmodels", "gateway"),  # nor imports gateway
    ("gateway", "commands"),  # gateway imports neither commands nor agents
    ("gateway", "agents"),
    ("commands", "infra"),  # nothing imports infra
    ("readmodels", "infra"),
    ("characters", "commands"),  # the ports below their users import only schemas
    ("media", "agents"),
    ("eventstore", "characters"),
]
# What §6 allows, present in the same tree: none of it may be reported.
ALLOWED = [
    ("infra", "gateway"), ("infra", "commands"), ("commands", "agents"),
    ("commands", "eventstore"), ("gateway", "eventstore"), ("gateway", "readmodels"),
    ("projections", "readmodels"), ("projections", "eventstore"), ("eventstore", "schemas"),
    ("agents", "schemas"), ("commands", "characters"), ("agents", "characters"),
    ("gateway", "characters"), ("gateway", "media"), ("agents", "media"),
    ("characters", "schemas"),
]


def _config() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return dict(tomllib.load(f)["tool"]["importlinter"])


def _lint(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", *args], cwd=cwd, capture_output=True, text=True,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"}, timeout=300,
    )


def test_the_project_keeps_every_contract() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_contracts_name_every_package_and_put_infra_on_top_and_schemas_at_the_bottom(
) -> None:
    config = _config()
    layers = next(c for c in config["contracts"] if c["type"] == "layers")["layers"]
    assert layers[0] == "infra" and layers[-1] == "schemas"
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()} - {"tests"}
    assert set(config["root_packages"]) == packages
    between = {name.strip() for layer in layers[1:-1] for name in re.split("[:|]", layer)}
    assert between == packages - {"infra", "schemas"}


def _tree(tmp_path: Path, imports: list[tuple[str, str]]) -> None:
    """Every root package, each importing what ``imports`` says, in three styles."""
    for package in _config()["root_packages"]:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
        (tmp_path / package / "target.py").write_text("")
    for n, (importer, imported) in enumerate(imports):
        style = n % 3
        if style == 0:  # at the top
            body = f"import {imported}.target\n"
        elif style == 1:  # inside a function, imported when it runs
            body = f"def load() -> None:\n    from {imported} import target\n"
        else:  # for annotations only
            body = f"from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import {imported}.target\n"
        (tmp_path / importer / f"uses_{imported}.py").write_text(body)


def _contracts_without_ignores(tmp_path: Path) -> Path:
    lines = ["[importlinter]", "root_packages =\n    " + "\n    ".join(_config()["root_packages"])]
    for contract in _config()["contracts"]:
        lines.append(f"\n[importlinter:contract:{contract['id']}]")
        for key, value in contract.items():
            if key in ("id", "ignore_imports", "unmatched_ignore_imports_alerting"):
                continue
            if isinstance(value, list):
                value = "\n    " + "\n    ".join(value)
            lines.append(f"{key} = {value}")
    path = tmp_path / "contracts.ini"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_contracts_refuse_every_forbidden_import_and_no_allowed_one(tmp_path: Path) -> None:
    _tree(tmp_path, FORBIDDEN + ALLOWED)
    result = _lint(tmp_path, str(_contracts_without_ignores(tmp_path)))
    assert result.returncode == 1, result.stdout + result.stderr
    for importer, imported in FORBIDDEN:
        assert f"{importer}.uses_{imported} -> {imported}" in result.stdout, (importer, imported)
    for importer, imported in ALLOWED:
        assert f"{importer}.uses_{imported} ->" not in result.stdout, (importer, imported)


def test_the_same_tree_without_the_forbidden_imports_passes(tmp_path: Path) -> None:
    _tree(tmp_path, ALLOWED)
    result = _lint(tmp_path, str(_contracts_without_ignores(tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr
