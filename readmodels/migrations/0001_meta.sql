-- Bookkeeping of the read side: which version of each projection's tables readers see, and how
-- far every (projection, table version, shard) has read the log.

CREATE TABLE IF NOT EXISTS projections (
    name           text PRIMARY KEY,
    active_version integer NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS projection_versions (
    name         text NOT NULL,
    version      integer NOT NULL,
    code_version integer NOT NULL,
    state        text NOT NULL CHECK (state IN ('building', 'active', 'retired', 'dropped')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    activated_at timestamptz,
    PRIMARY KEY (name, version)
);

-- suffix: 'v<k>' for a table version, 's<hex>' for verify's scratch tables.
CREATE TABLE IF NOT EXISTS checkpoints (
    projection text NOT NULL,
    suffix     text NOT NULL,
    shard      integer NOT NULL,
    position   bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, suffix, shard)
);
