-- What a registry's web API says of a repository beyond the registry
-- protocol (today Docker Hub's, for docker.io): the description, counts and
-- last push that the image report's repositoryInfo and the /v1 answer show.
-- last_updated is Unix milliseconds, 0 when the API gave none; fetched_at is
-- when the API was last asked, so a read knows when to ask again.
CREATE TABLE repository_info (
    registry      TEXT NOT NULL,
    repository    TEXT NOT NULL,
    source        TEXT NOT NULL,
    description   TEXT NOT NULL,
    pull_count    BIGINT NOT NULL,
    star_count    BIGINT NOT NULL,
    last_updated  BIGINT NOT NULL,
    fetched_at    BIGINT NOT NULL,
    PRIMARY KEY (registry, repository)
);
