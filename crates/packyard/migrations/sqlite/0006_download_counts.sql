-- Downloads of one package by one client with one user agent and token in the same second
-- share a row: a busy mirror records thousands of downloads as a few rows.
ALTER TABLE downloads ADD COLUMN count BIGINT NOT NULL DEFAULT 1;
