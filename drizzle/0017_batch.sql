-- Custom SQL migration file, put your code below! --
-- R3.4: the subject list in force per link (only the current one is kept) and its persons.
CREATE TABLE `subject_list` (
  `link_id` integer PRIMARY KEY NOT NULL REFERENCES `link`(`id`),
  `upload_id` integer NOT NULL,
  `key_field` text NOT NULL,
  `count` integer NOT NULL,
  `sha256` text NOT NULL,
  `in_force_at` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `subject_entry` (
  `link_id` integer NOT NULL REFERENCES `link`(`id`),
  `id` text NOT NULL,
  `added_at` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `subject_entry_pk` ON `subject_entry` (`link_id`, `id`);
