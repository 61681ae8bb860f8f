"""An eventsourcing persistence module on the Eco² log: ``PERSISTENCE_MODULE=eventstore.es.persistence``.

Any ``eventsourcing.Application`` (9.5.x) can record its events in our sharded Redis log, with
the same keys and the same ``append.lua`` as the async event store (``eventstore.keys``).

Shards. Notification ids must be one contiguous sequence, and the log is contiguous per shard,
so **one factory = one shard**: ``ECO2_ES_SHARD`` if set, else ``shard_of(application name)``.
Every aggregate the application saves is kept under that shard's tag, ``{ns:sK}:agg:<id>``,
whatever ``shard_of(id)`` says: an insert is one script call, and a script touches one shard.
So ``Application.save(a, b)`` is atomic, and reading an aggregate that the async store wrote
needs a recorder of the aggregate's own shard (``ECO2_ES_SHARD=shard_of(id)``).

Keys of shard ``K`` in namespace ``ns``:

- ``{ns:sK}:events``: the shard log; entry ``<position>-0``; notification id = position;
- ``{ns:sK}:head``: last position (``max_notification_id``);
- ``{ns:sK}:agg:<id>``: an aggregate's events; entry ``<version>-1`` (version 0 is allowed);
- ``{ns:sK}:tracking:<upstream name>``: a tracking / process recorder's position;
- ``{ns:sK}:snapshots:<id>``: snapshots (``aggregate_recorder("snapshots")``), **not** in the
  log (added by this module; see ``eventstore.es.snapshots``).

Entry fields are the envelope of ``schemas.envelope``; the mapping is in ``eventstore.es.codec``:
``type`` = topic, ``ver`` = version, ``agg`` = originator id, ``atype`` = ``eventsourcing``,
``id`` = uuid5 of (originator id, version), ``meta`` = ``{}``, ``ts`` = insert time, and
``data`` = the state verbatim when it is a UTF-8 JSON object (``sv`` = ``1``), else its base64
with ``sv`` = ``b64`` (``append.lua`` copies only the 9 envelope fields, so the encoding rides in
``sv``). Envelope readers reject ``sv=b64`` entries and do not know library topics: give
eventsourcing applications their own ``ECO2_NAMESPACE`` unless Eco² consumers should see them.

Errors: ``CONFLICT``/``TRACKING`` replies of the script and refused tracking or snapshot writes
raise eventsourcing's ``IntegrityError``; connection errors ``OperationalError``.

Environment (read through the library's ``Environment``, so ``<APP NAME>_REDIS_URL`` overrides
``REDIS_URL`` for one application): ``REDIS_URL`` (default ``redis://127.0.0.1:6379/0``),
``ECO2_NAMESPACE`` (``eco2``), ``ECO2_SHARDS`` (4), ``ECO2_ES_SHARD`` (optional),
``ORIGINATOR_ID_TYPE`` (``uuid``: canonical UUID ids come back as ``UUID``; ``text``: as ``str``),
``DATABASE_URL`` and ``ECO2_DB_SCHEMA`` (the archive tier: once Redis is trimmed, older events
are read from ``event_log`` there; unset, nothing is read from Postgres),
and the library's ``*_RECORDER_TOPIC`` variables.
"""

from __future__ import annotations

from typing import TypeVar

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    ProcessRecorder,
)
from eventsourcing.utils import Environment, EnvType, resolve_topic

from eventstore.es.archive import SyncArchive
from eventstore.es.recorders import RedisAggregateRecorder, RedisApplicationRecorder
from eventstore.es.snapshots import RedisSnapshotRecorder
from eventstore.es.store import RedisDatastore
from eventstore.es.tracking import RedisProcessRecorder, RedisTrackingRecorder
from eventstore.keys import Layout, shard_of
from eventstore.redis_client import open_redis_sync

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
SOCKET_TIMEOUT_S = 10.0  # must exceed a subscription's XREAD block (es_recorders)
CONNECT_TIMEOUT_S = 5.0

R = TypeVar("R")


