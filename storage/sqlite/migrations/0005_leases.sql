-- Leases: which server instance runs a periodic job (escalation, retention, the outbox
-- relay, ledger alerts) until when.
CREATE TABLE leases (
	name   TEXT    PRIMARY KEY,
	holder TEXT    NOT NULL,
	until  INTEGER NOT NULL
) STRICT;
