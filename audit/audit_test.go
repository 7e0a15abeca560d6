package audit_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/audit"
	"github.com/qingfeng-zj/qingfeng/audit/audittest"
)

func TestMemStore(t *testing.T) {
	audittest.TestStore(t, func(*testing.T) audit.Store { return audittest.NewMemStore() })
}

var t0 = time.Date(2026, 3, 1, 0, 30, 0, 250_000_000, time.UTC)

// TestHashVector pins the canonical encoding: a change to it makes every stored
// chain unverifiable, so it must be deliberate (and come with a new hashDomain). The
// expected hash was computed outside Go from the encoding as documented:
//
//	"qingfeng/audit/v1\n" u64(7) str("2026-03-01T00:30:00.25Z") str("u-abc") str("staff")
//	str("case.transition") str("QF-330782-2026-000123") u64(2) str("from")
//	str("registered") str("to") str("accepted") str("abab…")
//
// with u64 8 bytes big-endian and str a u64 length then the bytes.
func TestHashVector(t *testing.T) {
	e := audit.Entry{Seq: 7, At: t0, Actor: "u-abc", Role: "staff", Action: "case.transition",
		Case: "QF-330782-2026-000123", Detail: map[string]string{"to": "accepted", "from": "registered"},
		Prev: strings.Repeat("ab", 32)}
	const want = "53ba70cae80a200afab66bcbe1741ff04f3f65b7bbe7209c1f6e42b412482d82"
	got := e.ComputeHash()
	if got != want {
		t.Errorf("hash = %s, want %s", got, want)
	}
	// The time zone of At does not matter, only the instant.
	e.At = t0.In(time.FixedZone("CST", 8*3600))
	if e.ComputeHash() != got {
		t.Error("the hash depends on At's location")
	}
}

// TestHashUnambiguous: entries that a naive concatenation would confuse hash apart.
func TestHashUnambiguous(t *testing.T) {
	base := audit.Entry{Seq: 1, At: t0, Actor: "a", Action: "x"}
	pairs := []struct {
		name string
		a, b func(e *audit.Entry)
	}{
		{"field boundary", func(e *audit.Entry) { e.Actor, e.Role = "ab", "c" }, func(e *audit.Entry) { e.Actor, e.Role = "a", "bc" }},
		{"key/value boundary", func(e *audit.Entry) { e.Detail = map[string]string{"a": "b=c"} }, func(e *audit.Entry) { e.Detail = map[string]string{"a=b": "c"} }},
		{"detail vs case", func(e *audit.Entry) { e.Case = "k" }, func(e *audit.Entry) { e.Detail = map[string]string{"k": ""} }},
		{"pair split", func(e *audit.Entry) { e.Detail = map[string]string{"a": "", "b": ""} }, func(e *audit.Entry) { e.Detail = map[string]string{"a": "b"} }},
		{"seq", func(e *audit.Entry) { e.Seq = 2 }, func(e *audit.Entry) { e.Seq = 3 }},
		{"time", func(e *audit.Entry) { e.At = t0.Add(time.Millisecond) }, func(*audit.Entry) {}},
		{"prev", func(e *audit.Entry) { e.Prev = "00" }, func(*audit.Entry) {}},
	}
	for _, p := range pairs {
		a, b := base, base
		p.a(&a)
		p.b(&b)
		if a.ComputeHash() == b.ComputeHash() {
			t.Errorf("%s: %+v and %+v hash alike", p.name, a, b)
		}
	}
	// Map order does not matter.
	a, b := base, base
	a.Detail = map[string]string{"x": "1", "y": "2", "z": "3"}
	b.Detail = map[string]string{"z": "3", "x": "1", "y": "2"}
	if a.ComputeHash() != b.ComputeHash() {
		t.Error("detail order changes the hash")
	}
}

func FuzzHashFields(f *testing.F) {
	f.Add("a", "bc", "ab", "c")
	f.Add("", "x", "x", "")
	f.Fuzz(func(t *testing.T, actor1, role1, actor2, role2 string) {
		a := audit.Entry{Seq: 1, At: t0, Actor: actor1, Role: role1, Action: "x"}
		b := audit.Entry{Seq: 1, At: t0, Actor: actor2, Role: role2, Action: "x"}
		if (actor1 != actor2 || role1 != role2) && a.ComputeHash() == b.ComputeHash() {
			t.Errorf("%q/%q and %q/%q hash alike", actor1, role1, actor2, role2)
		}
	})
}

