-- Custom SQL migration file, put your code below! --
-- R14.2: an agency's contact addresses, where notices about its links (and, for a sponsoring
-- authority, about the bodies it sponsors) are sent.
ALTER TABLE `agency` ADD `emails` text DEFAULT '[]' NOT NULL;
--> statement-breakpoint
-- R-F9: NIA's formal reply letter approving a change request.
ALTER TABLE `change_request` ADD `letter_no` text;
--> statement-breakpoint
ALTER TABLE `change_request` ADD `letter_date` text;
--> statement-breakpoint
-- R5.2: the management-rules version a change request was filed with.
ALTER TABLE `change_request` ADD `rules_document` integer REFERENCES `document`(`id`);
--> statement-breakpoint
-- Requests filed before this column existed get what R5.2 says they came with: the rules filed with a
-- rules change, otherwise the agency's newest version on record when the request was filed.
UPDATE `change_request` SET `rules_document` = CASE
  WHEN `kind` = 'rules' THEN json_extract(`change`, '$.rulesDocument')
  ELSE (
    SELECT d.`id` FROM `document` d JOIN `link` l ON l.`agency_id` = d.`agency_id`
    WHERE l.`id` = `change_request`.`link_id` AND d.`kind` = 'management-rules' AND d.`created_at` <= `change_request`.`filed_at`
    ORDER BY d.`version` DESC LIMIT 1
  )
END;
