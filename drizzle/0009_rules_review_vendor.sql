CREATE TABLE `rules_review` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`document_id` integer NOT NULL,
	`covers` text NOT NULL,
	`note` text,
	`reviewed_by` text NOT NULL,
	`reviewed_at` text NOT NULL,
	FOREIGN KEY (`document_id`) REFERENCES `document`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `rules_review_document_idx` ON `rules_review` (`document_id`,`id`);--> statement-breakpoint
CREATE TABLE `vendor` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`link_id` integer NOT NULL,
	`parent_id` integer,
	`name` text NOT NULL,
	`contact` text NOT NULL,
	`machines` text NOT NULL,
	`added_at` text NOT NULL,
	`added_by` text NOT NULL,
	`removed_at` text,
	`removed_by` text,
	`removal_change_id` integer,
	FOREIGN KEY (`link_id`) REFERENCES `link`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`parent_id`) REFERENCES `vendor`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`removal_change_id`) REFERENCES `change_request`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `vendor_link_idx` ON `vendor` (`link_id`);--> statement-breakpoint
-- A review is a record of what a reviewer found; a later review supersedes it, nothing edits it.
CREATE TRIGGER rules_review_no_update BEFORE UPDATE ON rules_review
BEGIN SELECT RAISE(ABORT, 'rules reviews are records: review again instead'); END;
--> statement-breakpoint
CREATE TRIGGER rules_review_no_delete BEFORE DELETE ON rules_review
BEGIN SELECT RAISE(ABORT, 'rules reviews are records: review again instead'); END;
