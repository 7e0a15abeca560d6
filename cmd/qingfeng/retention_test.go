package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/retention"
	"github.com/qingfeng-zj/qingfeng/storage/sqlite"
)

func TestRetentionCommand(t *testing.T) {
	ctx := context.Background()
	db, dir := importDB(t)
	env := map[string]string{}
	// The period is set both ways: in the environment the command reads until
	// config.go has QF_RETENTION, and in the configuration once it has.
	var cfg Config
	setPeriod := func(period string) {
		t.Setenv("QF_RETENTION", period)
		e := maps.Clone(env)
		e["QF_RETENTION"] = period
		cfg = testConfig(t, dir, e)
	}
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := retentionCommand(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), args, &out, &errb)
		return code, out.String() + errb.String()
	}
	setPeriod("0")
	if code, _ := run(); code != 2 {
		t.Errorf("no subcommand: %d", code)
	}
	if code, _ := run("purge", "extra"); code != 2 {
		t.Errorf("extra argument: %d", code)
	}
	if code, out := run("purge"); code != 1 || !strings.Contains(out, "QF_RETENTION") {
		t.Errorf("no period: %d %s", code, out)
	}
	// Six minutes, not six months: refused by the configuration or by the command.
	t.Setenv("QF_RETENTION", "6m")
	e := maps.Clone(env)
	e["QF_RETENTION"], e["QF_DATA_DIR"] = "6m", dir
	if _, err := ConfigFromEnv(func(k string) string { return e[k] }); err != nil {
		if !strings.Contains(err.Error(), "QF_RETENTION") {
			t.Errorf("minutes: %v", err)
		}
	} else if code, out := run("purge", "--dry-run"); code != 1 || !strings.Contains(out, "shorter than a day") {
		t.Errorf("minutes: %d %s", code, out)
	}
	setPeriod("5y")

	closedAt := time.Now().AddDate(-6, 0, 0).UTC().Truncate(time.Millisecond)
	for i, at := range []time.Time{closedAt, time.Now().AddDate(-1, 0, 0)} {
		c := &intake.Case{ID: fmt.Sprintf("ret-%d", i), Number: fmt.Sprintf("QF-330782-2020-%06d", i+1), Source: "app", Category: "other",
			Subject: intake.Subject{Kind: intake.SubjectPerson, Person: &intake.PersonSubject{Name: "张某"}}, Description: "描述",
			Location: intake.Location{Division: "330782", Address: "某路"}, RealName: true,
			Identity:    &intake.SealedIdentity{Ciphertext: []byte("age-encryption.org/v1\nx"), SealedAt: at},
			ReceiptHash: []byte(fmt.Sprintf("ret-receipt-%d", i)), Status: intake.StatusClosed, UnitID: "330782-mz",
			Transitions: []intake.Transition{{Action: "close", From: intake.StatusFeedbackGiven, To: intake.StatusClosed, By: "u", At: at, Reason: "结案"}},
			Evidence:    []intake.Evidence{{ID: "e", ObjectKey: "cases/ret/e", ContentType: "image/jpeg", Size: 1, SHA256Stored: "h"}},
			ReceivedAt:  at.AddDate(-1, 0, 0), Version: 1}
		if err := sqlite.NewCaseStore(db).CreateCase(ctx, c); err != nil {
			t.Fatal(err)
		}
	}

	code, out := run("purge", "--dry-run")
	if code != 0 || !strings.Contains(out, "QF-330782-2020-000001") || strings.Contains(out, "QF-330782-2020-000002") ||
		!strings.Contains(out, "1 cases closed before") {
		t.Fatalf("dry run: %d %s", code, out)
	}
	if c, _ := sqlite.NewCaseStore(db).CaseByID(ctx, "ret-0"); c.Identity == nil {
		t.Fatal("the dry run purged")
	}
	if code, out := run("purge"); code != 0 || !strings.Contains(out, "1 cases purged") {
		t.Fatalf("purge: %d %s", code, out)
	}
	if c, _ := sqlite.NewCaseStore(db).CaseByID(ctx, "ret-0"); c.Identity != nil || c.Description != retention.PurgedDescription {
		t.Errorf("not purged: %+v", c)
	}
	if c, _ := sqlite.NewCaseStore(db).CaseByID(ctx, "ret-1"); c.Identity == nil {
		t.Error("a recently closed case was purged")
	}
	if code, out := run("purge"); code != 0 || !strings.Contains(out, "0 cases purged") {
		t.Errorf("second purge: %d %s", code, out)
	}
}
