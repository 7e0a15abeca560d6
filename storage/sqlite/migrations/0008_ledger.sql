-- The donation ledger (donations.Store): entries, the cached balance per organization,
-- goods verifications, photos, idempotency records, published statements, correction
-- notes and alerts. Entries, verifications, statements and corrections are only ever
-- inserted; an entry's only change is clearing alerts_pending.

-- An entry's id is "<org>:<seq, 10 digits>" and is not stored: (org, seq) is the key.
-- The columns are what queries filter or sort on; the rest of the entry is body (JSON).
CREATE TABLE ledger_entries (
	org            TEXT    NOT NULL,
	seq            INTEGER NOT NULL,
	kind           TEXT    NOT NULL,
	income_type    TEXT    NOT NULL DEFAULT '',
	date           TEXT    NOT NULL,          -- YYYY-MM-DD
	month          TEXT    NOT NULL,          -- the date's YYYY-MM
	idem           TEXT,                      -- hash of the Idempotency-Key, NULL for none
	alerts_pending INTEGER NOT NULL DEFAULT 0,
	recorded_at    INTEGER NOT NULL,
	beneficiary    BLOB,                      -- sealed (age), never plaintext
	body           TEXT    NOT NULL,
	PRIMARY KEY (org, seq)
) STRICT, WITHOUT ROWID;
-- List and EntriesAfter of a month: the month's entries, in sequence.
CREATE INDEX ledger_entries_month ON ledger_entries (org, month, seq);
-- GoodsIncome.
CREATE INDEX ledger_entries_kind ON ledger_entries (org, kind, income_type, seq);
-- AppendOnce: the entry an earlier attempt appended.
CREATE UNIQUE INDEX ledger_entries_idem ON ledger_entries (org, idem) WHERE idem IS NOT NULL;
-- UnevaluatedEntries: the few entries whose alert rules are not evaluated yet.
CREATE INDEX ledger_entries_pending ON ledger_entries (recorded_at, org, seq) WHERE alerts_pending = 1;

-- The balance after entry seq, kept in the same transaction as every append.
CREATE TABLE ledger_heads (
	org     TEXT    PRIMARY KEY,
	seq     INTEGER NOT NULL,
	balance TEXT    NOT NULL                  -- JSON: funds, stock and reversals
) STRICT;

CREATE TABLE ledger_verifications (
	entry_id    TEXT    PRIMARY KEY,
	org         TEXT    NOT NULL,
	verified_by TEXT    NOT NULL,
	verified_at INTEGER NOT NULL,
	note        TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX ledger_verifications_org ON ledger_verifications (org);

-- An upload of photos (a batch) and its files.
CREATE TABLE ledger_photo_batches (
	id  TEXT    PRIMARY KEY,
	org TEXT    NOT NULL,
	at  INTEGER NOT NULL
) STRICT;
CREATE TABLE ledger_photos (
	batch            TEXT    NOT NULL REFERENCES ledger_photo_batches (id),
	id               TEXT    NOT NULL,
	object_key       TEXT    NOT NULL,
	content_type     TEXT    NOT NULL,
	size             INTEGER NOT NULL,
	sha256_received  TEXT    NOT NULL,
	sha256_stored    TEXT    NOT NULL,
	metadata_removed INTEGER NOT NULL,
	original_key     TEXT    NOT NULL,
	uploaded_by      TEXT    NOT NULL,
	uploaded_at      INTEGER,
	PRIMARY KEY (batch, id)
) STRICT, WITHOUT ROWID;

CREATE TABLE ledger_idempotency (
	org          TEXT    NOT NULL,
	key_hash     TEXT    NOT NULL,
	request_hash TEXT    NOT NULL,
	entry_seq    INTEGER NOT NULL,
	created_at   INTEGER NOT NULL,
	PRIMARY KEY (org, key_hash)
) STRICT, WITHOUT ROWID;

-- Published statements: the canonical bytes their hash covers, never updated.
CREATE TABLE ledger_statements (
	org          TEXT    NOT NULL,
	month        TEXT    NOT NULL,            -- YYYY-MM
	content      BLOB    NOT NULL,
	content_hash TEXT    NOT NULL,
	through_seq  INTEGER NOT NULL,
	published_by TEXT    NOT NULL,
	published_at INTEGER NOT NULL,
	PRIMARY KEY (org, month)
) STRICT, WITHOUT ROWID;

-- Entries recorded after their month's statement was published.
CREATE TABLE ledger_corrections (
	org   TEXT    NOT NULL,
	month TEXT    NOT NULL,
	seq   INTEGER NOT NULL,
	PRIMARY KEY (org, month, seq),
	FOREIGN KEY (org, seq) REFERENCES ledger_entries (org, seq)
) STRICT, WITHOUT ROWID;

-- Alerts (预警), id org:rule:period, so that a hit is recorded and filed once.
CREATE TABLE ledger_alerts (
	id          TEXT    PRIMARY KEY,
	rule        TEXT    NOT NULL,
	org         TEXT    NOT NULL,
	period      TEXT    NOT NULL,
	entry_id    TEXT    NOT NULL,
	detail      TEXT    NOT NULL,
	org_name    TEXT    NOT NULL,
	division    TEXT    NOT NULL,
	date        TEXT    NOT NULL,
	status      TEXT    NOT NULL,
	case_number TEXT    NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	filed_at    INTEGER
) STRICT;
-- PendingAlerts: the alerts left "filing", oldest first.
CREATE INDEX ledger_alerts_filing ON ledger_alerts (created_at, id) WHERE status = 'filing';
-- OrgAlerts.
CREATE INDEX ledger_alerts_org ON ledger_alerts (org, id);
