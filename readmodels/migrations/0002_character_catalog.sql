-- The 13 collectible characters (DOMAIN.md). Seeded, not projected: it is reference data.
CREATE TABLE IF NOT EXISTS character_catalog (
    code        text PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    type        text NOT NULL,
    dialog      text NOT NULL,
    match_label text,
    is_default  boolean NOT NULL DEFAULT false,
    sort_order  integer NOT NULL DEFAULT 0
);
