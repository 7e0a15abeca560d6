package storetest

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/custody"
)

// Keys is the suite every custody.KeyStore passes: one key has one holder, under 16
// concurrent registrations too and after revocation; revoking once; listing oldest
// first.
func Keys(t *testing.T, newStore func(t *testing.T) custody.KeyStore) {
	run(t, newStore, []scenario[custody.KeyStore]{
		{"AddRevokeList", testKeysAddRevokeList},
		{"OneHolderConcurrently", testKeysOneHolderConcurrently},
	})
}

func recipient(i int, key string) custody.Recipient {
	return custody.Recipient{ID: fmt.Sprintf("rcp-%d", i), UserID: fmt.Sprintf("u-%d", i), Role: "custodian", Jurisdiction: "330782",
		Recipient: key, Label: "办公室电脑", AddedBy: "u-admin", AddedAt: base.Add(time.Duration(i) * time.Minute)}
}

func testKeysAddRevokeList(t *testing.T, s custody.KeyStore) {
	ctx := context.Background()
	if all, err := s.All(ctx); err != nil || len(all) != 0 {
		t.Fatalf("All on empty = %v, %v", all, err)
	}
	// Added out of order: All sorts by time.
	a, b := recipient(2, "age1aaaa"), recipient(1, "age1bbbb")
	b.Label = ""
	for _, r := range []custody.Recipient{a, b} {
		if err := s.Add(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, s.Add(ctx, recipient(3, "age1aaaa")), qingfeng.ECONFLICT) // another holder for a's key
	wantCode(t, s.Add(ctx, recipient(2, "age1cccc")), qingfeng.ECONFLICT) // a's id again
	all, err := s.All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantA, wantB := a, b
	wantA.AddedAt, wantB.AddedAt = a.AddedAt.UTC(), b.AddedAt.UTC()
	if !reflect.DeepEqual(all, []custody.Recipient{wantB, wantA}) {
		t.Fatalf("All = %+v\nwant %+v", all, []custody.Recipient{wantB, wantA})
	}
	at := base.Add(time.Hour)
	got, err := s.Revoke(ctx, a.ID, "u-admin2", at)
	if err != nil {
		t.Fatal(err)
	}
	if got.RevokedAt == nil || !got.RevokedAt.Equal(at) || got.RevokedBy != "u-admin2" || got.Recipient != a.Recipient {
		t.Errorf("Revoke returned %+v", got)
	}
	_, err = s.Revoke(ctx, a.ID, "u-admin2", at)
	wantCode(t, err, qingfeng.ECONFLICT)
	_, err = s.Revoke(ctx, "rcp-none", "u-admin2", at)
	wantCode(t, err, qingfeng.ENOTFOUND)
	// A revoked key stays claimed: it cannot come back under anyone.
	wantCode(t, s.Add(ctx, recipient(4, "age1aaaa")), qingfeng.ECONFLICT)
	all, _ = s.All(ctx)
	if len(all) != 2 || all[1].RevokedAt == nil || !all[1].RevokedAt.Equal(at) || all[0].RevokedAt != nil {
		t.Errorf("after revocation: %+v", all)
	}
}

func testKeysOneHolderConcurrently(t *testing.T, s custody.KeyStore) {
	ctx := context.Background()
	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = s.Add(ctx, recipient(i, "age1samekey")) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch qingfeng.ErrorCode(err) {
		case "":
			won++
		case qingfeng.ECONFLICT:
		default:
			t.Error(err)
		}
	}
	all, err := s.All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if won != 1 || len(all) != 1 {
		t.Errorf("%d registrations of one key won, %d stored; want 1", won, len(all))
	}
}
