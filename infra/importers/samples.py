"""The shipped SAMPLE data (Seoul drop-off points, example news) and loading it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import agents
from infra.importers.news_files import read_news_file
from infra.importers.places_json import PLACE_KINDS, read_places
from infra.importers.public_bins import BIN_DATASETS, read_bins
from infra.importers.tabular import ImportReport
from readmodels.locations import count_locations
from readmodels.locations_store import LocationRecord, optimize_locations, upsert_locations
from readmodels.news import upsert_articles

if TYPE_CHECKING:
    from readmodels.db import Pool

DATA = Path(agents.__file__).parent / "data"
LOCATION_SAMPLES: dict[str, Path] = {
    "battery_lamp": DATA / "locations" / "sample_seoul_battery_lamp_bins.csv",
    "clothing": DATA / "locations" / "sample_seoul_clothing_bins.csv",
    "medicine": DATA / "locations" / "sample_seoul_medicine_bins.csv",
    "zero_waste": DATA / "locations" / "sample_seoul_zero_waste_shops.json",
    "recycling_center": DATA / "locations" / "sample_seoul_recycling_centers.json",
}
NEWS_SAMPLE = DATA / "news" / "sample_news.json"


@dataclass(frozen=True)
class SampleLoad:
    reports: list[ImportReport]
    skipped: bool  # True when data was already there and nothing was loaded


def sample_locations() -> tuple[list[LocationRecord], list[ImportReport]]:
    """Every sample drop-off point (flagged ``sample``) and one report per file."""
    records: list[LocationRecord] = []
    reports = []
    for kind, path in LOCATION_SAMPLES.items():
        if kind in BIN_DATASETS:
            report = ImportReport(BIN_DATASETS[kind].source)
            records += read_bins(path, kind, report, sample=True)
        else:
            report = ImportReport(PLACE_KINDS[kind][0])
            records += read_places(path, kind, report, sample=True)
        report.written = report.read - sum(report.skipped.values())
        reports.append(report)
    return records, reports


async def load_samples(pool: Pool, *, only_if_empty: bool = True) -> SampleLoad:
    """Load the sample points and news. With ``only_if_empty`` (what ``eco2 up`` wants)
    nothing happens when the locations table already holds rows, real or sample."""
    if only_if_empty and await count_locations(pool) > 0:
        return SampleLoad([], skipped=True)
    records, reports = sample_locations()
    await upsert_locations(pool, records)
    await optimize_locations(pool)
    news_report = ImportReport("news")
    articles = read_news_file(NEWS_SAMPLE, news_report)
    news_report.written = await upsert_articles(pool, articles)
    return SampleLoad([*reports, news_report], skipped=False)
