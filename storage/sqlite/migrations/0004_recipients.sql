-- Registered age recipients (custody's keys). The UNIQUE recipient column is "one key,
-- one holder", under concurrent registrations too; a revoked key keeps its row, so it
-- cannot be registered again (storage/mongo keeps a separate claims collection for the
-- same guarantee).
CREATE TABLE recipients (
	id           TEXT    PRIMARY KEY,
	user_id      TEXT    NOT NULL,
	role         TEXT    NOT NULL,
	jurisdiction TEXT    NOT NULL,
	recipient    TEXT    NOT NULL UNIQUE,
	label        TEXT    NOT NULL DEFAULT '',
	added_by     TEXT    NOT NULL,
	added_at     INTEGER NOT NULL,
	revoked_at   INTEGER,
	revoked_by   TEXT    NOT NULL DEFAULT ''
) STRICT;
-- All: oldest first.
CREATE INDEX recipients_added ON recipients (added_at, id);
