"""Pick the servers a run uses: the configured URLs, else embedded ones."""

from __future__ import annotations

from contextlib import ExitStack

from infra.embedded.postgres_server import EmbeddedPostgres
from infra.embedded.redis_server import EmbeddedRedis
from infra.settings import Settings


def resolve_services(settings: Settings) -> tuple[Settings, ExitStack]:
    """Settings with ``redis_url`` and ``database_url`` filled, and the stack that owns them.

    A URL already set (``REDIS_URL`` / ``DATABASE_URL``) is used as is; a missing one starts the
    embedded server under ``data_dir``. Closing the stack stops what was started here. The
    returned ``data_dir`` is absolute so child processes agree on it whatever their cwd.
    """
    settings = settings.with_(data_dir=settings.data_dir.resolve())
    stack = ExitStack()
    try:
        if settings.redis_url is None:
            settings = settings.with_(redis_url=stack.enter_context(EmbeddedRedis(settings)))
        if settings.database_url is None:
            settings = settings.with_(database_url=stack.enter_context(EmbeddedPostgres(settings)))
    except BaseException:
        stack.close()
        raise
    return settings, stack
