-- A unit's queue searched by the reported organization (GET /v1/cases?org=, the
-- console's search box): one row per search key of a case (routing.OrgSearchKeys: its
-- credit codes and every prefix of its names) with the case's unit and the columns the
-- queue sorts by, so that a search is one indexed range read in the sort's order: the
-- table itself newest first, case_orgs_due by deadline. The store rewrites a case's
-- rows in the transaction of every change of its keys, unit or deadline. A search
-- without a unit (a liaison's own filings) reads the cases in that scope's index and
-- looks each up here by the primary key. The keys are computed in Go (NFKC,
-- traditional to simplified), so existing cases get theirs from the store right after
-- this migration, in its transaction.
CREATE TABLE case_orgs (
	key         TEXT    NOT NULL,
	unit_id     TEXT    NOT NULL,
	received_at INTEGER NOT NULL,
	case_id     TEXT    NOT NULL,
	next_due    TEXT    NOT NULL,
	PRIMARY KEY (key, unit_id, received_at DESC, case_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX case_orgs_due ON case_orgs (key, unit_id, next_due, case_id) WHERE next_due > '';
