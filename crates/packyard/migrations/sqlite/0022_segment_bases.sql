-- A segmented index file that differs from the one its target last published only in its last
-- few segments stores just those: its first `segments_reused` segments are those of the file
-- `segments_base_path` of generation `segments_base`, which stores all of its own (the same
-- path for APT; YUM's data files carry their digest in their names). A publish into a million
-- packages then writes a few segment rows, not a thousand, and the collector keeps a base for
-- as long as a generation refers to it.
ALTER TABLE generation_files ADD COLUMN segments_base BIGINT;
ALTER TABLE generation_files ADD COLUMN segments_base_path TEXT;
ALTER TABLE generation_files ADD COLUMN segments_reused BIGINT NOT NULL DEFAULT 0;
CREATE INDEX generation_files_segments_base ON generation_files (segments_base)
    WHERE segments_base IS NOT NULL;
