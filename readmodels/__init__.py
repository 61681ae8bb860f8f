"""Postgres read models: migrations, versioned tables behind stable views, and the queries.

Only this package's query functions read these tables; only projections write them.
"""

from readmodels.catalog import seed_catalog
from readmodels.db import connect, create_pool
from readmodels.migrate import migrate
from readmodels.queries import (
    DailyScanCount,
    OwnedCharacter,
    RewardCount,
    ScanView,
    UserView,
    catalog,
    get_scan,
    get_user,
    list_characters,
    owns_character,
    rewards_per_character,
    scans_per_category,
)

__all__ = [
    "DailyScanCount",
    "OwnedCharacter",
    "RewardCount",
    "ScanView",
    "UserView",
    "catalog",
    "connect",
    "create_pool",
    "get_scan",
    "get_user",
    "list_characters",
    "migrate",
    "owns_character",
    "rewards_per_character",
    "scans_per_category",
    "seed_catalog",
]
