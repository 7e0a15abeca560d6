package main

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/qingfeng-zj/qingfeng/storage/embedded"

	"github.com/qingfeng-zj/qingfeng/storage/sqlite"
)

// rawExec runs one statement on the embedded database of data directory dir through a
// connection of its own, as someone with the file would: tests tamper with rows this
// way to see that the server notices.
func rawExec(t *testing.T, dir, query string, args ...any) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlite.FileName)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.ExecContext(context.Background(), query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		t.Fatalf("%s: no row changed", query)
	}
}

var (
	mongoOnce sync.Once
	mongoURI  string
	mongoErr  error
)

// testMongoURI is a MongoDB-wire server for the tests of the MongoDB configuration:
// QF_TEST_MONGODB_URI when set, otherwise an embedded FerretDB started once for the
// package (the embedded default itself no longer runs one).
func testMongoURI(t testing.TB) string {
	t.Helper()
	if uri := os.Getenv("QF_TEST_MONGODB_URI"); uri != "" {
		return uri
	}
	mongoOnce.Do(func() {
		dir, err := os.MkdirTemp("", "qingfeng-test-ferretdb-")
		if err != nil {
			mongoErr = err
			return
		}
		emb, err := embedded.Start(context.Background(), dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			mongoErr = err
			return
		}
		mongoURI = emb.MongoDBURI()
		testCleanups = append(testCleanups, func() { emb.Close(); os.RemoveAll(dir) })
	})
	if mongoErr != nil {
		t.Fatal(mongoErr)
	}
	return mongoURI
}

// testCleanups run when the package's tests end (TestMain).
var testCleanups []func()
