-- Custom SQL migration file, put your code below! --
-- R8.2: a removed vendor's machines are cut off at once, before NIA decides the `ips` change its
-- removal files. Every channel reads the allow-list through the registry, which subtracts them; a
-- vendor row that changes must therefore move the registry version as a link row does (migration 0010),
-- so that the SFTP gate and the online query drop what they kept of the old allow-list.
CREATE TRIGGER vendor_insert_version AFTER INSERT ON vendor BEGIN UPDATE registry_version SET version = version + 1 WHERE id = 1; END;
--> statement-breakpoint
CREATE TRIGGER vendor_update_version AFTER UPDATE ON vendor BEGIN UPDATE registry_version SET version = version + 1 WHERE id = 1; END;
--> statement-breakpoint
CREATE TRIGGER vendor_delete_version AFTER DELETE ON vendor BEGIN UPDATE registry_version SET version = version + 1 WHERE id = 1; END;
