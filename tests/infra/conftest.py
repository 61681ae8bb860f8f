"""Fixtures for runtime tests: a throwaway data dir the Postgres service user can reach."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.settings import Settings


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not tmp_path: pytest's base folder is 0700, and as root the embedded Postgres runs as an
    # unprivileged user that must traverse to its data dir.
    path = Path(tempfile.mkdtemp(prefix="eco2-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings.from_env({}).with_(data_dir=data_dir)