func TestRecordRefuses(t *testing.T) {
	ctx := context.Background()
	l := &audit.Log{Store: audittest.NewMemStore()}
	tests := []struct {
		name          string
		actor, action string
		detail        map[string]string
		identifying   bool
	}{
		{"ip", "u-1", "case.read", map[string]string{"ip": "10.0.0.1"}, true},
		{"IP uppercase", "u-1", "case.read", map[string]string{"IP": "10.0.0.1"}, true},
		{"user_agent", "reporter", "report.file", map[string]string{"user_agent": "Mozilla"}, true},
		{"user-agent", "reporter", "report.file", map[string]string{"user-agent": "Mozilla"}, true},
		{"ua", "reporter", "report.file", map[string]string{"ua": "x"}, true},
		{"device_id", "reporter", "report.file", map[string]string{"device_id": "x"}, true},
		{"x-forwarded-for", "u-1", "login", map[string]string{"X-Forwarded-For": "1.2.3.4"}, true},
		{"no actor", "", "case.read", nil, false},
		{"no action", "u-1", "", nil, false},
		{"bad key", "u-1", "case.read", map[string]string{"a.b": "x"}, false},
		{"$ key", "u-1", "case.read", map[string]string{"$set": "x"}, false},
		{"long value", "u-1", "case.read", map[string]string{"why": strings.Repeat("x", 5000)}, false},
		{"not UTF-8", "u-1", "case.read", map[string]string{"why": "\xff"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := l.Record(ctx, tt.actor, "", tt.action, "", tt.detail)
			if err == nil {
				t.Fatal("Record accepted it")
			}
			if errors.Is(err, audit.ErrIdentifying) != tt.identifying {
				t.Errorf("errors.Is(%v, ErrIdentifying) = %v", err, !tt.identifying)
			}
		})
	}
	if r, _ := l.Verify(ctx); r.Entries != 0 {
		t.Errorf("%d entries stored", r.Entries)
	}
}

func TestRecord(t *testing.T) {
	ctx := context.Background()
	s := audittest.NewMemStore()
	now := time.Date(2026, 3, 1, 9, 0, 0, 123_456_789, time.FixedZone("CST", 8*3600))
	l := &audit.Log{Store: s, Now: func() time.Time { return now }}
	detail := map[string]string{"evidence": "ev-1"}
	if err := l.Record(ctx, "u-1", "staff", "evidence.download", "QF-330782-2026-000001", detail); err != nil {
		t.Fatal(err)
	}
	detail["evidence"] = "changed by the caller afterwards"
	if err := l.Record(ctx, audit.ActorReporter, "", "followup.read", "QF-330782-2026-000001", nil); err != nil {
		t.Fatal(err)
	}
	e1, _ := s.Get(ctx, 1)
	e2, _ := s.Get(ctx, 2)
	if e1.Prev != "" || e2.Prev != e1.Hash || e1.Detail["evidence"] != "ev-1" {
		t.Errorf("entries %+v %+v", e1, e2)
	}
	if want := time.Date(2026, 3, 1, 1, 0, 0, 123_000_000, time.UTC); !e1.At.Equal(want) || e1.At.Location() != time.UTC {
		t.Errorf("At = %v, want %v (UTC, milliseconds)", e1.At, want)
	}
	// A new Log on the same store continues the chain.
	l2 := &audit.Log{Store: s}
	if err := l2.Record(ctx, "system", "", "case.escalate", "", nil); err != nil {
		t.Fatal(err)
	}
	if r, err := audit.Verify(ctx, s); err != nil || !r.OK || r.Entries != 3 || r.HeadSeq != 3 {
		t.Errorf("Verify: %+v, %v", r, err)
	}
}

