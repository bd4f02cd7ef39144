CREATE TABLE `audit` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`agency_id` integer NOT NULL,
	`link_id` integer,
	`kind` text NOT NULL,
	`auditor` text NOT NULL,
	`date` text NOT NULL,
	`summary` text NOT NULL,
	`period_from` text,
	`period_to` text,
	`document_id` integer,
	`created_at` text NOT NULL,
	FOREIGN KEY (`agency_id`) REFERENCES `agency`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`link_id`) REFERENCES `link`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `disposal` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`link_id` integer NOT NULL,
	`opened_on` text NOT NULL,
	`required` text NOT NULL,
	`confirmed_at` text,
	`confirmed_by` text,
	`how` text,
	FOREIGN KEY (`link_id`) REFERENCES `link`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `disposal_link_id_unique` ON `disposal` (`link_id`);--> statement-breakpoint
CREATE TABLE `finding` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`link_id` integer NOT NULL,
	`audit_id` integer,
	`anomaly_id` integer,
	`text` text NOT NULL,
	`deadline` text NOT NULL,
	`evidence` text NOT NULL,
	`remediated_on` text,
	`remediation_note` text,
	`created_at` text NOT NULL,
	FOREIGN KEY (`link_id`) REFERENCES `link`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`audit_id`) REFERENCES `audit`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `finding_link_idx` ON `finding` (`link_id`);--> statement-breakpoint
CREATE TABLE `inactivity` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`link_id` integer NOT NULL,
	`flagged_on` text NOT NULL,
	`last_use` text NOT NULL,
	`notice_on` text,
	`confirmed_on` text,
	FOREIGN KEY (`link_id`) REFERENCES `link`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `inactivity_link_id_unique` ON `inactivity` (`link_id`);--> statement-breakpoint
CREATE TABLE `necessity_review` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`link_id` integer NOT NULL,
	`date` text NOT NULL,
	`outcome` text NOT NULL,
	`note` text,
	`created_at` text NOT NULL,
	FOREIGN KEY (`link_id`) REFERENCES `link`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `notice` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`agency_id` integer NOT NULL,
	`link_id` integer,
	`kind` text NOT NULL,
	`text_zh` text NOT NULL,
	`text_en` text NOT NULL,
	`recipients` text NOT NULL,
	`created_at` text NOT NULL,
	FOREIGN KEY (`agency_id`) REFERENCES `agency`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`link_id`) REFERENCES `link`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `suspension` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`link_id` integer NOT NULL,
	`started_on` text NOT NULL,
	`reason` text NOT NULL,
	`finding_id` integer,
	`resume_requested_on` text,
	`ended_on` text,
	`outcome` text,
	FOREIGN KEY (`link_id`) REFERENCES `link`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `suspension_link_idx` ON `suspension` (`link_id`);