-- Master and read tokens are looked up by the SHA-256 of the value presented, never by the
-- value itself, so how long a lookup takes says nothing about any stored value; the value is
-- then compared in constant time. The digests of existing tokens are filled in when the
-- server opens the database (db::tokens::fill_digests).
ALTER TABLE master_tokens ADD COLUMN value_sha256 TEXT;
ALTER TABLE master_tokens ADD COLUMN previous_value_sha256 TEXT;
ALTER TABLE read_tokens ADD COLUMN value_sha256 TEXT;
CREATE UNIQUE INDEX master_tokens_value_sha256 ON master_tokens (value_sha256);
CREATE UNIQUE INDEX master_tokens_previous_value_sha256 ON master_tokens (previous_value_sha256);
CREATE UNIQUE INDEX read_tokens_value_sha256 ON read_tokens (value_sha256);
