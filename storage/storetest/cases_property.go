package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/triage"
)

// caseModel is what a case should be after a sequence of store calls.
type caseModel struct {
	version        int64
	status         intake.Status
	assignee, unit string
	steps, earlier int
	transfer       bool
	evBytes        int64
	evidence       int
	reporterN      int64
	newActivity    bool
	escalated      []string
}

// testCasesProperty runs seeded random sequences of workflow steps, assignments,
// hand-overs, uploads (a third of them bytes sent before), reporter messages, reads
// and escalations against one case, at the current version or a stale one, and checks
// each result and the case afterwards against a model: a step at a stale version or
// from the wrong status changes nothing; reporter activity and escalation never
// change the version; a file its uploader stored before changes nothing and is
// answered with that entry.
func testCasesProperty(t *testing.T, s CaseStore) {
	ctx := context.Background()
	const seed, steps, maxBytes = 20261201, 150, 100
	rng := rand.New(rand.NewPCG(seed, seed))
	statuses := []intake.Status{intake.StatusRegistered, intake.StatusAccepted, intake.StatusDisposed, intake.StatusConcluded}
	units := []string{"unit-a", "unit-b", "unit-c"}
	c := NewCase(1, "unit-a", "330782", base)
	mustCreate(t, s, c)
	m := caseModel{version: c.Version, status: c.Status, unit: c.UnitID}
	storedBy := map[string]string{} // uploader and received hash → the entry's id
	var uploads []string            // received hashes stored, to send again
	at := base
	for step := range steps {
		at = at.Add(time.Minute)
		v := m.version + int64(rng.IntN(3)) - 1 // stale, current or ahead
		if rng.IntN(2) == 0 {
			v = m.version
		}
		cur, err := s.CaseByID(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		var desc, want string
		switch op := rng.IntN(7); op {
		case 0:
			from, to := statuses[rng.IntN(len(statuses))], statuses[rng.IntN(len(statuses))]
			if rng.IntN(2) == 0 {
				from = m.status
			}
			desc = fmt.Sprintf("transition %s→%s at v%d", from, to, v)
			err = s.ApplyTransition(ctx, c.ID, v, intake.Transition{Action: "step", From: from, To: to, By: "u", At: at},
				triage.TransitionFields{Disposition: ptr(fmt.Sprint("d", step)), NextDue: "2026-04-01", CaseNumber: c.Number, UnitID: m.unit})
			if v != m.version || from != m.status {
				want = qingfeng.ECONFLICT
			} else {
				m.status, m.version, m.steps = to, m.version+1, m.steps+1
			}
		case 1:
			who := []string{"", "u1", "u2"}[rng.IntN(3)]
			desc = fmt.Sprintf("assign %q at v%d", who, v)
			err = s.Assign(ctx, c.ID, v, who, intake.Transition{Action: "assign", By: "lead", At: at})
			if v != m.version {
				want = qingfeng.ECONFLICT
			} else {
				m.assignee, m.version, m.steps = who, m.version+1, m.steps+1
			}
		case 2:
			to := units[rng.IntN(len(units))]
			var pending *intake.PendingTransfer
			if rng.IntN(2) == 0 {
				pending = &intake.PendingTransfer{From: m.unit, To: to, By: "lead", At: at, Due: "2026-03-30"}
			}
			desc = fmt.Sprintf("hand to %s (pending %v) at v%d", to, pending != nil, v)
			seen := *cur
			seen.Version = v
			err = s.Hand(ctx, &seen, intake.Decision{UnitID: to, DecidedAt: at}, pending, intake.Transition{Action: "transfer", By: "lead", At: at})
			if v != m.version {
				want = qingfeng.ECONFLICT
			} else {
				m.unit, m.version, m.steps, m.earlier, m.transfer = to, m.version+1, m.steps+1, m.earlier+1, pending != nil
				if pending != nil {
					m.escalated = slices.DeleteFunc(m.escalated, func(k string) bool { return k == "transfer" })
				}
			}
		case 3:
			e := ev(fmt.Sprint("ev-", step), int64(rng.IntN(30)))
			if rng.IntN(2) == 0 {
				e.UploadedBy = "staff:u1"
			}
			if len(uploads) > 0 && rng.IntN(3) == 0 {
				// The same bytes again, by the same uploader or the other one.
				e.SHA256Received = uploads[rng.IntN(len(uploads))]
			}
			desc = fmt.Sprintf("upload %d bytes (%s) by %s", e.Size, e.SHA256Received, e.UploadedBy)
			var kept []intake.Evidence
			kept, err = s.AddEvidence(ctx, c.ID, []intake.Evidence{e}, maxBytes)
			stored, repeat := storedBy[e.UploadedBy+" "+e.SHA256Received]
			switch {
			case repeat:
				if err == nil && (len(kept) != 1 || kept[0].ID != stored) {
					t.Fatalf("step %d, %s: answered %+v, want the entry %s", step, desc, kept, stored)
				}
			case m.evBytes+e.Size > maxBytes:
				want = qingfeng.ETOOLARGE
			default:
				m.evBytes, m.evidence, m.version = m.evBytes+e.Size, m.evidence+1, m.version+1
				if e.UploadedBy == intake.UploaderReporter {
					m.reporterN, m.newActivity = m.reporterN+1, true
				}
				storedBy[e.UploadedBy+" "+e.SHA256Received] = e.ID
				uploads = append(uploads, e.SHA256Received)
				if err == nil && (len(kept) != 1 || kept[0].ID != e.ID) {
					t.Fatalf("step %d, %s: answered %+v, want the new entry", step, desc, kept)
				}
			}
		case 4:
			desc = "reporter message"
			err = s.AddMessage(ctx, &intake.Message{ID: fmt.Sprint("m-", step), CaseID: c.ID, From: intake.UploaderReporter, Kind: "message", Body: "补充", CreatedAt: at})
			m.reporterN, m.newActivity = m.reporterN+1, true
		case 5:
			unit, n := units[rng.IntN(len(units))], m.reporterN-int64(rng.IntN(2))
			if rng.IntN(2) == 0 {
				unit = m.unit
			}
			desc = fmt.Sprintf("%s reads at count %d", unit, n)
			var ok bool
			ok, err = s.MarkActivitySeen(ctx, c.ID, unit, n, at)
			wantOK := unit == m.unit && n == m.reporterN && m.newActivity
			if wantOK {
				m.newActivity = false
			}
			if err == nil && ok != wantOK {
				t.Fatalf("step %d, %s: cleared %v, want %v", step, desc, ok, wantOK)
			}
		case 6:
			kind := []string{"acceptance", "feedback", "transfer"}[rng.IntN(3)]
			desc = "escalate " + kind
			var created bool
			created, err = s.Escalate(ctx, triage.Overdue{CaseID: c.ID, Number: c.Number, UnitID: m.unit, Kind: kind, Due: "2026-03-20"},
				triage.Notification{ID: fmt.Sprintf("%s:%s:%d", c.ID, kind, step), UnitID: "parent", Case: c.Number, CaseUnit: m.unit, Kind: kind, Due: "2026-03-20", CreatedAt: at})
			if err == nil && !created {
				t.Fatalf("step %d, %s: a new notification id was not created", step, desc)
			}
			if !slices.Contains(m.escalated, kind) {
				m.escalated = append(m.escalated, kind)
			}
		}
		if got := qingfeng.ErrorCode(err); got != want {
			t.Fatalf("step %d, %s: error code %q, want %q (%v)", step, desc, got, want, err)
		}
		got, err := s.CaseByID(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		have := caseModel{version: got.Version, status: got.Status, assignee: got.Assignee, unit: got.UnitID,
			steps: len(got.Transitions), earlier: len(got.EarlierDecisions), transfer: got.Transfer != nil,
			evBytes: got.EvidenceBytes, evidence: len(got.Evidence), reporterN: got.ReporterActivityN,
			newActivity: got.NewActivity, escalated: got.Escalated}
		if len(m.escalated) == 0 {
			m.escalated = nil
		}
		if len(have.escalated) == 0 {
			have.escalated = nil // none: storage/mongo may keep an empty array
		}
		if !reflect.DeepEqual(have, m) {
			t.Fatalf("step %d, %s:\n have %+v\nmodel %+v", step, desc, have, m)
		}
	}
}