// TestConcurrentLogs: two Logs on one store, as two servers on one database, never
// fork the chain.
func TestConcurrentLogs(t *testing.T) {
	ctx := context.Background()
	s := audittest.NewMemStore()
	logs := []*audit.Log{{Store: s}, {Store: s}}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				if err := logs[g%2].Record(ctx, fmt.Sprintf("u-%d", g), "staff", "case.read", "", map[string]string{"i": fmt.Sprint(i)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if r, err := audit.Verify(ctx, s); err != nil || !r.OK || r.Entries != 400 {
		t.Errorf("Verify: %+v, %v", r, err)
	}
}

// flakyStore fails the next Append after storing the entry, as a timeout after the
// server wrote it would.
type flakyStore struct {
	*audittest.MemStore
	fail bool
}

func (s *flakyStore) Append(ctx context.Context, e audit.Entry) error {
	err := s.MemStore.Append(ctx, e)
	if s.fail {
		s.fail = false
		return errors.New("i/o timeout")
	}
	return err
}

func TestRecordAfterUnknownOutcome(t *testing.T) {
	ctx := context.Background()
	s := &flakyStore{MemStore: audittest.NewMemStore()}
	l := &audit.Log{Store: s}
	for i := range 5 {
		s.fail = i == 2
		err := l.Record(ctx, "u-1", "staff", "case.read", "", nil)
		if (err != nil) != (i == 2) {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if r, err := audit.Verify(ctx, s); err != nil || !r.OK || r.Entries != 5 {
		t.Errorf("Verify: %+v, %v", r, err)
	}
}

func TestVerifyTampering(t *testing.T) {
	ctx := context.Background()
	rehash := func(e *audit.Entry) { e.Hash = e.ComputeHash() }
	tests := []struct {
		name   string
		tamper func(m map[int64]audit.Entry)
		seq    int64
		reason string
	}{
		{"edited detail", func(m map[int64]audit.Entry) {
			e := m[4]
			e.Detail = map[string]string{"i": "999"}
			m[4] = e
		}, 4, audit.ReasonHash},
		{"edited actor", func(m map[int64]audit.Entry) {
			e := m[1]
			e.Actor = "someone-else"
			m[1] = e
		}, 1, audit.ReasonHash},
		{"edited and re-hashed", func(m map[int64]audit.Entry) {
			e := m[4]
			e.Action = "case.list"
			rehash(&e)
			m[4] = e
		}, 5, audit.ReasonPrev},
		{"deleted", func(m map[int64]audit.Entry) { delete(m, 6) }, 6, audit.ReasonGap},
		{"first deleted", func(m map[int64]audit.Entry) { delete(m, 1) }, 1, audit.ReasonGap},
		{"two swapped", func(m map[int64]audit.Entry) {
			a, b := m[4], m[3]
			a.Seq, b.Seq = 3, 4 // the stored key stays
			m[3], m[4] = a, b
		}, 3, audit.ReasonHash},
		{"two swapped, renumbered and re-hashed", func(m map[int64]audit.Entry) {
			a, b := m[4], m[3]
			a.Seq, b.Seq = 3, 4
			rehash(&a)
			rehash(&b)
			m[3], m[4] = a, b
		}, 3, audit.ReasonPrev},
		{"forged at the end, wrong prev", func(m map[int64]audit.Entry) {
			e := audit.Entry{Seq: 11, At: t0, Actor: "u-x", Action: "case.read", Prev: m[9].Hash}
			rehash(&e)
			m[11] = e
		}, 11, audit.ReasonPrev},
		{"forged first entry with a prev", func(m map[int64]audit.Entry) {
			e := m[1]
			e.Prev = m[2].Hash
			rehash(&e)
			m[1] = e
		}, 1, audit.ReasonPrev},
		{"seq field changed", func(m map[int64]audit.Entry) {
			e := m[7]
			e.Seq = 70
			m[7] = e
		}, 7, audit.ReasonGap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := audittest.NewMemStore()
			l := &audit.Log{Store: s}
			for i := range 10 {
				if err := l.Record(ctx, "u-1", "staff", "case.read", "", map[string]string{"i": fmt.Sprint(i)}); err != nil {
					t.Fatal(err)
				}
			}
			tt.tamper(s.Entries)
			r, err := audit.Verify(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			if r.OK || r.FirstBroken == nil || r.FirstBroken.Seq != tt.seq || r.FirstBroken.Reason != tt.reason {
				t.Errorf("report %+v, broken %+v; want seq %d: %s", r, r.FirstBroken, tt.seq, tt.reason)
			}
		})
	}
}

// malformedStore reports entry 3 as undecodable.
type malformedStore struct{ *audittest.MemStore }

func (s malformedStore) Each(ctx context.Context, from int64, fn func(audit.Entry) error) error {
	return s.MemStore.Each(ctx, from, func(e audit.Entry) error {
		if e.Seq == 3 {
			return &audit.MalformedError{Seq: 3, Err: errors.New("detail is a number")}
		}
		return fn(e)
	})
}

func TestVerifyMalformed(t *testing.T) {
	ctx := context.Background()
	s := audittest.NewMemStore()
	l := &audit.Log{Store: s}
	for range 5 {
		if err := l.Record(ctx, "u-1", "staff", "case.read", "", nil); err != nil {
			t.Fatal(err)
		}
	}
	r, err := audit.Verify(ctx, malformedStore{s})
	if err != nil || r.OK || r.FirstBroken == nil || r.FirstBroken.Seq != 3 || r.FirstBroken.Reason != audit.ReasonMalformed || r.Entries != 3 {
		t.Errorf("Verify: %+v %+v, %v", r, r.FirstBroken, err)
	}
}

func TestList(t *testing.T) {
	ctx := context.Background()
	l := &audit.Log{Store: audittest.NewMemStore()}
	for i := range 1200 {
		if err := l.Record(ctx, "u-1", "staff", "case.read", fmt.Sprintf("QF-330782-2026-%06d", i%2), nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		q    audit.Query
		want int
	}{{audit.Query{}, audit.DefaultLimit}, {audit.Query{Limit: 5000}, audit.MaxLimit}, {audit.Query{After: -5, Limit: 3}, 3}} {
		es, err := l.List(ctx, tt.q)
		if err != nil || len(es) != tt.want || es[0].Seq != 1 {
			t.Errorf("List(%+v): %d entries, %v", tt.q, len(es), err)
		}
	}
}

func Example() {
	ctx := context.Background()
	store := audittest.NewMemStore() // storage/mongo.NewAuditStore(db) in the server
	log := &audit.Log{Store: store}
	_ = log.Record(ctx, "u-7", "staff", "case.read", "QF-330782-2026-000123", nil)
	_ = log.Record(ctx, "u-7", "staff", "evidence.download", "QF-330782-2026-000123", map[string]string{"evidence": "ev-2"})

	// Someone edits the first entry in the database.
	e := store.Entries[1]
	e.Actor = "u-8"
	store.Entries[1] = e

	r, _ := audit.Verify(ctx, store)
	fmt.Println(r.Entries, r.OK, r.FirstBroken.Seq, r.FirstBroken.Reason)
	// Output: 1 false 1 哈希不符（条目内容被改动） / hash mismatch: the entry was altered
}
