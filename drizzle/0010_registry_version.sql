-- Custom SQL migration file, put your code below! --
-- A counter that moves whenever a link or an agency row changes, by any connection or process. A
-- channel may keep what it read of the registry (who a client certificate may query for) only while
-- the counter stands still: one indexed read per request instead of the link, revision and agency.
CREATE TABLE `registry_version` (`id` integer PRIMARY KEY CHECK (`id` = 1), `version` integer NOT NULL);
--> statement-breakpoint
INSERT INTO `registry_version` (`id`, `version`) VALUES (1, 0);
--> statement-breakpoint
CREATE TRIGGER link_insert_version AFTER INSERT ON link BEGIN UPDATE registry_version SET version = version + 1 WHERE id = 1; END;
--> statement-breakpoint
CREATE TRIGGER link_update_version AFTER UPDATE ON link BEGIN UPDATE registry_version SET version = version + 1 WHERE id = 1; END;
--> statement-breakpoint
CREATE TRIGGER link_delete_version AFTER DELETE ON link BEGIN UPDATE registry_version SET version = version + 1 WHERE id = 1; END;
--> statement-breakpoint
CREATE TRIGGER agency_insert_version AFTER INSERT ON agency BEGIN UPDATE registry_version SET version = version + 1 WHERE id = 1; END;
--> statement-breakpoint
CREATE TRIGGER agency_update_version AFTER UPDATE ON agency BEGIN UPDATE registry_version SET version = version + 1 WHERE id = 1; END;
--> statement-breakpoint
CREATE TRIGGER agency_delete_version AFTER DELETE ON agency BEGIN UPDATE registry_version SET version = version + 1 WHERE id = 1; END;
