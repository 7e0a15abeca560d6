-- Named counters (case numbers) and the idempotency records of POST /v1/reports.
CREATE TABLE counters (
	name TEXT    PRIMARY KEY,
	seq  INTEGER NOT NULL
) STRICT;

CREATE TABLE idempotency (
	key_hash     TEXT    PRIMARY KEY,
	request_hash TEXT    NOT NULL,
	owner        TEXT    NOT NULL,
	claim_until  INTEGER,
	done         INTEGER NOT NULL DEFAULT 0,
	case_id      TEXT    NOT NULL DEFAULT '',
	case_number  TEXT    NOT NULL DEFAULT '',
	receipt_enc  BLOB,                     -- sealed under a key only the client's Idempotency-Key gives
	created_at   INTEGER,
	expires_at   INTEGER NOT NULL
) STRICT;
-- PurgeExpired.
CREATE INDEX idempotency_expires ON idempotency (expires_at);
