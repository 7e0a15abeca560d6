-- Statistics, retention and the purge. The columns are derived from the case by the
-- store on every write (stats and retention rules in Go: stats.AcceptanceStep,
-- stats.FeedbackStep, retention.LastClosed) so that counting and listing read indexes,
-- never the doc JSON; the UPDATE below fills them for cases stored before.
ALTER TABLE cases ADD COLUMN real_name   INTEGER NOT NULL DEFAULT 0;
-- The Asia/Shanghai day of the first step deciding acceptance; '' for none.
ALTER TABLE cases ADD COLUMN accepted_on TEXT    NOT NULL DEFAULT '';
-- The Asia/Shanghai day of the first feedback after the last conclusion; '' for none.
ALTER TABLE cases ADD COLUMN feedback_on TEXT    NOT NULL DEFAULT '';
-- The last close step (Unix ms); NULL for none.
ALTER TABLE cases ADD COLUMN closed_at   INTEGER;
-- When retention purged the case (Unix ms); NULL while it is not.
ALTER TABLE cases ADD COLUMN purged_at   INTEGER;
-- The county (first 6 digits of the division) and the Asia/Shanghai month received,
-- YYYY-MM: what statistics group by.
ALTER TABLE cases ADD COLUMN county         TEXT NOT NULL DEFAULT '';
ALTER TABLE cases ADD COLUMN received_month TEXT NOT NULL DEFAULT '';

UPDATE cases SET
	county = substr(division, 1, 6),
	received_month = strftime('%Y-%m', received_at / 1000, 'unixepoch', '+8 hours'),
	real_name = coalesce(json_extract(doc, '$.real_name'), 0),
	purged_at = CAST(round((julianday(json_extract(doc, '$.purged_at')) - 2440587.5) * 86400000) AS INTEGER),
	accepted_on = coalesce((SELECT date(json_extract(t.value, '$.at'), '+8 hours') FROM json_each(cases.doc, '$.transitions') t
		WHERE json_extract(t.value, '$.action') IN ('accept', 'not_accept', 'link_duplicate') ORDER BY t.key LIMIT 1), ''),
	feedback_on = coalesce((SELECT date(json_extract(t.value, '$.at'), '+8 hours') FROM json_each(cases.doc, '$.transitions') t
		WHERE json_extract(t.value, '$.action') = 'give_feedback'
		AND t.key > coalesce((SELECT max(c.key) FROM json_each(cases.doc, '$.transitions') c WHERE json_extract(c.value, '$.action') = 'conclude'), -1)
		ORDER BY t.key LIMIT 1), ''),
	closed_at = (SELECT CAST(round(max(julianday(json_extract(t.value, '$.at')) - 2440587.5) * 86400000) AS INTEGER)
		FROM json_each(cases.doc, '$.transitions') t
		WHERE json_extract(t.value, '$.action') = 'close' AND json_extract(t.value, '$.to') = 'closed');

-- Stats: every column the counting reads, so that it walks this index alone (a
-- covering index), never the rows and their doc; and in the order it groups by, so that
-- SQLite counts each group as the scan passes it instead of sorting every case into a
-- temporary B-tree (which costs several µs a case). Every query reads the whole index,
-- the unit and the period being checked on each entry.
CREATE INDEX cases_stats ON cases (category, county, status, received_month, real_name,
	acceptance_due, accepted_on, feedback_due, feedback_on, unit_id, received_at);
-- Retention: the closed cases not yet purged nor waiting for staff to read what the
-- reporter sent, by their last close.
CREATE INDEX cases_retention ON cases (closed_at, id) WHERE status = 'closed' AND purged_at IS NULL AND new_activity = 0;
-- The purge deletes a case's idempotency records.
CREATE INDEX idempotency_case ON idempotency (case_id);
