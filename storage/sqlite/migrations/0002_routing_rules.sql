-- The versioned routing rules. A rule's conditions and targets are stored as a JSON
-- object in routing's own rule-file format (the json tags of routing.Rule, which
-- operators write rules in), without the version and retirement fields, which are
-- columns. No pending flag as in storage/mongo: adding a rule and bumping the version
-- are one transaction.
CREATE TABLE routing_rules (
	id         TEXT    PRIMARY KEY,
	version    INTEGER NOT NULL,           -- the rule-set version that added it
	retired_in INTEGER NOT NULL DEFAULT 0, -- the one that retired it, 0: in force
	retired_at INTEGER,
	retired_by TEXT    NOT NULL DEFAULT '',
	body       TEXT    NOT NULL
) STRICT;

-- One row: the current rule-set version.
CREATE TABLE routing_rule_version (
	one     INTEGER PRIMARY KEY CHECK (one = 1),
	version INTEGER NOT NULL
) STRICT;
