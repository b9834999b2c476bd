-- What the last look at a platform image's signatures and attestations
-- found (the image report's supplyChain, as JSON), kept per repository
-- since signatures live beside the image. sbom_digest names the content
-- blob holding its SBOM ('' when none), from which its packages are
-- served; checked_at (Unix milliseconds) is when the registry was asked.
CREATE TABLE supply_chains (
    registry     TEXT NOT NULL,
    repository   TEXT NOT NULL,
    digest       TEXT NOT NULL,
    body         TEXT NOT NULL,
    sbom_digest  TEXT NOT NULL,
    checked_at   BIGINT NOT NULL,
    PRIMARY KEY (registry, repository, digest)
);
