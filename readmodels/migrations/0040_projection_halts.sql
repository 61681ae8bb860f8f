-- A projector never skips an event on its own: an event it cannot apply stops that shard
-- (projection_halts, the current state, shown on /ops) until a release can apply it or an
-- operator decides to skip it (projection_skips: the decision, for every table version, so a
-- rebuild makes the same choice). A skip names the event id found at that position: if the
-- log ever holds another event there, the skip does not apply to it.
CREATE TABLE IF NOT EXISTS projection_skips (
    projection text NOT NULL,
    shard      integer NOT NULL,
    position   bigint NOT NULL,
    event_id   text NOT NULL,
    event_type text NOT NULL,
    reason     text NOT NULL,
    decided_by text NOT NULL,
    decided_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, shard, position)
);

CREATE TABLE IF NOT EXISTS projection_halts (
    projection text NOT NULL,
    suffix     text NOT NULL,
    shard      integer NOT NULL,
    position   bigint NOT NULL,
    event_id   text,
    event_type text,
    kind       text NOT NULL,
    error      text NOT NULL,
    since      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, suffix, shard)
);
