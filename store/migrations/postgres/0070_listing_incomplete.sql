-- Why the last listing of a repository's tags was not complete: '' when it
-- was, else the reason (the registry's pagination was ended early, or the
-- listing held more tags than the service records). A listing that is not
-- complete infers no deletions and says so in the tags answer.
ALTER TABLE repositories ADD COLUMN listing_incomplete TEXT NOT NULL DEFAULT '';
