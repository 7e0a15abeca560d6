// Package audittest holds an in-memory audit.Store and the conformance tests every
// audit.Store must pass.
package audittest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/audit"
)

// MemStore is an in-memory audit.Store. Entries is exposed so that tests can tamper
// with it; lock Mu when doing so concurrently.
type MemStore struct {
	Mu      sync.Mutex
	Entries map[int64]audit.Entry
}

var _ audit.Store = (*MemStore)(nil)

// NewMemStore returns an empty store.
func NewMemStore() *MemStore { return &MemStore{Entries: map[int64]audit.Entry{}} }

func clone(e audit.Entry) audit.Entry {
	e.Detail = maps.Clone(e.Detail)
	return e
}

// Append implements audit.Store.
func (s *MemStore) Append(_ context.Context, e audit.Entry) error {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	if _, ok := s.Entries[e.Seq]; ok {
		return fmt.Errorf("append %d: %w", e.Seq, audit.ErrSeqTaken)
	}
	s.Entries[e.Seq] = clone(e)
	return nil
}

// Get implements audit.Store.
func (s *MemStore) Get(_ context.Context, seq int64) (audit.Entry, error) {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	e, ok := s.Entries[seq]
	if !ok {
		return audit.Entry{}, fmt.Errorf("get %d: %w", seq, audit.ErrNotFound)
	}
	return clone(e), nil
}

// Last implements audit.Store.
func (s *MemStore) Last(context.Context) (audit.Entry, bool, error) {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	if len(s.Entries) == 0 {
		return audit.Entry{}, false, nil
	}
	return clone(s.Entries[slices.Max(slices.Collect(maps.Keys(s.Entries)))]), true, nil
}

func (s *MemStore) sorted(from int64) []audit.Entry {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	var out []audit.Entry
	for _, k := range slices.Sorted(maps.Keys(s.Entries)) {
		if k >= from {
			out = append(out, clone(s.Entries[k]))
		}
	}
	return out
}

