-- The nearest query ranks candidates from the index alone (index-only scan): the strip index
-- also carries what the ranking and the filters read, so only the final few rows touch the
-- table. Imports end with VACUUM ANALYZE (readmodels.locations_store.optimize_locations) so
-- the visibility map lets the scan skip the heap.
DROP INDEX IF EXISTS locations_band_lon;
CREATE INDEX IF NOT EXISTS locations_band_lon_cover ON locations (lat_band, longitude)
    INCLUDE (latitude, id, store_category, pickup_categories);
