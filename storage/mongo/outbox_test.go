package mongo

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/outbox"
	"github.com/qingfeng-zj/qingfeng/triage"
)

func TestOutbox(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		db := openTestDB(t, tg)
		s := NewCaseStore(db)
		var (
			mu       sync.Mutex
			received []outbox.Event
			fail     = 2 // the subscriber is down for the first two attempts
		)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if got, want := r.Header.Get("X-Qingfeng-Signature"), "sha256="+outbox.Sign("s3cret", body); got != want {
				t.Errorf("signature %q, want %q", got, want)
			}
			mu.Lock()
			defer mu.Unlock()
			if fail > 0 {
				fail--
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			var e outbox.Event
			if err := json.Unmarshal(body, &e); err != nil {
				t.Error(err)
			}
			var raw struct{ At string }
			if err := json.Unmarshal(body, &raw); err != nil || !strings.HasSuffix(raw.At, "+08:00") {
				t.Errorf("event time %q is not on the wire rule (+08:00): %v", raw.At, err)
			}
			received = append(received, e)
		}))
		defer srv.Close()

		c := newCase(1, "330782-mz", "330782", base)
		if err := s.CreateCase(ctx, c); err != nil {
			t.Fatal(err)
		}
		cal, _ := triage.NewCalendar()
		tri := &triage.Service{Cases: s, Calendar: cal}
		if _, err := tri.Transition(ctx, c, "staff-1", triage.Request{Action: triage.ActAccept, Reason: "受理"}); err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 11, 2, 2, 0, 0, 0, time.UTC)
		d := &outbox.Dispatcher{Store: s, Webhooks: []outbox.Webhook{{Name: "staff-app", URL: srv.URL, Secret: "s3cret"}},
			Now: func() time.Time { return now }}
		// First run: relayed, both deliveries attempted; the first fails (down), the
		// second fails too.
		if n, err := d.RunOnce(ctx); err != nil || n != 0 {
			t.Fatalf("first run: %d, %v", n, err)
		}
		var doc struct {
			OutboxN int64 `bson:"outbox_n"`
			Outbox  []any `bson:"outbox"`
		}
		if err := db.coll(collCases).FindOne(ctx, bson.M{"_id": c.ID}).Decode(&doc); err != nil || doc.OutboxN != 0 || len(doc.Outbox) != 0 {
			t.Fatalf("case outbox after relay: %+v %v", doc, err)
		}
		// Not yet due again: nothing is sent.
		now = now.Add(10 * time.Second)
		if n, _ := d.RunOnce(ctx); n != 0 {
			t.Fatalf("delivered %d before the backoff", n)
		}
		now = now.Add(outbox.Backoff(1))
		if n, err := d.RunOnce(ctx); err != nil || n != 2 {
			t.Fatalf("after the backoff: %d, %v", n, err)
		}
		// Delivered once each: later runs send nothing more.
		now = now.Add(time.Hour)
		if n, _ := d.RunOnce(ctx); n != 0 {
			t.Fatalf("redelivered %d", n)
		}
		mu.Lock()
		defer mu.Unlock()
		types := []string{}
		for _, e := range received {
			types = append(types, e.Type)
			if e.Case != c.Number {
				t.Errorf("event for %q", e.Case)
			}
		}
		if strings.Join(types, ",") != "case.registered,case.transition" && strings.Join(types, ",") != "case.transition,case.registered" {
			t.Errorf("events %v", types)
		}
		_ = intake.StatusAccepted
	})
}

func TestOutboxGivesUp(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		s := NewCaseStore(openTestDB(t, tg))
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", 500) }))
		defer srv.Close()
		if err := s.CreateCase(ctx, newCase(1, "330782-mz", "330782", base)); err != nil {
			t.Fatal(err)
		}
		now := base
		d := &outbox.Dispatcher{Store: s, Webhooks: []outbox.Webhook{{Name: "w", URL: srv.URL}}, MaxAttempts: 3, Now: func() time.Time { return now }}
		for range 5 {
			if _, err := d.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			now = now.Add(2 * time.Hour)
		}
		due, err := s.Due(ctx, now.Add(24*time.Hour), 10)
		if err != nil || len(due) != 0 {
			t.Fatalf("a given-up delivery is still due: %v %v", due, err)
		}
		var dl deliveryDoc
		if err := s.db.coll(collDeliveries).FindOne(ctx, bson.M{}).Decode(&dl); err != nil || dl.Status != "failed" || dl.Attempts != 3 {
			t.Fatalf("delivery %+v %v", dl, err)
		}
	})
}

func TestParseWebhooks(t *testing.T) {
	ws, err := outbox.ParseWebhooks("app=https://app.example/hook|k1; sms=http://10.0.0.5:8080/q")
	if err != nil || len(ws) != 2 || ws[0].Secret != "k1" || ws[1].Name != "sms" {
		t.Fatalf("%+v %v", ws, err)
	}
	for _, bad := range []string{"app", "=https://x", "a=ftp://x", "a=https://x;a=https://y", "a=notaurl"} {
		if _, err := outbox.ParseWebhooks(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
