-- An uncompressed APT index is served by decompressing its `.gz` sibling and consists of the
-- same segments: it names that sibling here instead of storing a second copy of every
-- segment row (a thousand rows per file at a million packages, written by every publish).
ALTER TABLE generation_files ADD COLUMN segments_of TEXT;
