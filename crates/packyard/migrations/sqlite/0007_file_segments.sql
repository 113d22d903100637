-- An index file stored as a sequence of blobs (its independently compressed chunks) rather
-- than one blob: a publish writes only the chunks that changed, and serving concatenates.
ALTER TABLE generation_files ADD COLUMN segment_count BIGINT NOT NULL DEFAULT 0;
CREATE TABLE generation_file_segments (
    generation_id  BIGINT NOT NULL REFERENCES generations (id) ON DELETE CASCADE,
    path           TEXT NOT NULL,
    seq            BIGINT NOT NULL,
    blob_sha256    TEXT NOT NULL,
    size           BIGINT NOT NULL,
    PRIMARY KEY (generation_id, path, seq)
);
CREATE INDEX generation_file_segments_blob ON generation_file_segments (blob_sha256);
