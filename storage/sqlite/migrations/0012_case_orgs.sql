-- The queue searched by the reported organization (GET /v1/cases?org=, the console's
-- search box): one row per search key of a case (routing.OrgSearchKeys: its credit
-- codes and every prefix of its names), with the columns the queue is scoped and
-- sorted by copied from the case, so that a search is one indexed lookup read in the
-- sort's order, newest first or by deadline, in a unit or across all. The store
-- rewrites a case's rows in the transaction of every change of its keys, unit or
-- deadline. The keys are computed in Go (NFKC, traditional to simplified), so existing
-- cases get theirs from the store right after this migration, in its transaction.
CREATE TABLE case_orgs (
	key         TEXT    NOT NULL,
	case_id     TEXT    NOT NULL,
	unit_id     TEXT    NOT NULL,
	received_at INTEGER NOT NULL,
	next_due    TEXT    NOT NULL,
	PRIMARY KEY (key, case_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX case_orgs_unit_received ON case_orgs (key, unit_id, received_at DESC, case_id);
CREATE INDEX case_orgs_unit_due      ON case_orgs (key, unit_id, next_due, case_id) WHERE next_due > '';
CREATE INDEX case_orgs_received      ON case_orgs (key, received_at DESC, case_id);
CREATE INDEX case_orgs_due           ON case_orgs (key, next_due, case_id) WHERE next_due > '';
