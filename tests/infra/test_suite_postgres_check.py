"""A PostgreSQL the suite cannot use stops ``make test`` once, before any test, with the fix
named (not the same connection error in every database test)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import LOCAL_POSTGRES, postgres_problem

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.postgres


def _missing_database(database_url: str) -> str:
    return database_url.rsplit("/", 1)[0] + "/eco2_no_such_database"


def test_a_usable_database_is_no_problem(database_url: str) -> None:
    assert postgres_problem(database_url, given=True) is None


def test_the_local_default_names_both_fixes_and_the_embedded_way_out(database_url: str) -> None:
    problem = postgres_problem(_missing_database(database_url), given=False)
    assert problem is not None
    assert LOCAL_POSTGRES in problem and "does not exist" in problem
    assert "createdb" in problem and "trust" in problem and "DATABASE_URL" in problem


def test_a_run_against_a_missing_database_is_one_usage_error(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": _missing_database(database_url)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/infra/test_bench_repeat.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert "eco2_no_such_database" in output and output.count("is not usable") == 1
    assert "passed" not in output and "ERROR" not in output
