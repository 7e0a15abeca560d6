package storetest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/outbox"
	"github.com/qingfeng-zj/qingfeng/triage"
)

// testOutbox: the events of a filing and a workflow step reach a webhook through the
// dispatcher once each, signed, after the subscriber's outage and the backoff.
func testOutbox(t *testing.T, stores CaseStores) {
	ctx := context.Background()
	s := stores.Cases
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
		received = append(received, e)
	}))
	defer srv.Close()

	c := NewCase(1, "330782-mz", "330782", base)
	mustCreate(t, s, c)
	cal, _ := triage.NewCalendar()
	tri := &triage.Service{Cases: s, Calendar: cal}
	if _, err := tri.Transition(ctx, c, "staff-1", triage.Request{Action: triage.ActAccept, Reason: "受理"}); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 2, 2, 0, 0, 0, time.UTC)
	d := &outbox.Dispatcher{Store: stores.Outbox, Leases: stores.Leases, Webhooks: []outbox.Webhook{{Name: "staff-app", URL: srv.URL, Secret: "s3cret"}},
		Now: func() time.Time { return now }}
	if n, err := d.RunOnce(ctx); err != nil || n != 0 {
		t.Fatalf("first run (subscriber down): %d, %v", n, err)
	}
	// Relayed once: a second relay finds nothing.
	if n, err := stores.Outbox.Relay(ctx, []string{"staff-app"}, now, 100); err != nil || n != 0 {
		t.Fatalf("second relay moved %d, %v", n, err)
	}
	now = now.Add(10 * time.Second)
	if n, _ := d.RunOnce(ctx); n != 0 {
		t.Fatalf("delivered %d before the backoff", n)
	}
	now = now.Add(outbox.Backoff(1))
	if n, err := d.RunOnce(ctx); err != nil || n != 2 {
		t.Fatalf("after the backoff: %d, %v", n, err)
	}
	now = now.Add(time.Hour)
	if n, _ := d.RunOnce(ctx); n != 0 {
		t.Fatalf("redelivered %d", n)
	}
	mu.Lock()
	defer mu.Unlock()
	var types []string
	for _, e := range received {
		types = append(types, e.Type)
		if e.Case != c.Number || e.ID == "" {
			t.Errorf("event %+v", e)
		}
	}
	slices.Sort(types)
	if strings.Join(types, ",") != "case.registered,case.transition" {
		t.Errorf("events %v", types)
	}
}

// testOutboxGivesUp: a subscriber that always fails gets MaxAttempts attempts, then
// the delivery is no longer due.
func testOutboxGivesUp(t *testing.T, s CaseStores) {
	ctx := context.Background()
	var mu sync.Mutex
	attempts := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		attempts++
		mu.Unlock()
		http.Error(w, "no", 500)
	}))
	defer srv.Close()
	mustCreate(t, s.Cases, NewCase(1, "330782-mz", "330782", base))
	now := base
	d := &outbox.Dispatcher{Store: s.Outbox, Leases: s.Leases, Webhooks: []outbox.Webhook{{Name: "w", URL: srv.URL}}, MaxAttempts: 3, Now: func() time.Time { return now }}
	for range 5 {
		if _, err := d.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		now = now.Add(2 * time.Hour)
	}
	due, err := s.Outbox.Due(ctx, now.Add(24*time.Hour), 10)
	if err != nil || len(due) != 0 {
		t.Fatalf("a given-up delivery is still due: %v %v", due, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if attempts != 3 {
		t.Errorf("%d attempts, want 3", attempts)
	}
}
