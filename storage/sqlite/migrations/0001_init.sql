-- The first schema: the audit log, staff accounts and sessions, the holiday calendar.
-- Times are INTEGER Unix milliseconds in UTC; NULL is "never".

CREATE TABLE audit (
	seq         INTEGER PRIMARY KEY,       -- the chain position, 1, 2, 3…
	at          INTEGER NOT NULL,
	actor       TEXT    NOT NULL,
	role        TEXT    NOT NULL DEFAULT '',
	action      TEXT    NOT NULL,
	case_number TEXT    NOT NULL DEFAULT '',
	detail      TEXT,                      -- a JSON object of strings, NULL for none
	prev        TEXT    NOT NULL,
	hash        TEXT    NOT NULL
) STRICT;
-- GET /v1/admin/audit?case=…: one case's entries in chain order.
CREATE INDEX audit_case_seq ON audit (case_number, seq);

CREATE TABLE users (
	id                   TEXT    PRIMARY KEY,
	username             TEXT    NOT NULL UNIQUE,
	display_name         TEXT    NOT NULL,
	role                 TEXT    NOT NULL,
	unit_id              TEXT    NOT NULL DEFAULT '',
	division             TEXT    NOT NULL DEFAULT '',
	password_hash        TEXT    NOT NULL,
	disabled             INTEGER NOT NULL DEFAULT 0,
	must_change_password INTEGER NOT NULL DEFAULT 0,
	session_generation   INTEGER NOT NULL DEFAULT 0,
	totp_enabled         INTEGER NOT NULL DEFAULT 0,
	totp_secret_sealed   BLOB,
	totp_pending_sealed  BLOB,
	totp_last_step       INTEGER NOT NULL DEFAULT 0,
	totp_recovery_hashes TEXT    NOT NULL DEFAULT '[]', -- a JSON array, in order
	last_login_at        INTEGER,
	created_at           INTEGER NOT NULL,
	updated_at           INTEGER NOT NULL
) STRICT;

-- No foreign key to users: a session outlives nothing, and RevokeSessions deletes them.
CREATE TABLE sessions (
	id           TEXT    PRIMARY KEY,
	user_id      TEXT    NOT NULL,
	refresh_hash TEXT    NOT NULL,
	prev_hash    TEXT    NOT NULL DEFAULT '',
	rotated_at   INTEGER,
	generation   INTEGER NOT NULL,
	created_at   INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL
) STRICT;
-- Disabling an account or resetting its credentials deletes its sessions.
CREATE INDEX sessions_user ON sessions (user_id);
-- PurgeExpired.
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE calendar_years (
	year     INTEGER PRIMARY KEY,
	data     TEXT    NOT NULL,             -- holiday-cn JSON
	added_by TEXT    NOT NULL,
	added_at INTEGER NOT NULL
) STRICT;
