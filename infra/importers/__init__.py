"""Offline importers for reference data (drop-off points, news) and the RSS/Atom collector.

Importers read the public datasets in their published formats (CSV with Korean headers, JSON)
and write the ``locations`` / ``news_articles`` read models; ``eco2 import ...`` runs them.
"""
