package mongo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/storage/embedded"
)

// A target is a server the conformance suite runs against. The embedded FerretDB
// always runs; real MongoDB runs when QF_TEST_MONGODB_URI names one (CI does).
type target struct {
	name string
	uri  string
	skip string // why the target is skipped, if it is
	err  error  // why the target failed to start: a test failure, not a skip
}

var targets []target

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	flag.Parse()
	// Benchmarks measure without the recorder; the tests' queries are the same.
	checkIndexes := flag.Lookup("test.bench").Value.String() == ""
	if checkIndexes {
		recordCommands()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	emb := target{name: "embedded"}
	dir, err := os.MkdirTemp("", "qingfeng-mongo-test-")
	if err != nil {
		emb.err = err
	} else {
		defer os.RemoveAll(dir)
		logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
		srv, err := embedded.Start(ctx, dir, logger)
		if err != nil {
			emb.err = err
		} else {
			defer srv.Close()
			emb.uri = srv.MongoDBURI()
		}
	}
	targets = append(targets, emb)

	real := target{name: "mongodb", uri: os.Getenv("QF_TEST_MONGODB_URI")}
	if real.uri == "" {
		real.skip = "QF_TEST_MONGODB_URI is not set; set it to a MongoDB URI to run the suite against real MongoDB"
	}
	targets = append(targets, real)

	code := m.Run()
	if code == 0 && checkIndexes && !reportIndexCheck() {
		code = 1
	}
	return code
}

// forEachTarget runs f as a subtest per target, printing why a target is skipped.
func forEachTarget(t *testing.T, f func(t *testing.T, tg target)) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			if tg.skip != "" {
				t.Skip(tg.skip)
			}
			if tg.err != nil {
				t.Fatalf("start %s: %v", tg.name, tg.err)
			}
			f(t, tg)
		})
	}
}

// openTestDB opens a fresh, randomly named database with indexes on tg and drops it
// when the test ends.
func openTestDB(tb testing.TB, tg target) *DB {
	tb.Helper()
	ctx := context.Background()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "qftest_" + hex.EncodeToString(b)
	db, err := Open(ctx, tg.uri, name)
	if err != nil {
		tb.Fatalf("open %s: %v", tg.name, err)
	}
	tb.Cleanup(func() {
		if err := db.db.Drop(ctx); err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
		}
		if err := db.Close(ctx); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	if err := db.EnsureIndexes(ctx); err != nil {
		tb.Fatalf("ensure indexes: %v", err)
	}
	return db
}

func TestConformance(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		runConformance(t, func(t *testing.T) *DB { return openTestDB(t, tg) })
	})
}

// TestServerDetection checks that Open recognizes FerretDB, on which the per-document
// update lock is all that makes conditional updates atomic.
func TestServerDetection(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		db := openTestDB(t, tg)
		wantFerret := tg.name == "embedded"
		if db.ferret != wantFerret || db.ttl == wantFerret {
			t.Errorf("ferret = %v, ttl = %v; want ferret = %v, ttl = %v", db.ferret, db.ttl, wantFerret, !wantFerret)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tests := []struct {
		name, uri, db string
	}{
		{"empty database name", "mongodb://127.0.0.1:1/", ""},
		{"malformed URI", "postgres://x", "qf"},
		// Nothing listens on port 1; Open must fail within the server selection
		// timeout instead of returning a client that fails later.
		{"unreachable server", "mongodb://qf:s3cret-pw@127.0.0.1:1/?serverSelectionTimeoutMS=300&connectTimeoutMS=300", "qf"},
		{"bad port", "mongodb://qf:s3cret-pw@host:bad/", "qf"},
		{"unescaped password", "mongodb://qf:s3cret-pw:x@host/", "qf"},
		{"bad escape in password", "mongodb://qf:s3cret-pw%zz@host/", "qf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Open(ctx, tt.uri, tt.db)
			if err == nil {
				_ = db.Close(ctx)
				t.Fatal("Open succeeded")
			}
			// Open's error ends up in the start-up log.
			if strings.Contains(err.Error(), "s3cret-pw") {
				t.Errorf("error reveals the password: %v", err)
			}
			t.Log(err)
		})
	}
}

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "qingfeng-example-")
	defer os.RemoveAll(dir)

	srv, err := embedded.Start(ctx, dir, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	db, err := Open(ctx, srv.MongoDBURI(), "qingfeng")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close(ctx)
	if err := db.EnsureIndexes(ctx); err != nil {
		fmt.Println(err)
		return
	}
	cases := NewCaseStore(db)
	n, _ := cases.NextSequence(ctx, "QF-330782-2026")
	fmt.Printf("QF-330782-2026-%06d\n", n)
	// Output: QF-330782-2026-000001
}
