-- Custom SQL migration file, put your code below! --
-- R7.2: the agency's written explanation and improvement measures (說明及改善措施) answering a
-- finding, each kept as a document; a finding may be answered more than once (a supplement).
CREATE TABLE `finding_response` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`finding_id` integer NOT NULL,
	`document_id` integer NOT NULL,
	`note` text,
	`received_on` text NOT NULL,
	`recorded_at` text NOT NULL,
	`recorded_by` text NOT NULL,
	FOREIGN KEY (`finding_id`) REFERENCES `finding`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`document_id`) REFERENCES `document`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `finding_response_finding_idx` ON `finding_response` (`finding_id`);
--> statement-breakpoint
CREATE TRIGGER finding_response_no_update BEFORE UPDATE ON finding_response
BEGIN SELECT RAISE(ABORT, 'finding responses are records: file a further response instead'); END;
--> statement-breakpoint
CREATE TRIGGER finding_response_no_delete BEFORE DELETE ON finding_response
BEGIN SELECT RAISE(ABORT, 'finding responses are records'); END;
--> statement-breakpoint
-- R9.2: the contractors and sub-contractors an audit covered, and the evidence each gave.
CREATE TABLE `audit_vendor` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`audit_id` integer NOT NULL,
	`vendor_id` integer NOT NULL,
	`evidence` text,
	FOREIGN KEY (`audit_id`) REFERENCES `audit`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`vendor_id`) REFERENCES `vendor`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `audit_vendor_audit_vendor_idx` ON `audit_vendor` (`audit_id`, `vendor_id`);
--> statement-breakpoint
CREATE INDEX `audit_vendor_vendor_idx` ON `audit_vendor` (`vendor_id`);
