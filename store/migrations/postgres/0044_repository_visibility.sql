-- Whether a repository is private (the registry refused an anonymous read
-- of what the service reads with credentials) or public, kept so that a
-- restart does not ask the registry again: '' for never checked, 'public'
-- or 'private'. visibility_checked_at is when the verdict was last reached
-- (Unix milliseconds). A repository whose visibility is known but whose
-- tags were never listed has listed_at 0.
ALTER TABLE repositories ADD COLUMN visibility TEXT NOT NULL DEFAULT '';
ALTER TABLE repositories ADD COLUMN visibility_checked_at BIGINT NOT NULL DEFAULT 0;
