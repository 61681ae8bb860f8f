-- The archive tier of the log (ARCHITECTURE §7): every event of every shard, envelope unchanged.
--
-- event_log is partitioned by shard (LIST), each shard by position range (RANGE, created on
-- demand by the archiver, see eventstore.archive.PARTITION_SIZE). One row = one shard-log entry:
-- the nine envelope fields typed, plus its position. data and metadata keep the exact JSON text
-- of the log (not jsonb, which would reorder keys), so a merged read returns what Redis held.
CREATE TABLE IF NOT EXISTS event_log (
    shard          integer NOT NULL,
    position       bigint NOT NULL,
    event_id       uuid NOT NULL,
    aggregate_id   text NOT NULL,
    aggregate_type text NOT NULL,
    version        bigint NOT NULL,
    type           text NOT NULL,
    schema_version text NOT NULL,  -- "1", "2", ...; "b64" for eventsourcing's binary states
    data           text NOT NULL,
    metadata       text NOT NULL,
    ts             double precision NOT NULL,
    PRIMARY KEY (shard, position)
) PARTITION BY LIST (shard);

-- The aggregate index: (aggregate id, version) -> (shard, position) of every archived event.
CREATE INDEX IF NOT EXISTS event_log_aggregate ON event_log (aggregate_id, version);

-- How far each shard is archived: written in the same transaction as the rows it covers.
CREATE TABLE IF NOT EXISTS event_log_archived (
    shard      integer PRIMARY KEY,
    position   bigint NOT NULL DEFAULT 0,
    event_id   uuid,
    -- idempotency records of events up to here were dropped from {tag}:eids (see trim.py)
    ids_forgotten bigint NOT NULL DEFAULT 0,
    -- aggregate streams were trimmed for events up to here (the floor may be ahead after a crash)
    streams_trimmed bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
