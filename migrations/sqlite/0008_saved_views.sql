-- Named console views: a name and the console's URL query (filter, grouping, sort), per owner
-- (the principal that saved it: `user:alice`, `key:ci`). A shared view is listed to everyone;
-- only its owner may delete it.
CREATE TABLE saved_views (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    owner      TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    query      TEXT    NOT NULL,
    shared     INTEGER NOT NULL CHECK (shared IN (0, 1)),
    created_at TEXT    NOT NULL,
    UNIQUE (owner, name)
) STRICT;

CREATE INDEX saved_views_shared ON saved_views (shared) WHERE shared = 1;
