package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/qingfeng-zj/qingfeng/audit"
	"github.com/qingfeng-zj/qingfeng/storage/sqlite"
)

// auditCLI runs `qingfeng audit args...` on data directory dir (importDB).
func auditCLI(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cfg := testConfig(t, dir, nil)
	var out, errb bytes.Buffer
	code = runAudit(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestAuditCommand(t *testing.T) {
	ctx := context.Background()
	db, name := importDB(t)
	l := &audit.Log{Store: sqlite.NewAuditStore(db)}

	t.Run("empty log: OK", func(t *testing.T) {
		code, out, errs := auditCLI(t, name, "verify")
		if code != 0 || !strings.Contains(out, "audit log OK: 0 entries checked") {
			t.Errorf("exit %d\nstdout %s\nstderr %s", code, out, errs)
		}
	})
	for i := range 5 {
		if err := l.Record(ctx, "u-1", "staff", "case.read", "QF-330782-2026-000001", map[string]string{"i": fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("intact: 0, entries and head", func(t *testing.T) {
		code, out, errs := auditCLI(t, name, "verify")
		last, _ := sqlite.NewAuditStore(db).Get(ctx, 5)
		if code != 0 || !strings.Contains(out, "audit log OK: 5 entries checked") || !strings.Contains(out, "last entry: seq 5 sha256 "+last.Hash) {
			t.Errorf("exit %d\nstdout %s\nstderr %s", code, out, errs)
		}
	})
	t.Run("usage: 2", func(t *testing.T) {
		for _, args := range [][]string{nil, {"check"}, {"verify", "extra"}, {"--bogus", "verify"}} {
			if code, _, errs := auditCLI(t, name, args...); code != 2 || !strings.Contains(errs, "usage: qingfeng audit verify") {
				t.Errorf("%q: exit %d, stderr %s", args, code, errs)
			}
		}
	})
	t.Run("an entry edited: 1, named", func(t *testing.T) {
		rawExec(t, name, "UPDATE audit SET actor = 'u-2' WHERE seq = 3")
		code, out, errs := auditCLI(t, name, "verify")
		if code != 1 || !strings.Contains(out, "audit log BROKEN: 3 entries checked") ||
			!strings.Contains(out, "first broken entry: seq 3: "+audit.ReasonHash) {
			t.Errorf("exit %d\nstdout %s\nstderr %s", code, out, errs)
		}
	})
}
