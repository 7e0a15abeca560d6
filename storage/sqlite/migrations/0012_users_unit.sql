-- UsersOfUnit: a unit's accounts by username (whom a case can be assigned to).
CREATE INDEX users_unit ON users (unit_id, username);
