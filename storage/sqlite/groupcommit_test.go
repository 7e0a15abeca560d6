package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// TestGroupCommit: of many concurrent transactions gathered into shared commits, each
// keeps exactly its own outcome — those that fail leave nothing, the others commit —
// also when one of them ends the SQLite transaction under the others, and when a
// caller's context is already cancelled.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	if err := db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "CREATE TABLE gc (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	errOwn := errors.New("this transaction fails")
	for round := range 5 {
		const n = 96
		var wg sync.WaitGroup
		results := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := round*1000 + i
				cctx := ctx
				if i%17 == 5 {
					c, cancel := context.WithCancel(ctx)
					cancel()
					cctx = c
				}
				results[i] = db.Tx(cctx, func(tx *sql.Tx) error {
					// A second row makes a half-applied transaction visible.
					for _, suffix := range []string{"a", "b"} {
						if _, err := tx.ExecContext(ctx, "INSERT INTO gc (id, v) VALUES (?, ?)", id*10+len(suffix)+map[string]int{"a": 0, "b": 1}[suffix], fmt.Sprint(id, suffix)); err != nil {
							return err
						}
					}
					switch {
					case i%7 == 3:
						return errOwn
					case i%31 == 11:
						// Ends the whole SQLite transaction the batch shares.
						if _, err := tx.ExecContext(ctx, "ROLLBACK"); err != nil {
							return err
						}
						return errOwn
					case i%13 == 6:
						// A constraint error inside the batch: its savepoint only.
						_, err := tx.ExecContext(ctx, "INSERT INTO gc (id, v) VALUES (?, 'dup')", id*10+1)
						return err
					}
					return nil
				})
			}()
		}
		wg.Wait()
		for i := range n {
			id := round*1000 + i
			var rows int
			if err := db.r.QueryRowContext(ctx, "SELECT count(*) FROM gc WHERE id IN (?, ?)", id*10+1, id*10+2).Scan(&rows); err != nil {
				t.Fatal(err)
			}
			wantOK := i%17 != 5 && i%7 != 3 && i%31 != 11 && i%13 != 6
			switch {
			case wantOK && (results[i] != nil || rows != 2):
				t.Errorf("round %d tx %d: %v, %d rows; want committed", round, i, results[i], rows)
			case !wantOK && (results[i] == nil || rows != 0):
				t.Errorf("round %d tx %d: %v, %d rows; want failed with nothing left", round, i, results[i], rows)
			}
			if i%7 == 3 && i%17 != 5 && !errors.Is(results[i], errOwn) {
				t.Errorf("tx %d: %v, want its own error", i, results[i])
			}
		}
	}
}
