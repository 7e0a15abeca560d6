package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
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

// TestContextsEndingMidStatement: callers whose contexts end at any moment of their
// statements — before, during, just after a query produced its first row — never
// harm anyone else's: the writer's one connection and each reader connection still
// answer the next caller, and Close's checkpoint succeeds. modernc.org/sqlite before
// v1.40.1 dropped the rows of a query whose context ended just after its first row
// without finalising the statement: the connection kept an active, interrupted
// statement and every later statement on it failed with SQLITE_INTERRUPT — the
// writer's for good (seen as Close's checkpoint failing in CI; this test failed within
// a thousand rounds). Before v1.42.2 an interrupt meant for a finished statement could
// also land on the next caller's.
func TestContextsEndingMidStatement(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	if err := db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "CREATE TABLE mid (id INTEGER PRIMARY KEY, live INTEGER NOT NULL)")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	const query = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 50) SELECT count(*) FROM c"
	// write reads, then writes: an interrupted write rolls back the whole SQLite
	// transaction, which the live callers batched with it share.
	write := func(ctx context.Context, live int) error {
		return db.Tx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, query).Scan(&n); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, "INSERT INTO mid (live) VALUES (?)", live)
			return err
		})
	}
	read := func(ctx context.Context) error {
		var n int
		return db.r.QueryRowContext(ctx, query).Scan(&n)
	}
	// How long one call takes here, to spread the cancellations over all of it.
	start := time.Now()
	for range 200 {
		if err := write(ctx, 0); err != nil {
			t.Fatal(err)
		}
		if err := read(ctx); err != nil {
			t.Fatal(err)
		}
	}
	span := 2 * time.Since(start) / 200
	rng := rand.New(rand.NewPCG(1, 2))
	const rounds = 4000
	for i := range rounds {
		cctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		var liveErr error
		wg.Go(func() { _ = write(cctx, 0) })
		wg.Go(func() { _ = read(cctx) })
		wg.Go(func() { liveErr = write(ctx, 1) }) // likely in the same batch
		time.Sleep(time.Duration(rng.Int64N(int64(span))))
		cancel()
		wg.Wait()
		if liveErr != nil {
			t.Fatalf("round %d: a live caller beside a cancelled one failed: %v", i, liveErr)
		}
		if err := write(ctx, 1); err != nil {
			t.Fatalf("round %d: the writer fails a live caller after cancelled ones: %v", i, err)
		}
		if i%50 != 49 {
			continue
		}
		// Every reader connection, not only the one the pool hands out first.
		conns := make([]*sql.Conn, db.r.Stats().MaxOpenConnections)
		for j := range conns {
			c, err := db.r.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			conns[j] = c
			var n int
			if err := c.QueryRowContext(ctx, query).Scan(&n); err != nil {
				t.Fatalf("round %d: reader connection %d fails a live caller after cancelled ones: %v", i, j, err)
			}
		}
		for _, c := range conns {
			_ = c.Close()
		}
	}
	var live int
	if err := db.r.QueryRowContext(ctx, "SELECT count(*) FROM mid WHERE live = 1").Scan(&live); err != nil {
		t.Fatal(err)
	}
	if live != 2*rounds {
		t.Errorf("%d live writes stored, want %d: a cancelled caller took a live one's with it", live, 2*rounds)
	}
	if err := db.Checkpoint(ctx); err != nil {
		t.Fatalf("checkpoint after cancelled callers: %v", err)
	}
}
