"""The versioned read-model tables and the stable views readers query.

Each projection owns a *group* of tables. A table version is a physical table ``<model>_v<k>``
(or ``<model>_s<hex>`` for verify's scratch copies); readers only ever query the view
``<model>``, which points at the active version and is switched inside the transaction that
marks a new version active (see ``readmodels.versions``).

Values in these tables come only from events (timestamps are the events' own, never ``now()``),
so a rebuild from position 0 reproduces them byte for byte and ``verify`` can compare checksums.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

_SUFFIX = re.compile(r"^(v[0-9]+|s[0-9a-f]{4,32})$")
# Words that end a column's type in its definition ("status text NOT NULL DEFAULT 'queued'").
_CONSTRAINT_WORDS = frozenset(
    {"not", "null", "default", "primary", "unique", "check", "references", "generated", "collate",
     "constraint"}
)


def check_suffix(suffix: str) -> str:
    """``suffix`` if it names a table version (``v3``) or scratch copy (``s1a2b``)."""
    if not _SUFFIX.match(suffix):
        raise ValueError(f"not a table version suffix: {suffix!r}")
    return suffix


@dataclass(frozen=True)
class TableSpec:
    """One read model: the view name readers use, its key and its column definitions."""

    name: str
    key: tuple[str, ...]
    columns: str  # column definitions of CREATE TABLE (the key is added as the primary key)
    indexes: tuple[str, ...] = ()  # column lists of secondary indexes, e.g. "user_id, created_at"

    @cached_property
    def column_types(self) -> dict[str, str]:
        """Each column's SQL type, as written in ``columns`` (e.g. ``{"day": "date"}``): the
        element types of the arrays a batch's rows are written with (``projections.changes``)."""
        text = "\n".join(line.split("--", 1)[0] for line in self.columns.splitlines())
        types = {}
        for definition in text.split(","):
            name, *words = definition.split()
            kept = []
            for word in words:
                if word.lower() in _CONSTRAINT_WORDS:
                    break
                kept.append(word)
            types[name] = " ".join(kept)
        return types

    def physical(self, suffix: str) -> str:
        return f"{self.name}_{check_suffix(suffix)}"

    def create_sql(self, suffix: str) -> list[str]:
        table = self.physical(suffix)
        statements = [
            f"CREATE TABLE {table} ({self.columns}, PRIMARY KEY ({', '.join(self.key)}))"
        ]
        for i, cols in enumerate(self.indexes):
            statements.append(f"CREATE INDEX {table}_i{i} ON {table} ({cols})")
        return statements

    def view_sql(self, suffix: str) -> str:
        return f"CREATE OR REPLACE VIEW {self.name} AS SELECT * FROM {self.physical(suffix)}"


@dataclass(frozen=True)
class TableGroup:
    """The tables one projection writes; they are versioned and switched together."""

    name: str
    tables: tuple[TableSpec, ...]
    # The code version (``Projection.version``) of the projection that fills these tables:
    # migrations record it for a group's first tables, so a fresh deployment needs no rebuild.
    code_version: int = 1

    def table(self, name: str) -> TableSpec:
        for spec in self.tables:
            if spec.name == name:
                return spec
        raise KeyError(f"group {self.name} has no table {name!r}")


SCANS = TableGroup(
    "scans",
    (
        TableSpec(
            "scans",
            ("job_id",),
            """job_id text NOT NULL,
               user_id text,
               status text NOT NULL DEFAULT 'queued',
               stage text NOT NULL DEFAULT 'queued',
               progress integer NOT NULL DEFAULT 0,
               image_url text,
               user_input text,
               classification jsonb,
               disposal_rules json,  -- json, not jsonb: keeps the rule's step order
               rule_found boolean,
               answer json,  -- json keeps disposal_steps in order (jsonb sorts keys)
               reward jsonb,
               error jsonb,
               version integer NOT NULL DEFAULT 0,
               created_at timestamptz,
               updated_at timestamptz,
               finished_at timestamptz""",
            ("user_id, created_at",),
        ),
        TableSpec(
            "scan_users",
            ("user_id",),
            # Per user with scans: new scans share-lock it, the deletion updates it, so the
            # two serialise on this row whatever shards they come from (docs/PRIVACY.md).
            """user_id text NOT NULL,
               erased_at timestamptz""",
        ),
    ),
    code_version=3,  # 2: scan_users, deleted users' free text scrubbed; 3: json columns compact
)

USERS = TableGroup(
    "users",
    (
        TableSpec(
            "users",
            ("user_id",),
            """user_id text NOT NULL,
               username text,
               nickname text,
               phone_number text,
               provider text,
               registered_at timestamptz,
               last_login_at timestamptz,
               completed_scans integer NOT NULL DEFAULT 0,
               points integer NOT NULL DEFAULT 0,
               deleted boolean NOT NULL DEFAULT false,
               deleted_at timestamptz""",
        ),
    ),
)

CHARACTERS = TableGroup(
    "characters",
    (
        TableSpec(
            "character_ownership",
            ("user_id", "character_code"),
            """user_id text NOT NULL,
               character_code text NOT NULL,
               name text NOT NULL,
               source_job_id text,
               acquired_at timestamptz NOT NULL""",
        ),
    ),
)

STATS = TableGroup(
    "stats",
    (
        TableSpec(
            "stats_scans_daily",
            ("day", "middle_category"),
            "day date NOT NULL, middle_category text NOT NULL, count bigint NOT NULL DEFAULT 0",
        ),
        TableSpec(
            "stats_rewards",
            ("character_code",),
            "character_code text NOT NULL, count bigint NOT NULL DEFAULT 0",
        ),
    ),
)

# Ready for the chat issue: tables and views exist, the projection that fills them comes later.
CHAT = TableGroup(
    "chat",
    (
        TableSpec(
            "chat_sessions",
            ("id",),
            """id text NOT NULL,
               user_id text NOT NULL,
               title text,
               preview text,
               message_count integer NOT NULL DEFAULT 0,
               last_message_at timestamptz,
               created_at timestamptz NOT NULL,
               deleted boolean NOT NULL DEFAULT false""",
            ("user_id, last_message_at",),
        ),
        TableSpec(
            "chat_messages",
            ("id",),
            """id text NOT NULL,
               chat_id text NOT NULL,
               role text NOT NULL,
               content text NOT NULL DEFAULT '',
               image_url text,
               intent text,
               metadata jsonb,
               created_at timestamptz NOT NULL""",
            ("chat_id, created_at",),
        ),
        TableSpec(
            "chat_users",
            ("user_id",),
            # Per user, like scan_users: chats and the deletion serialise on this row.
            """user_id text NOT NULL,
               chats integer NOT NULL DEFAULT 0,
               erased_at timestamptz""",
        ),
    ),
    code_version=2,  # 2: chat_users, and deleted users' typed text scrubbed
)

GROUPS: dict[str, TableGroup] = {g.name: g for g in (SCANS, USERS, CHARACTERS, STATS, CHAT)}
