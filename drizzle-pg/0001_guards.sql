-- Custom SQL migration file, put your code below! --
-- The protective triggers of the SQLite control database (drizzle/0001, 0006, 0009, 0010, 0012,
-- 0014, 0015, as they stand after 0011), one PostgreSQL trigger per SQLite trigger, with the same
-- name on the same table and the same rule:
--   * SQLite `BEFORE UPDATE|DELETE … BEGIN SELECT RAISE(ABORT, msg); END` → a BEFORE … FOR EACH ROW
--     trigger calling nia_refuse(msg), which raises msg (SQLSTATE 23001, restrict_violation) and so
--     aborts the statement and, unless the caller catches it, the transaction;
--   * a SQLite `WHEN cond` clause → the same condition, tested inside a plpgsql function
--     (usage_log_no_delete: a record may leave only once an archive anchor covers its seq;
--     log_archive_contiguous: an archive starts right after the previous one);
--   * SQLite's AFTER INSERT|UPDATE|DELETE counters on link, agency and vendor (0010, 0014) → AFTER
--     … FOR EACH ROW triggers calling nia_registry_bump(), which moves registry_version by one per
--     row, as SQLite's row triggers do.
-- PostgreSQL also has TRUNCATE, which fires no row trigger: every table SQLite guards against DELETE
-- outright also gets a `<table>_no_truncate` statement trigger (SQLite has no TRUNCATE to guard).
-- Like SQLite's, these guards stop the application and careless hands, not a superuser, who can drop
-- them: `nia-link log verify` is what detects tampering. The data rewrites of SQLite migrations 0011,
-- 0012 and 0013 have no counterpart: a PostgreSQL control database starts from the current schema.
CREATE FUNCTION nia_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'restrict_violation';
END;
$$;
--> statement-breakpoint
CREATE FUNCTION nia_usage_log_delete_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.seq > (SELECT COALESCE(MAX(to_seq), 0) FROM log_archive) THEN
    RAISE EXCEPTION 'usage_log is append-only; archive records with nia-link log archive' USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN OLD;
END;
$$;
--> statement-breakpoint
CREATE FUNCTION nia_log_archive_contiguous() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.from_seq IS DISTINCT FROM (SELECT COALESCE(MAX(to_seq), 0) + 1 FROM log_archive) OR NEW.to_seq < NEW.from_seq THEN
    RAISE EXCEPTION 'an archive must start right after the previous one' USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END;
$$;
--> statement-breakpoint
CREATE FUNCTION nia_registry_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE registry_version SET version = version + 1 WHERE id = 1;
  RETURN NULL;
