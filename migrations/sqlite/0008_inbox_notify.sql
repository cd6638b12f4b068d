-- Passes that start when work arrives. SQLite has no notifications: the daemon watches
-- `PRAGMA data_version` instead (src/wake.rs), which needs nothing in the schema. This migration
-- keeps the two backends' migration numbers in step.
SELECT 1;
