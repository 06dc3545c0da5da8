-- Named console views: a name and the console's URL query (filter, grouping, sort), per owner
-- (the principal that saved it: `user:alice`, `key:ci`). A shared view is listed to everyone;
-- only its owner may delete it.
CREATE TABLE saved_views (
    id         BIGSERIAL   PRIMARY KEY,
    owner      TEXT        NOT NULL,
    name       TEXT        NOT NULL,
    query      TEXT        NOT NULL,
    shared     BOOLEAN     NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (owner, name)
);

CREATE INDEX saved_views_shared ON saved_views (shared) WHERE shared;
