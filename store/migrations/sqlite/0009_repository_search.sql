-- Every repository known to this service, for search: name is
-- lower(registry || '/' || repository), last_part the lower-case last part
-- of the repository's path, changed_at the last recorded change of one of
-- its tags. grams_done says whether its name is indexed (last_part and
-- repository_grams); rows made here by the migration are indexed at
-- start-up (Store.Open), since the pieces are computed in Go.
CREATE TABLE known_repositories (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    registry    TEXT NOT NULL,
    repository  TEXT NOT NULL,
    name        TEXT NOT NULL,
    last_part   TEXT NOT NULL,
    changed_at  BIGINT NOT NULL,
    grams_done  INTEGER NOT NULL,
    UNIQUE (registry, repository)
);
CREATE INDEX known_repositories_by_last_part ON known_repositories (last_part, name);
CREATE INDEX known_repositories_by_grams_done ON known_repositories (grams_done);
INSERT INTO known_repositories (registry, repository, name, last_part, changed_at, grams_done)
    SELECT registry, repository, LOWER(registry || '/' || repository), '', MAX(at), 0
    FROM tag_changes GROUP BY registry, repository;

-- The n-gram index of repository names: one row per distinct two- and
-- three-character piece of a name (padded with a space at each end), and
-- how many names hold each piece. A search reads the rows of its term's
-- rarest piece, newest first, checks those names against the term and
-- stops at the page's end; it never reads every repository.
CREATE TABLE repository_grams (
    gram          TEXT NOT NULL,
    repository_id BIGINT NOT NULL REFERENCES known_repositories (id) ON DELETE CASCADE,
    PRIMARY KEY (gram, repository_id)
);
CREATE TABLE gram_counts (
    gram TEXT PRIMARY KEY,
    n    BIGINT NOT NULL
);
