-- PostgreSQL identity columns never hand out an id twice; SQLite's table is rebuilt with
-- AUTOINCREMENT in its migration of the same number. Nothing to do here.
SELECT 1;
