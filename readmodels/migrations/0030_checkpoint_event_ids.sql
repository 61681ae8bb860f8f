-- A projector checkpoint is (position, event id): the id of the event at that position when it
-- was applied. If the log later holds another event there (Redis lost its tail and reused
-- positions) or its head falls below the position, the projector stops instead of silently
-- reading on (projections/checkpoint_check.py). NULL: written by an older release, unchecked.
ALTER TABLE checkpoints ADD COLUMN IF NOT EXISTS event_id text;

-- Projectors stopped on such a mismatch, shown on /ops until a rebuild recovers them.
CREATE TABLE IF NOT EXISTS checkpoint_mismatches (
    projection text NOT NULL,
    shard      integer NOT NULL,
    position   bigint NOT NULL,
    detail     text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, shard)
);
