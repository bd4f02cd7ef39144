-- Custom SQL migration file, put your code below! --
-- R3.4/R3.5: every revision states the records it may receive (a scope) and a daily cap of
-- identifiers looked up. Revisions recorded before scopes existed are given the whole dataset with
-- that justification (listed as needing a scope review) and the default cap. This is the one place
-- a revision is rewritten: the guard is lifted for this statement only, inside the migration's
-- transaction, and put back as it was.
DROP TRIGGER link_revision_no_update;
--> statement-breakpoint
UPDATE link_revision SET content = json_set(content,
  '$.scope', json('{"all":true,"justification":"recorded before scopes existed"}'),
  '$.maxIdsPerDay', 1000)
WHERE json_extract(content, '$.scope') IS NULL;
--> statement-breakpoint
CREATE TRIGGER link_revision_no_update BEFORE UPDATE ON link_revision
BEGIN SELECT RAISE(ABORT, 'link revisions are immutable; file a change request'); END;
