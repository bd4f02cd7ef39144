-- Custom SQL migration file, put your code below! --
-- R2.2: files an agency uploads to /inbox (batch requests, subject lists). A row exists only once every
-- byte was received and fsynced; the bytes stay in a private spool file until the processor answers.
CREATE TABLE `inbox_upload` (
  `id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
  `link_id` integer NOT NULL REFERENCES `link`(`id`),
  `account` text NOT NULL,
  `ip` text NOT NULL,
  `name` text NOT NULL,
  `kind` text NOT NULL,
  `bytes` integer NOT NULL,
  `sha256` text NOT NULL,
  `spool` text NOT NULL,
  `received_at` text NOT NULL,
  `state` text DEFAULT 'pending' NOT NULL,
  `outcome_code` text,
  `outcome_at` text,
  `outcome` text
);
--> statement-breakpoint
-- A name is taken only while its upload waits for an answer: once answered or refused it may be sent again.
CREATE UNIQUE INDEX `inbox_upload_pending_name` ON `inbox_upload` (`link_id`, `name`) WHERE `state` IN ('pending', 'processing');
--> statement-breakpoint
CREATE INDEX `inbox_upload_link_idx` ON `inbox_upload` (`link_id`, `id`);
--> statement-breakpoint
CREATE INDEX `inbox_upload_state_idx` ON `inbox_upload` (`state`, `received_at`);
