"""Messages (commands, events) and the registry of their wire names. No I/O.

Importing this package registers every message class.
"""

from schemas import chat, scan, users  # noqa: F401  (registration side effect)
from schemas.registry import registry

__all__ = ["registry"]
