-- Custom SQL migration file, put your code below! --
-- The usage log and link revisions are history: nothing edits or removes them in place.
-- (Anyone with write access to the file can drop these; `log verify` is what detects tampering.)
CREATE TRIGGER usage_log_no_update BEFORE UPDATE ON usage_log
BEGIN SELECT RAISE(ABORT, 'usage_log is append-only'); END;
--> statement-breakpoint
CREATE TRIGGER usage_log_no_delete BEFORE DELETE ON usage_log
BEGIN SELECT RAISE(ABORT, 'usage_log is append-only; archive records with nia-link log archive'); END;
--> statement-breakpoint
CREATE TRIGGER link_revision_no_update BEFORE UPDATE ON link_revision
BEGIN SELECT RAISE(ABORT, 'link revisions are immutable; file a change request'); END;
--> statement-breakpoint
CREATE TRIGGER link_revision_no_delete BEFORE DELETE ON link_revision
BEGIN SELECT RAISE(ABORT, 'link revisions are immutable'); END;
