-- Every repository known to this service, for search: name is
-- lower(registry || '/' || repository), changed_at the last recorded change
-- of one of its tags. grams_done says whether its name's n-grams are in
-- repository_grams; rows made here by the migration get them at start-up
-- (Store.Open), since the n-grams are computed in Go.
CREATE TABLE known_repositories (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    registry    TEXT NOT NULL,
    repository  TEXT NOT NULL,
    name        TEXT NOT NULL,
    changed_at  BIGINT NOT NULL,
    grams_done  INTEGER NOT NULL,
    UNIQUE (registry, repository)
);
CREATE INDEX known_repositories_by_grams_done ON known_repositories (grams_done);
INSERT INTO known_repositories (registry, repository, name, changed_at, grams_done)
    SELECT registry, repository, LOWER(registry || '/' || repository), MAX(at), 0
    FROM tag_changes GROUP BY registry, repository;

-- The trigram index of repository names: one row per distinct three-character
-- piece of a name (padded with a space at each end, so two-character terms
-- and the ends of names are found too). A search looks up the pieces of its
-- term and checks the candidates' names; it never reads every repository.
CREATE TABLE repository_grams (
    gram          TEXT NOT NULL,
    repository_id BIGINT NOT NULL REFERENCES known_repositories (id) ON DELETE CASCADE,
    PRIMARY KEY (gram, repository_id)
);
