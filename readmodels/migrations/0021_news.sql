-- Articles shown on the info screen: collected from RSS/Atom feeds or imported from files.
-- Reference data written by the collector/importer, not a projection.
CREATE TABLE IF NOT EXISTS news_articles (
    id            text PRIMARY KEY,                  -- stable: derived from the article URL
    title         text NOT NULL,
    url           text NOT NULL UNIQUE,
    snippet       text NOT NULL DEFAULT '',
    source        text NOT NULL,                     -- feed key, e.g. 'me_press'
    source_name   text NOT NULL,                     -- shown to users, e.g. '환경부'
    category      text NOT NULL,
    published_at  timestamptz NOT NULL,
    thumbnail_url text,
    sample        boolean NOT NULL DEFAULT false,    -- shipped sample, not a real article
    collected_at  timestamptz NOT NULL DEFAULT now()
);

-- The feed's order and its cursor: newest first, id breaks ties.
CREATE INDEX IF NOT EXISTS news_articles_feed ON news_articles (published_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS news_articles_category_feed
    ON news_articles (category, published_at DESC, id DESC);
