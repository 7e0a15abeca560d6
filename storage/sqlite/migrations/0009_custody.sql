-- Custody: requests for a reporter's identity (disclosures) and re-seal tasks, and the
-- case's sealed identity in columns of its own.
--
-- The identity leaves the case's JSON doc for BLOB columns: ReplaceIdentity is then
-- one UPDATE conditional on the ciphertext, and the ciphertext is stored as bytes, not
-- base64. No release wrote cases here before this migration (cmd/qingfeng still ran
-- FerretDB), so no identity is left in a doc to move.
ALTER TABLE cases ADD COLUMN identity BLOB;                                 -- age file; NULL for an anonymous or purged case
ALTER TABLE cases ADD COLUMN identity_recipients TEXT;                      -- JSON array of the recipients it is sealed to
ALTER TABLE cases ADD COLUMN identity_sealed_on_device INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN identity_sealed_at INTEGER;
-- OpenCasesWithIdentity: the open cases with an identity, by division prefix.
CREATE INDEX cases_open_identity ON cases (division, id) WHERE identity IS NOT NULL AND status <> 'closed';

CREATE TABLE disclosures (
	id                  TEXT    PRIMARY KEY,
	case_id             TEXT    NOT NULL,
	case_number         TEXT    NOT NULL,
	division            TEXT    NOT NULL,
	unit_division       TEXT    NOT NULL DEFAULT '',
	unit_id             TEXT    NOT NULL,
	requester           TEXT    NOT NULL,
	requester_recipient TEXT    NOT NULL,
	reason              TEXT    NOT NULL,
	status              TEXT    NOT NULL,   -- pending, approved, denied, completed, expired, cancelled
	requested_at        INTEGER NOT NULL,
	expires_at          INTEGER NOT NULL,
	decided_by          TEXT    NOT NULL DEFAULT '',
	decided_at          INTEGER,
	decision_reason     TEXT    NOT NULL DEFAULT '',
	completed_at        INTEGER,
	cancelled_at        INTEGER,
	cancel_reason       TEXT    NOT NULL DEFAULT '',
	resealed            BLOB                -- age file for the requester only
) STRICT;
-- A case's requests, oldest first.
CREATE INDEX disclosures_case ON disclosures (case_id, requested_at, id);
-- The open requests (custodians' lists), oldest first.
CREATE INDEX disclosures_open ON disclosures (requested_at, id) WHERE status IN ('pending', 'approved');

CREATE TABLE reseal_tasks (
	id          TEXT    PRIMARY KEY,
	case_id     TEXT    NOT NULL,
	case_number TEXT    NOT NULL,
	division    TEXT    NOT NULL,
	target      TEXT    NOT NULL,
	reason      TEXT    NOT NULL,           -- transfer, custodians_changed
	reseal_to   TEXT    NOT NULL,           -- JSON array of recipients
	status      TEXT    NOT NULL,           -- pending, done, superseded
	created_at  INTEGER NOT NULL,
	done_by     TEXT    NOT NULL DEFAULT '',
	done_at     INTEGER
) STRICT;
-- The pending tasks, all and of one case, oldest first.
CREATE INDEX reseal_tasks_pending      ON reseal_tasks (created_at, id) WHERE status = 'pending';
CREATE INDEX reseal_tasks_case_pending ON reseal_tasks (case_id, created_at, id) WHERE status = 'pending';