END;
$$;
--> statement-breakpoint
-- drizzle/0001 + 0006: the usage log is append-only; records leave it only once archived.
CREATE TRIGGER usage_log_no_update BEFORE UPDATE ON usage_log
FOR EACH ROW EXECUTE FUNCTION nia_refuse('usage_log is append-only');
--> statement-breakpoint
CREATE TRIGGER usage_log_no_delete BEFORE DELETE ON usage_log
FOR EACH ROW EXECUTE FUNCTION nia_usage_log_delete_guard();
--> statement-breakpoint
CREATE TRIGGER usage_log_no_truncate BEFORE TRUNCATE ON usage_log
FOR EACH STATEMENT EXECUTE FUNCTION nia_refuse('usage_log is append-only; archive records with nia-link log archive');
--> statement-breakpoint
-- drizzle/0001 (re-created unchanged by 0011): link revisions are immutable.
CREATE TRIGGER link_revision_no_update BEFORE UPDATE ON link_revision
FOR EACH ROW EXECUTE FUNCTION nia_refuse('link revisions are immutable; file a change request');
--> statement-breakpoint
CREATE TRIGGER link_revision_no_delete BEFORE DELETE ON link_revision
FOR EACH ROW EXECUTE FUNCTION nia_refuse('link revisions are immutable');
--> statement-breakpoint
CREATE TRIGGER link_revision_no_truncate BEFORE TRUNCATE ON link_revision
FOR EACH STATEMENT EXECUTE FUNCTION nia_refuse('link revisions are immutable');
--> statement-breakpoint
-- drizzle/0006: archive anchors and checkpoints are append-only; archives are contiguous.
CREATE TRIGGER log_archive_contiguous BEFORE INSERT ON log_archive
FOR EACH ROW EXECUTE FUNCTION nia_log_archive_contiguous();
--> statement-breakpoint
CREATE TRIGGER log_archive_no_update BEFORE UPDATE ON log_archive
FOR EACH ROW EXECUTE FUNCTION nia_refuse('log_archive is append-only');
--> statement-breakpoint
CREATE TRIGGER log_archive_no_delete BEFORE DELETE ON log_archive
FOR EACH ROW EXECUTE FUNCTION nia_refuse('log_archive is append-only');
--> statement-breakpoint
CREATE TRIGGER log_archive_no_truncate BEFORE TRUNCATE ON log_archive
FOR EACH STATEMENT EXECUTE FUNCTION nia_refuse('log_archive is append-only');
--> statement-breakpoint
CREATE TRIGGER log_checkpoint_no_update BEFORE UPDATE ON log_checkpoint
FOR EACH ROW EXECUTE FUNCTION nia_refuse('log_checkpoint is append-only');
--> statement-breakpoint
CREATE TRIGGER log_checkpoint_no_delete BEFORE DELETE ON log_checkpoint
FOR EACH ROW EXECUTE FUNCTION nia_refuse('log_checkpoint is append-only');
--> statement-breakpoint
CREATE TRIGGER log_checkpoint_no_truncate BEFORE TRUNCATE ON log_checkpoint
FOR EACH STATEMENT EXECUTE FUNCTION nia_refuse('log_checkpoint is append-only');
--> statement-breakpoint
-- drizzle/0009: a rules review is a record.
CREATE TRIGGER rules_review_no_update BEFORE UPDATE ON rules_review
FOR EACH ROW EXECUTE FUNCTION nia_refuse('rules reviews are records: review again instead');
--> statement-breakpoint
CREATE TRIGGER rules_review_no_delete BEFORE DELETE ON rules_review
FOR EACH ROW EXECUTE FUNCTION nia_refuse('rules reviews are records: review again instead');
--> statement-breakpoint
CREATE TRIGGER rules_review_no_truncate BEFORE TRUNCATE ON rules_review
FOR EACH STATEMENT EXECUTE FUNCTION nia_refuse('rules reviews are records: review again instead');
--> statement-breakpoint
-- drizzle/0010 + 0014: the registry version moves whenever a link, agency or vendor row changes.
INSERT INTO registry_version (id, version) VALUES (1, 0);
--> statement-breakpoint
CREATE TRIGGER link_insert_version AFTER INSERT ON link FOR EACH ROW EXECUTE FUNCTION nia_registry_bump();
--> statement-breakpoint
CREATE TRIGGER link_update_version AFTER UPDATE ON link FOR EACH ROW EXECUTE FUNCTION nia_registry_bump();
--> statement-breakpoint
CREATE TRIGGER link_delete_version AFTER DELETE ON link FOR EACH ROW EXECUTE FUNCTION nia_registry_bump();
--> statement-breakpoint
CREATE TRIGGER agency_insert_version AFTER INSERT ON agency FOR EACH ROW EXECUTE FUNCTION nia_registry_bump();
--> statement-breakpoint
CREATE TRIGGER agency_update_version AFTER UPDATE ON agency FOR EACH ROW EXECUTE FUNCTION nia_registry_bump();
--> statement-breakpoint
CREATE TRIGGER agency_delete_version AFTER DELETE ON agency FOR EACH ROW EXECUTE FUNCTION nia_registry_bump();
--> statement-breakpoint
CREATE TRIGGER vendor_insert_version AFTER INSERT ON vendor FOR EACH ROW EXECUTE FUNCTION nia_registry_bump();
--> statement-breakpoint
CREATE TRIGGER vendor_update_version AFTER UPDATE ON vendor FOR EACH ROW EXECUTE FUNCTION nia_registry_bump();
--> statement-breakpoint
CREATE TRIGGER vendor_delete_version AFTER DELETE ON vendor FOR EACH ROW EXECUTE FUNCTION nia_registry_bump();
--> statement-breakpoint
-- drizzle/0012: the installation mode is fixed when it is initialised.
CREATE TRIGGER installation_no_update BEFORE UPDATE ON installation
FOR EACH ROW EXECUTE FUNCTION nia_refuse('the installation mode is fixed when it is initialised');
--> statement-breakpoint
CREATE TRIGGER installation_no_delete BEFORE DELETE ON installation
FOR EACH ROW EXECUTE FUNCTION nia_refuse('the installation mode is fixed when it is initialised');
--> statement-breakpoint
CREATE TRIGGER installation_no_truncate BEFORE TRUNCATE ON installation
FOR EACH STATEMENT EXECUTE FUNCTION nia_refuse('the installation mode is fixed when it is initialised');
--> statement-breakpoint
-- drizzle/0015: a finding response is a record.
CREATE TRIGGER finding_response_no_update BEFORE UPDATE ON finding_response
FOR EACH ROW EXECUTE FUNCTION nia_refuse('finding responses are records: file a further response instead');
--> statement-breakpoint
CREATE TRIGGER finding_response_no_delete BEFORE DELETE ON finding_response
FOR EACH ROW EXECUTE FUNCTION nia_refuse('finding responses are records');
--> statement-breakpoint
CREATE TRIGGER finding_response_no_truncate BEFORE TRUNCATE ON finding_response
FOR EACH STATEMENT EXECUTE FUNCTION nia_refuse('finding responses are records');
