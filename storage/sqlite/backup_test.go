package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/audit"
)

// TestBackupWhileWriting takes a backup while four goroutines keep recording audit
// entries, then opens the copy: its chain verifies whole (one consistent snapshot),
// holds at least what was there before, and the live database lost nothing.
func TestBackupWhileWriting(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	l := &audit.Log{Store: NewAuditStore(db)}
	for i := range 200 {
		if err := l.Record(ctx, "u-1", "staff", "case.read", fmt.Sprintf("QF-330782-2026-%06d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var written atomic.Int64
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := l.Record(ctx, fmt.Sprintf("u-%d", g), "staff", "case.list", "", map[string]string{"g": fmt.Sprint(g)}); err != nil {
					t.Error(err)
					return
				}
				written.Add(1)
			}
		})
	}
	for written.Load() < 20 { // the writers are running
		time.Sleep(time.Millisecond)
	}
	dest := filepath.Join(t.TempDir(), "backup.sqlite")
	err := db.Backup(ctx, dest)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dest); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file mode %v, %v; want 0600", fi.Mode(), err)
	}
	copyDB, err := Open(ctx, dest, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer copyDB.Close()
	r, err := audit.Verify(ctx, NewAuditStore(copyDB))
	if err != nil || !r.OK || r.Entries < 220 {
		t.Fatalf("the backup's chain: %+v %+v, %v", r, r.FirstBroken, err)
	}
	live, err := audit.Verify(ctx, NewAuditStore(db))
	if err != nil || !live.OK || live.Entries != 200+written.Load() {
		t.Fatalf("the live chain: %+v, %v; want %d entries", live, err, 200+written.Load())
	}
	t.Logf("backup holds %d of %d entries", r.Entries, live.Entries)

	if err := db.Backup(ctx, dest); err == nil {
		t.Error("Backup overwrote an existing file")
	}
}
