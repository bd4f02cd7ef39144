CREATE TABLE `delivery` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`link_id` integer NOT NULL,
	`revision` integer NOT NULL,
	`idempotency_key` text NOT NULL,
	`trigger` text NOT NULL,
	`mode` text NOT NULL,
	`status` text NOT NULL,
	`dataset` text NOT NULL,
	`fields` text NOT NULL,
	`rows` integer,
	`file_name` text,
	`bytes` integer,
	`plain_sha256` text,
	`cipher_sha256` text,
	`manifest_sha256` text,
	`watermark_from` text,
	`watermark_to` text,
	`created_at` text NOT NULL,
	`built_at` text,
	`duration_ms` integer,
	`expires_at` text,
	`purged_at` text,
	`error` text,
	`channels` text NOT NULL,
	FOREIGN KEY (`link_id`) REFERENCES `link`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `delivery_idempotency_key_unique` ON `delivery` (`idempotency_key`);--> statement-breakpoint
CREATE INDEX `delivery_link_idx` ON `delivery` (`link_id`,`id`);--> statement-breakpoint
CREATE INDEX `delivery_status_idx` ON `delivery` (`status`);