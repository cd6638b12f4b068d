-- casewarden schema v13 (PostgreSQL): london_today, today's date in Europe/London, as a view
-- CRMs may read on either backend. The worklists here already count from the London date.

CREATE VIEW london_today AS
SELECT (now() AT TIME ZONE 'Europe/London')::date AS day;
