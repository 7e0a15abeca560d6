package sqlite

import (
	"context"
	"database/sql"
)

// ReferencedObjects returns every object key a stored record names: the evidence
// and kept originals of cases, and the ledger's photos and their originals. They are
// the only records that name objects. The orphan sweeper (retention.Sweeper) deletes
// what is not in the set, so a key missing here is evidence destroyed: both whole
// tables are read, by design (TestQueriesUseIndexes lists them).
func (db *DB) ReferencedObjects(ctx context.Context) (map[string]bool, error) {
	refs := map[string]bool{}
	for _, src := range []struct{ what, query string }{
		{"cases", `SELECT json_extract(e.value, '$.object_key'), json_extract(e.value, '$.original_key')
			FROM cases, json_each(cases.doc, '$.evidence') e`},
		{"ledger photos", "SELECT object_key, original_key FROM ledger_photos"},
	} {
		if err := db.eachKeyPair(ctx, src.query, func(keys ...sql.NullString) {
			for _, k := range keys {
				if k.Valid && k.String != "" {
					refs[k.String] = true
				}
			}
		}); err != nil {
			return nil, storeError("list object references in "+src.what, err, nil, nil)
		}
	}
	return refs, nil
}

func (db *DB) eachKeyPair(ctx context.Context, query string, fn func(keys ...sql.NullString)) error {
	rows, err := db.r.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var a, b sql.NullString
		if err := rows.Scan(&a, &b); err != nil {
			return err
		}
		fn(a, b)
	}
	return rows.Err()
}
