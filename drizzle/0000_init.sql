CREATE TABLE `agency` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`code` text NOT NULL,
	`name_zh` text NOT NULL,
	`name_en` text,
	`government` integer NOT NULL,
	`sponsor_id` integer,
	`created_at` text NOT NULL,
	FOREIGN KEY (`sponsor_id`) REFERENCES `agency`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `agency_code_unique` ON `agency` (`code`);--> statement-breakpoint
CREATE TABLE `change_request` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`link_id` integer NOT NULL,
	`kind` text NOT NULL,
	`change` text NOT NULL,
	`status` text NOT NULL,
	`filed_at` text NOT NULL,
	`filed_by` text,
	`decided_at` text,
	`decided_by` text,
	`reason` text,
	`revision` integer,
	FOREIGN KEY (`link_id`) REFERENCES `link`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `change_request_link_idx` ON `change_request` (`link_id`);--> statement-breakpoint
CREATE TABLE `document` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`agency_id` integer NOT NULL,
	`link_id` integer,
	`kind` text NOT NULL,
	`version` integer NOT NULL,
	`filename` text NOT NULL,
	`media_type` text NOT NULL,
	`size` integer NOT NULL,
	`sha256` text NOT NULL,
	`content` blob NOT NULL,
	`created_at` text NOT NULL,
	FOREIGN KEY (`agency_id`) REFERENCES `agency`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`link_id`) REFERENCES `link`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `link` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`agency_id` integer NOT NULL,
	`status` text NOT NULL,
	`current_revision` integer NOT NULL,
	`applied_at` text NOT NULL,
	`approved_at` text,
	`approved_by` text,
	`letter_no` text,
	`letter_date` text,
	`status_changed_at` text NOT NULL,
	`status_reason` text,
	`end_reason` text,
	`ends_on` text,
	`hmac_secret` text NOT NULL,
	FOREIGN KEY (`agency_id`) REFERENCES `agency`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `link_status_idx` ON `link` (`status`);--> statement-breakpoint
CREATE TABLE `link_revision` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`link_id` integer NOT NULL,
	`number` integer NOT NULL,
	`content` text NOT NULL,
	`change_request_id` integer,
	`created_at` text NOT NULL,
	FOREIGN KEY (`link_id`) REFERENCES `link`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `link_revision_number_idx` ON `link_revision` (`link_id`,`number`);--> statement-breakpoint
CREATE TABLE `pgp_key` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`agency_id` integer NOT NULL,
	`fingerprint` text NOT NULL,
	`algorithm` text NOT NULL,
	`user_ids` text NOT NULL,
	`created_at` text NOT NULL,
	`expires_at` text,
	`armored` text NOT NULL,
	`added_at` text NOT NULL,
	FOREIGN KEY (`agency_id`) REFERENCES `agency`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `pgp_key_agency_fpr_idx` ON `pgp_key` (`agency_id`,`fingerprint`);--> statement-breakpoint
CREATE TABLE `sftp_account` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`username` text NOT NULL,
	`link_id` integer NOT NULL,
	`enabled` integer NOT NULL,
	`password_hash` text,
	`created_at` text NOT NULL,
	FOREIGN KEY (`link_id`) REFERENCES `link`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `sftp_account_username_unique` ON `sftp_account` (`username`);--> statement-breakpoint
CREATE TABLE `ssh_key` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`account_id` integer NOT NULL,
	`algorithm` text NOT NULL,
	`fingerprint` text NOT NULL,
	`public_key` text NOT NULL,
	`added_at` text NOT NULL,
	`revoked_at` text,
	FOREIGN KEY (`account_id`) REFERENCES `sftp_account`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `ssh_key_account_idx` ON `ssh_key` (`account_id`);--> statement-breakpoint
CREATE TABLE `usage_log` (
	`seq` integer PRIMARY KEY NOT NULL,
	`at` text NOT NULL,
	`type` text NOT NULL,
	`agency` text,
	`link_id` integer,
	`revision` integer,
	`actor` text,
	`ip` text,
	`channel` text,
	`object` text,
	`detail` text DEFAULT '{}' NOT NULL,
	`digest` text NOT NULL,
	`prev_hash` text NOT NULL,
	`hash` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `usage_log_link_idx` ON `usage_log` (`link_id`,`seq`);--> statement-breakpoint
CREATE INDEX `usage_log_type_idx` ON `usage_log` (`type`,`seq`);--> statement-breakpoint
CREATE INDEX `usage_log_at_idx` ON `usage_log` (`at`);