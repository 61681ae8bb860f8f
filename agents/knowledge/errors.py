"""Errors of the knowledge base.

KnowledgeError
└── KnowledgeDataError   a data file is missing, malformed or inconsistent (names the entry)
"""

from __future__ import annotations


class KnowledgeError(Exception):
    """Base of knowledge-base errors."""


class KnowledgeDataError(KnowledgeError):
    """A data file is missing, malformed or inconsistent; the message names the file and entry."""
