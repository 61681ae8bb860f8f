-- Drop-off points: public collection bins (batteries/lamps, clothing, medicine), zero-waste shops
-- and recycling centres. Reference data loaded by importers (``eco2 import``), not a projection.
--
-- Nearest queries must not depend on PostGIS or the cube/earthdistance contrib modules (the
-- embedded pgserver ships neither), so the spatial index is a plain btree on (lat_band,
-- longitude): lat_band is the 0.01° latitude strip (~1.1 km). A query lists the strips its
-- bounding box covers (lat_band = ANY(...)), which the btree answers with one short range scan
-- on longitude per strip; exact haversine distance then filters and orders the few candidates.
CREATE TABLE IF NOT EXISTS locations (
    id                bigserial PRIMARY KEY,
    source            text NOT NULL,                 -- dataset key, e.g. 'clothing_bins'
    source_key        text NOT NULL,                 -- stable key of the row within its dataset
    name              text NOT NULL,
    road_address      text,
    lot_address       text,
    detail            text,                          -- where exactly (e.g. '1층 출입구 옆')
    latitude          double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude         double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    lat_band          integer GENERATED ALWAYS AS (floor(latitude * 100)::integer) STORED,
    store_category    text NOT NULL,                 -- collection_bin | zero_waste_shop | recycling_center
    pickup_categories text[] NOT NULL DEFAULT '{}',  -- what it takes, as KB middle categories
    phone             text,
    place_url         text,
    start_time        text,                          -- 'HH:MM' local time, NULL when unknown
    end_time          text,
    agency            text,                          -- managing authority (관리기관명)
    reference_date    date,                          -- the dataset's 데이터기준일자
    sample            boolean NOT NULL DEFAULT false, -- shipped sample data, not real sites
    imported_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_key)
);

CREATE INDEX IF NOT EXISTS locations_band_lon ON locations (lat_band, longitude);
-- suggest: name prefixes (text_pattern_ops so LIKE 'q%' uses it whatever the collation)
CREATE INDEX IF NOT EXISTS locations_name_prefix ON locations (name text_pattern_ops);
