-- Nothing to change on SQLite: it updates the counter row in place, so a bump per statement
-- costs the same at the 20,000th as at the first. PostgreSQL's 0010 makes its counters move
-- once per transaction instead (see migrations/postgres/0010_one_bump_per_transaction.sql);
-- this file keeps the two dialects' numbering in step.
SELECT 1;
