-- Custom SQL migration file, put your code below! --
-- R6.6, R10.4, R11.1: whether the installation is a drill, and every date claimed for a past event
-- stored beside its document's reference and the time it was entered.
CREATE TABLE `installation` (
	`id` integer PRIMARY KEY NOT NULL CHECK (`id` = 1),
	`mode` text NOT NULL CHECK (`mode` IN ('production', 'drill')),
	`created_at` text NOT NULL
);
--> statement-breakpoint
CREATE TRIGGER installation_no_update BEFORE UPDATE ON installation
BEGIN SELECT RAISE(ABORT, 'the installation mode is fixed when it is initialised'); END;
--> statement-breakpoint
CREATE TRIGGER installation_no_delete BEFORE DELETE ON installation
BEGIN SELECT RAISE(ABORT, 'the installation mode is fixed when it is initialised'); END;
--> statement-breakpoint
-- An installation already in use was production: only a new one can become a drill.
INSERT INTO installation (id, mode, created_at)
SELECT 1, 'production', strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
WHERE EXISTS (SELECT 1 FROM usage_log) OR EXISTS (SELECT 1 FROM log_archive) OR EXISTS (SELECT 1 FROM agency);
--> statement-breakpoint
CREATE TABLE `termination` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`link_id` integer NOT NULL,
	`notice_date` text NOT NULL,
	`letter_no` text NOT NULL,
	`effective_on` text NOT NULL,
	`recorded_at` text NOT NULL,
	`recorded_by` text NOT NULL,
	FOREIGN KEY (`link_id`) REFERENCES `link`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `termination_link_idx` ON `termination` (`link_id`);
--> statement-breakpoint
ALTER TABLE `finding` ADD `remediation_letter_no` text;
--> statement-breakpoint
ALTER TABLE `finding` ADD `remediation_recorded_at` text;
--> statement-breakpoint
ALTER TABLE `suspension` ADD `remediated_on` text;
--> statement-breakpoint
ALTER TABLE `suspension` ADD `remediation_letter_no` text;
--> statement-breakpoint
ALTER TABLE `suspension` ADD `remediation_recorded_at` text;
--> statement-breakpoint
ALTER TABLE `disposal` ADD `done_on` text;
--> statement-breakpoint
ALTER TABLE `disposal` ADD `letter_no` text;
--> statement-breakpoint
ALTER TABLE `inactivity` ADD `confirmation_letter_no` text;
--> statement-breakpoint
ALTER TABLE `inactivity` ADD `confirmation_recorded_at` text;
