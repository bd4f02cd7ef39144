CREATE TABLE `anomaly` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`rule` text NOT NULL,
	`key` text NOT NULL,
	`link_id` integer,
	`agency` text,
	`ip` text,
	`summary` text NOT NULL,
	`evidence` text NOT NULL,
	`count` integer NOT NULL,
	`detail` text NOT NULL,
	`first_at` text NOT NULL,
	`last_at` text NOT NULL,
	`detected_at` text NOT NULL,
	`updated_at` text NOT NULL,
	`status` text NOT NULL,
	`finding_id` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `anomaly_key_unique` ON `anomaly` (`key`);--> statement-breakpoint
CREATE INDEX `anomaly_link_idx` ON `anomaly` (`link_id`);--> statement-breakpoint
CREATE INDEX `anomaly_detected_idx` ON `anomaly` (`detected_at`);--> statement-breakpoint
CREATE TABLE `anomaly_scan` (
	`id` integer PRIMARY KEY NOT NULL,
	`last_seq` integer NOT NULL,
	`scanned_at` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `log_archive` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`from_seq` integer NOT NULL,
	`to_seq` integer NOT NULL,
	`prev_hash` text NOT NULL,
	`last_hash` text NOT NULL,
	`records` integer NOT NULL,
	`file_name` text NOT NULL,
	`sha256` text NOT NULL,
	`manifest` text NOT NULL,
	`signature` text NOT NULL,
	`created_at` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `log_archive_to_seq_unique` ON `log_archive` (`to_seq`);--> statement-breakpoint
CREATE TABLE `log_checkpoint` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`seq` integer NOT NULL,
	`hash` text NOT NULL,
	`at` text NOT NULL,
	`key_fingerprint` text NOT NULL,
	`signature` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `log_checkpoint_seq_idx` ON `log_checkpoint` (`seq`);--> statement-breakpoint
-- R6.2: records may leave the usage log only once an archive anchor covers them (nia-link log
-- archive writes the anchor and deletes in one transaction). Anyone with write access to the file can
-- drop these guards; `nia-link log verify` is what detects a removal without a signed archive.
DROP TRIGGER usage_log_no_delete;
--> statement-breakpoint
CREATE TRIGGER usage_log_no_delete BEFORE DELETE ON usage_log
WHEN OLD.seq > (SELECT COALESCE(MAX(to_seq), 0) FROM log_archive)
BEGIN SELECT RAISE(ABORT, 'usage_log is append-only; archive records with nia-link log archive'); END;
--> statement-breakpoint
CREATE TRIGGER log_archive_contiguous BEFORE INSERT ON log_archive
WHEN NEW.from_seq != (SELECT COALESCE(MAX(to_seq), 0) + 1 FROM log_archive) OR NEW.to_seq < NEW.from_seq
BEGIN SELECT RAISE(ABORT, 'an archive must start right after the previous one'); END;
--> statement-breakpoint
CREATE TRIGGER log_archive_no_update BEFORE UPDATE ON log_archive
BEGIN SELECT RAISE(ABORT, 'log_archive is append-only'); END;
--> statement-breakpoint
CREATE TRIGGER log_archive_no_delete BEFORE DELETE ON log_archive
BEGIN SELECT RAISE(ABORT, 'log_archive is append-only'); END;
--> statement-breakpoint
CREATE TRIGGER log_checkpoint_no_update BEFORE UPDATE ON log_checkpoint
BEGIN SELECT RAISE(ABORT, 'log_checkpoint is append-only'); END;
--> statement-breakpoint
CREATE TRIGGER log_checkpoint_no_delete BEFORE DELETE ON log_checkpoint
BEGIN SELECT RAISE(ABORT, 'log_checkpoint is append-only'); END;