class RedisFactory(InfrastructureFactory[RedisTrackingRecorder]):
    """Builds recorders on one shard of the log; all share one connection pool."""

    REDIS_URL = "REDIS_URL"
    NAMESPACE = "ECO2_NAMESPACE"
    SHARDS = "ECO2_SHARDS"
    SHARD = "ECO2_ES_SHARD"
    ORIGINATOR_ID_TYPE = "ORIGINATOR_ID_TYPE"
    DATABASE_URL = "DATABASE_URL"  # the archive tier; unset: Redis only (never trimmed)
    DB_SCHEMA = "ECO2_DB_SCHEMA"

    aggregate_recorder_class = RedisAggregateRecorder
    application_recorder_class = RedisApplicationRecorder
    tracking_recorder_class = RedisTrackingRecorder
    process_recorder_class = RedisProcessRecorder

    def __init__(self, env: Environment | EnvType | None):
        super().__init__(env)
        namespace = self.env.get(self.NAMESPACE) or "eco2"
        if "{" in namespace or "}" in namespace:
            raise OSError(f"{self.NAMESPACE}={namespace!r} must not contain braces")
        shards = self._env_int(self.SHARDS, 4)
        shard = self._env_int(self.SHARD, shard_of(self.env.name, shards))
        if not 0 <= shard < shards:
            raise OSError(f"{self.SHARD}={shard} is outside 0..{shards - 1}")
        id_type = (self.env.get(self.ORIGINATOR_ID_TYPE) or "uuid").lower()
        if id_type not in ("uuid", "text"):
            raise OSError(f"{self.ORIGINATOR_ID_TYPE}={id_type!r} must be 'uuid' or 'text'")
        client = open_redis_sync(
            self.env.get(self.REDIS_URL) or DEFAULT_REDIS_URL,
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
        )
        dsn = self.env.get(self.DATABASE_URL)
        archive = (
            SyncArchive(dsn, self.env.get(self.DB_SCHEMA) or "public") if dsn else None
        )
        self.datastore = RedisDatastore(
            client, Layout(namespace, shards).keys(shard), uuid_ids=id_type == "uuid",
            archive=archive,
        )

    def _env_int(self, name: str, default: int) -> int:
        raw = self.env.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError as exc:
            raise OSError(f"{name}={raw!r} is not an integer") from exc
        if value < 0 or (name == self.SHARDS and value < 1):
            raise OSError(f"{name}={value} is out of range")
        return value

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        """Events (in the shard log) for ``events``; a side stream per originator otherwise."""
        if purpose == "events":
            return type(self).aggregate_recorder_class(self.datastore)
        return RedisSnapshotRecorder(self.datastore, purpose)

    def application_recorder(self) -> ApplicationRecorder:
        """The shard's application recorder (``APPLICATION_RECORDER_TOPIC`` may subclass it)."""
        cls = self._recorder_class(self.APPLICATION_RECORDER_TOPIC, self.application_recorder_class)
        return cls(self.datastore)

    def tracking_recorder(
        self, tracking_recorder_class: type[RedisTrackingRecorder] | None = None
    ) -> RedisTrackingRecorder:
        """A tracking recorder (the given class, ``TRACKING_RECORDER_TOPIC``, or the default)."""
        cls = tracking_recorder_class or self._recorder_class(
            self.TRACKING_RECORDER_TOPIC, self.tracking_recorder_class
        )
        if not issubclass(cls, RedisTrackingRecorder):
            raise TypeError(f"{cls} is not a RedisTrackingRecorder")
        return cls(self.datastore)

    def process_recorder(self) -> ProcessRecorder:
        """The shard's process recorder (``PROCESS_RECORDER_TOPIC`` may subclass it)."""
        cls = self._recorder_class(self.PROCESS_RECORDER_TOPIC, self.process_recorder_class)
        return cls(self.datastore)

    def _recorder_class(self, topic_name: str, default: type[R]) -> type[R]:
        topic = self.env.get(topic_name)
        if not topic:
            return default
        cls = resolve_topic(topic)
        if not (isinstance(cls, type) and issubclass(cls, default)):
            raise TypeError(f"{topic_name}={topic!r} is not a subclass of {default.__name__}")
        return cls

    def close(self) -> None:
        """Close the connection pool."""
        self.datastore.close()


Factory = RedisFactory
