-- Custom SQL migration file, put your code below! --
-- The job attempt that owns a building delivery: only it may publish the file and record extract.built.
ALTER TABLE `delivery` ADD `attempt` text;
