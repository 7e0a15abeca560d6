-- Cases, their conversation, escalation notifications and the outbox of case events.
-- What a query filters or sorts on is a column with an index that serves the query;
-- the rest of a case (subject, decision, workflow history, evidence list...) is JSON,
-- read and written whole by the store's row type.
CREATE TABLE cases (
	id                   TEXT    PRIMARY KEY,
	number               TEXT    NOT NULL UNIQUE,
	receipt_hash         BLOB    NOT NULL UNIQUE,  -- keyed hash of the receipt code
	unit_id              TEXT    NOT NULL,
	status               TEXT    NOT NULL,
	category             TEXT    NOT NULL,
	division             TEXT    NOT NULL,         -- location.division, for liaisons' prefix ranges
	filed_by             TEXT    NOT NULL DEFAULT '',
	assignee             TEXT    NOT NULL DEFAULT '',
	received_at          INTEGER NOT NULL,
	acceptance_due       TEXT    NOT NULL DEFAULT '',
	feedback_due         TEXT    NOT NULL DEFAULT '',
	transfer_due         TEXT    NOT NULL DEFAULT '',   -- the pending transfer's due date
	escalated            TEXT    NOT NULL DEFAULT '',   -- the steps escalated, ",acceptance,transfer,"
	next_due             TEXT    NOT NULL DEFAULT '',   -- the deadline the case waits on; '' for none
	evidence_bytes       INTEGER NOT NULL DEFAULT 0,
	new_activity         INTEGER NOT NULL DEFAULT 0,
	reporter_activity_n  INTEGER NOT NULL DEFAULT 0,
	version              INTEGER NOT NULL,
	updated_at           INTEGER,
	doc                  TEXT    NOT NULL              -- JSON: everything else (caseDoc)
) STRICT;
-- The queue: a unit's cases newest first, or by nearest deadline.
CREATE INDEX cases_unit_received ON cases (unit_id, received_at DESC, id);
CREATE INDEX cases_unit_due      ON cases (unit_id, next_due, id);
-- A liaison's own filings.
CREATE INDEX cases_filed_received ON cases (filed_by, received_at DESC, id);
-- Lists without a unit or liaison (a division prefix, or an admin's everything).
CREATE INDEX cases_received ON cases (received_at DESC, id);
CREATE INDEX cases_due      ON cases (next_due, id);
-- Counts per status, and of unread reporter activity.
CREATE INDEX cases_unit_status ON cases (unit_id, status);
CREATE INDEX cases_unit_new_activity ON cases (unit_id) WHERE new_activity = 1;
-- The escalator's overdue steps.
CREATE INDEX cases_status_acceptance_due ON cases (status, acceptance_due);
CREATE INDEX cases_status_feedback_due   ON cases (status, feedback_due);
CREATE INDEX cases_transfer_due          ON cases (transfer_due);

CREATE TABLE messages (
	id          TEXT    PRIMARY KEY,
	case_id     TEXT    NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
	sender      TEXT    NOT NULL,          -- "reporter" or "staff"
	kind        TEXT    NOT NULL,
	author_id   TEXT    NOT NULL DEFAULT '',
	body        TEXT    NOT NULL,
	created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX messages_case ON messages (case_id, created_at, id);

-- Escalation notifications: the id is the case and step, so a second is impossible.
CREATE TABLE notifications (
	id          TEXT    PRIMARY KEY,
	unit_id     TEXT    NOT NULL,
	case_number TEXT    NOT NULL,
	case_unit   TEXT    NOT NULL,
	kind        TEXT    NOT NULL,
	due         TEXT    NOT NULL,
	created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX notifications_unit ON notifications (unit_id, created_at DESC, id);

-- Case events, written in the transaction of the change they describe, until the
-- relay moves them into deliveries (one per webhook).
CREATE TABLE case_events (
	seq         INTEGER PRIMARY KEY,
	id          TEXT    NOT NULL UNIQUE,
	case_id     TEXT    NOT NULL,
	type        TEXT    NOT NULL,
	case_number TEXT    NOT NULL,
	unit_id     TEXT    NOT NULL,
	at          INTEGER NOT NULL,
	data        TEXT                       -- JSON object of strings
) STRICT;

-- Deliveries of case events to webhooks: at least once, retried with backoff.
CREATE TABLE deliveries (
	event_id   TEXT    NOT NULL,
	webhook    TEXT    NOT NULL,
	status     TEXT    NOT NULL,          -- pending, done, failed
	attempts   INTEGER NOT NULL DEFAULT 0,
	next_at    INTEGER NOT NULL,
	last_error TEXT    NOT NULL DEFAULT '',
	done_at    INTEGER,
	event      TEXT    NOT NULL,          -- JSON: the event as sent
	PRIMARY KEY (event_id, webhook)
) STRICT;
CREATE INDEX deliveries_due ON deliveries (status, next_at, event_id, webhook);
