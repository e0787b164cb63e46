-- The conditions tables of release 0.1 (commit e9a0c23) on MariaDB, as its metadata.create_all made them
-- (SHOW CREATE TABLE); test fixture of tests/integration/test_migrations.py.

CREATE TABLE `cond_tags` (
  `tag_id` int(11) NOT NULL AUTO_INCREMENT,
  `name` varchar(64) NOT NULL,
  `description` varchar(1000) NOT NULL,
  `state` varchar(8) NOT NULL,
  `created` datetime(6) NOT NULL,
  `modified` datetime(6) NOT NULL,
  `locked` datetime(6) DEFAULT NULL,
  PRIMARY KEY (`tag_id`),
  UNIQUE KEY `name` (`name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

CREATE TABLE `cond_folders` (
  `folder_id` int(11) NOT NULL AUTO_INCREMENT,
  `name` varchar(64) NOT NULL,
  `payload_type` varchar(32) NOT NULL,
  `description` varchar(1000) NOT NULL,
  PRIMARY KEY (`folder_id`),
  UNIQUE KEY `name` (`name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

CREATE TABLE `cond_payloads` (
  `hash` varchar(64) NOT NULL,
  `size` int(11) NOT NULL,
  `data` longblob NOT NULL,
  `created` datetime(6) NOT NULL,
  PRIMARY KEY (`hash`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

CREATE TABLE `cond_iovs` (
  `iov_id` bigint(20) NOT NULL AUTO_INCREMENT,
  `tag_id` int(11) NOT NULL,
  `folder_id` int(11) NOT NULL,
  `first_run` int(11) NOT NULL,
  `last_run` int(11) NOT NULL,
  `payload_hash` varchar(64) NOT NULL,
  `inserted` datetime(6) NOT NULL,
  PRIMARY KEY (`iov_id`),
  KEY `folder_id` (`folder_id`),
  KEY `payload_hash` (`payload_hash`),
  KEY `cond_iovs_lookup` (`tag_id`,`folder_id`,`first_run`),
  CONSTRAINT `cond_iovs_ibfk_1` FOREIGN KEY (`tag_id`) REFERENCES `cond_tags` (`tag_id`),
  CONSTRAINT `cond_iovs_ibfk_2` FOREIGN KEY (`folder_id`) REFERENCES `cond_folders` (`folder_id`),
  CONSTRAINT `cond_iovs_ibfk_3` FOREIGN KEY (`payload_hash`) REFERENCES `cond_payloads` (`hash`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
