package intake_test

import (
	"reflect"
	"testing"

	"github.com/qingfeng-zj/qingfeng/intake"
)

func TestEvidenceRepeats(t *testing.T) {
	held := intake.Evidence{ID: "e1", ObjectKey: "evidence/c/1", SHA256Received: "aa", UploadedBy: "reporter"}
	with := func(f func(*intake.Evidence)) intake.Evidence {
		e := held
		e.ID, e.ObjectKey = "new", "evidence/c/2"
		f(&e)
		return e
	}
	tests := []struct {
		name string
		held intake.Evidence
		ev   intake.Evidence
		want bool
	}{
		{"the same bytes by the same uploader", held, with(func(*intake.Evidence) {}), true},
		{"other bytes", held, with(func(e *intake.Evidence) { e.SHA256Received = "ab" }), false},
		{"the hash in upper case is other bytes to no one", held, with(func(e *intake.Evidence) { e.SHA256Received = "AA" }), false},
		{"another uploader", held, with(func(e *intake.Evidence) { e.UploadedBy = "liaison:u7" }), false},
		{"another staff member", func() intake.Evidence { h := held; h.UploadedBy = "staff:u1"; return h }(),
			with(func(e *intake.Evidence) { e.UploadedBy = "staff:u2" }), false},
		{"a purged entry", func() intake.Evidence { h := held; h.ObjectKey = ""; return h }(), with(func(*intake.Evidence) {}), false},
		{"no hash", func() intake.Evidence { h := held; h.SHA256Received = ""; return h }(),
			with(func(e *intake.Evidence) { e.SHA256Received = "" }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.held.Repeats(tt.ev); got != tt.want {
				t.Errorf("Repeats = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMergeEvidence(t *testing.T) {
	ev := func(id, hash, by string) intake.Evidence {
		return intake.Evidence{ID: id, ObjectKey: "evidence/c/" + id, SHA256Received: hash, UploadedBy: by}
	}
	held := []intake.Evidence{ev("h1", "aa", "reporter"), ev("h2", "bb", "staff:u1")}
	ids := func(evs []intake.Evidence) []string {
		out := []string{}
		for _, e := range evs {
			out = append(out, e.ID)
		}
		return out
	}
	tests := []struct {
		name          string
		evs           []intake.Evidence
		wantAdd, kept []string
	}{
		{"all new", []intake.Evidence{ev("n1", "cc", "reporter")}, []string{"n1"}, []string{"n1"}},
		{"a repeat", []intake.Evidence{ev("n1", "aa", "reporter")}, []string{}, []string{"h1"}},
		{"another's bytes", []intake.Evidence{ev("n1", "bb", "reporter")}, []string{"n1"}, []string{"n1"}},
		{"twice in the batch, then held", []intake.Evidence{ev("n1", "cc", "reporter"), ev("n2", "cc", "reporter"), ev("n3", "aa", "reporter")},
			[]string{"n1"}, []string{"n1", "n1", "h1"}},
		{"nothing", nil, []string{}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			add, kept := intake.MergeEvidence(held, tt.evs)
			if !reflect.DeepEqual(ids(add), tt.wantAdd) || !reflect.DeepEqual(ids(kept), tt.kept) {
				t.Errorf("add %v, kept %v; want %v, %v", ids(add), ids(kept), tt.wantAdd, tt.kept)
			}
		})
	}
}
