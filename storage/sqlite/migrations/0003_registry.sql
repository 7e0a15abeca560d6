-- The registry: social organizations by normalized credit code, supervisory units by
-- id. Both are loaded whole into memory by the router and looked up by key otherwise.
CREATE TABLE organizations (
	credit_code            TEXT    PRIMARY KEY,
	name                   TEXT    NOT NULL,
	type                   TEXT    NOT NULL,
	reg_division           TEXT    NOT NULL,
	status                 TEXT    NOT NULL,
	registration_authority TEXT    NOT NULL DEFAULT '',
	supervisory_unit       TEXT    NOT NULL DEFAULT '',
	industry               TEXT    NOT NULL DEFAULT '',
	grade                  TEXT    NOT NULL DEFAULT '',
	division               TEXT    NOT NULL DEFAULT '',
	updated_at             INTEGER NOT NULL
) STRICT;

CREATE TABLE units (
	id           TEXT    PRIMARY KEY,
	name         TEXT    NOT NULL,
	kind         TEXT    NOT NULL,
	division     TEXT    NOT NULL DEFAULT '',
	level        TEXT    NOT NULL DEFAULT '',
	parent       TEXT    NOT NULL DEFAULT '',
	stationed_at TEXT    NOT NULL DEFAULT '',
	active       INTEGER NOT NULL,
	deadlines    TEXT,                           -- a JSON object kind → working days, NULL for none
	aliases      TEXT    NOT NULL DEFAULT '[]'   -- a JSON array, in the order added
) STRICT;
