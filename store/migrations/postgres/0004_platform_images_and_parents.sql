-- The platform images of every known image, with the ChainID of each one's
-- whole layer list: what the in-memory parent index is rebuilt from at
-- start-up, and how "is this still a prefix of that" is answered by equality.
CREATE TABLE platform_images (
    registry        TEXT NOT NULL,
    repository      TEXT NOT NULL,
    digest          TEXT NOT NULL,  -- the top-level image (index or manifest)
    platform_digest TEXT NOT NULL,
    platform        TEXT NOT NULL,
    chain_id        TEXT NOT NULL,
    layer_count     INTEGER NOT NULL,
    first_seen_at   BIGINT NOT NULL,
    PRIMARY KEY (registry, repository, digest, platform_digest)
);
CREATE INDEX platform_images_by_platform_digest ON platform_images (registry, repository, platform_digest);

-- The parent found for each child platform image, so that when a parent's
-- tag moves the children it leaves behind can be found without a scan.
CREATE TABLE parents (
    registry               TEXT NOT NULL,
    repository             TEXT NOT NULL,
    digest                 TEXT NOT NULL,
    platform_digest        TEXT NOT NULL,
    platform               TEXT NOT NULL,
    parent_registry        TEXT NOT NULL,
    parent_repository      TEXT NOT NULL,
    parent_platform_digest TEXT NOT NULL,
    method                 TEXT NOT NULL,
    recorded_at            BIGINT NOT NULL,
    PRIMARY KEY (registry, repository, digest, platform_digest)
);
CREATE INDEX parents_by_parent ON parents (parent_registry, parent_repository, parent_platform_digest);

-- When each repository's tag list was last read from its registry.
CREATE TABLE repositories (
    registry    TEXT NOT NULL,
    repository  TEXT NOT NULL,
    listed_at   BIGINT NOT NULL,
    PRIMARY KEY (registry, repository)
);