// Each implements audit.Store.
func (s *MemStore) Each(ctx context.Context, fromSeq int64, fn func(audit.Entry) error) error {
	for _, e := range s.sorted(fromSeq) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// List implements audit.Store.
func (s *MemStore) List(_ context.Context, q audit.Query) ([]audit.Entry, error) {
	var out []audit.Entry
	for _, e := range s.sorted(q.After + 1) {
		if len(out) == q.Limit {
			break
		}
		if q.Case == "" || e.Case == q.Case {
			out = append(out, e)
		}
	}
	return out, nil
}

// TestStore runs the conformance tests against stores made by newStore, each empty.
func TestStore(t *testing.T, newStore func(t *testing.T) audit.Store) {
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 8, 0, 0, 123_000_000, time.UTC)
	entry := func(seq int64, prev, cs string) audit.Entry {
		e := audit.Entry{Seq: seq, At: at.Add(time.Duration(seq) * time.Second), Actor: "u-1", Role: "staff",
			Action: "case.read", Case: cs, Detail: map[string]string{"n": fmt.Sprint(seq)}, Prev: prev}
		e.Hash = e.ComputeHash()
		return e
	}
	chain := func(t *testing.T, s audit.Store, n int) []audit.Entry {
		t.Helper()
		var es []audit.Entry
		prev := ""
		for i := 1; i <= n; i++ {
			e := entry(int64(i), prev, fmt.Sprintf("QF-330782-2026-%06d", i%3))
			if err := s.Append(ctx, e); err != nil {
				t.Fatalf("append %d: %v", i, err)
			}
			es, prev = append(es, e), e.Hash
		}
		return es
	}
	same := func(t *testing.T, got, want audit.Entry) {
		t.Helper()
		if got.Seq != want.Seq || !got.At.Equal(want.At) || got.Actor != want.Actor || got.Role != want.Role ||
			got.Action != want.Action || got.Case != want.Case || !maps.Equal(got.Detail, want.Detail) ||
			got.Prev != want.Prev || got.Hash != want.Hash {
			t.Errorf("got  %+v\nwant %+v", got, want)
		}
		if got.ComputeHash() != want.Hash {
			t.Errorf("entry %d does not hash to its stored hash after a round trip", got.Seq)
		}
	}

	t.Run("two logs, 32 writers: one unbroken chain", func(t *testing.T) {
		// Two Logs stand for two server processes on one store; 16 goroutines each
		// record at once. Every entry lands once, in one chain that verifies.
		s := newStore(t)
		logs := []*audit.Log{{Store: s}, {Store: s}}
		var wg sync.WaitGroup
		errs := make(chan error, 32*10)
		for g := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 10 {
					if err := logs[g%2].Record(ctx, fmt.Sprintf("u-%d", g), "staff", "case.read", "", map[string]string{"i": fmt.Sprint(i)}); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		r, err := audit.Verify(ctx, s)
		if err != nil || !r.OK || r.Entries != 320 {
			t.Errorf("verify: %+v, %v", r, err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		s := newStore(t)
		if _, ok, err := s.Last(ctx); ok || err != nil {
			t.Errorf("Last: ok %v, err %v", ok, err)
		}
		if _, err := s.Get(ctx, 1); !errors.Is(err, audit.ErrNotFound) {
			t.Errorf("Get: %v, want ErrNotFound", err)
		}
		r, err := audit.Verify(ctx, s)
		if err != nil || !r.OK || r.Entries != 0 {
			t.Errorf("Verify: %+v, %v", r, err)
		}
	})
	t.Run("append, get, last, each", func(t *testing.T) {
		s := newStore(t)
		es := chain(t, s, 12)
		got, err := s.Get(ctx, 5)
		if err != nil {
			t.Fatal(err)
		}
		same(t, got, es[4])
		last, ok, err := s.Last(ctx)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		same(t, last, es[11])
		var seen []int64
		if err := s.Each(ctx, 4, func(e audit.Entry) error {
			seen = append(seen, e.Seq)
			same(t, e, es[e.Seq-1])
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if want := []int64{4, 5, 6, 7, 8, 9, 10, 11, 12}; !slices.Equal(seen, want) {
			t.Errorf("Each from 4: %v, want %v", seen, want)
		}
		stop := errors.New("stop")
		n := 0
		if err := s.Each(ctx, 1, func(audit.Entry) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
			t.Errorf("Each did not stop at fn's error: %v after %d", err, n)
		}
		if r, err := audit.Verify(ctx, s); err != nil || !r.OK || r.Entries != 12 || r.Head != es[11].Hash || r.HeadSeq != 12 {
			t.Errorf("Verify: %+v, %v", r, err)
		}
	})
	t.Run("a taken seq", func(t *testing.T) {
		s := newStore(t)
		es := chain(t, s, 3)
		dup := entry(3, es[1].Hash, "")
		dup.Actor = "u-2"
		dup.Hash = dup.ComputeHash()
		if err := s.Append(ctx, dup); !errors.Is(err, audit.ErrSeqTaken) {
			t.Errorf("Append of a taken seq: %v, want ErrSeqTaken", err)
		}
		got, _ := s.Get(ctx, 3)
		same(t, got, es[2])
	})
	t.Run("list", func(t *testing.T) {
		s := newStore(t)
		chain(t, s, 10)
		seqs := func(q audit.Query) []int64 {
			t.Helper()
			es, err := s.List(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var out []int64
			for _, e := range es {
				out = append(out, e.Seq)
			}
			return out
		}
		tests := []struct {
			q    audit.Query
			want []int64
		}{
			{audit.Query{Limit: 3}, []int64{1, 2, 3}},
			{audit.Query{After: 8, Limit: 5}, []int64{9, 10}},
			{audit.Query{Case: "QF-330782-2026-000001", Limit: 100}, []int64{1, 4, 7, 10}},
			{audit.Query{Case: "QF-330782-2026-000001", After: 4, Limit: 2}, []int64{7, 10}},
			{audit.Query{Case: "QF-330782-2026-999999", Limit: 100}, nil},
		}
		for _, tt := range tests {
			if got := seqs(tt.q); !slices.Equal(got, tt.want) {
				t.Errorf("List(%+v) = %v, want %v", tt.q, got, tt.want)
			}
		}
	})
	t.Run("empty detail", func(t *testing.T) {
		s := newStore(t)
		e := audit.Entry{Seq: 1, At: at, Actor: audit.ActorSystem, Action: "case.escalate"}
		e.Hash = e.ComputeHash()
		if err := s.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		same(t, got, e)
	})
}
