package triage

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"time"
)

// Overdue is one step of a case past its deadline and not yet escalated.
type Overdue struct {
	CaseID string
	Number string
	UnitID string
	Kind   string // acceptance, feedback, transfer
	Due    string // YYYY-MM-DD
	// Key tells apart steps of one kind that can recur (each transfer); it makes the
	// notification's id. Empty: the kind.
	Key string
}

// Notification tells a unit that a step is overdue (the escalation job, to the parent
// of the case's unit), or that a case was transferred to it or returned to it (a
// hand-over: see TransferStore).
type Notification struct {
	ID     string `json:"id"` // "<case id>:<kind>": one per overdue step, ever; "<case id>:<step>@<ms>" per hand-over
	UnitID string `json:"unit_id"`
	Case   string `json:"case"` // case number
	// CaseUnit is the unit handling the case (a step's), or the unit that handed it
	// over (a hand-over's).
	CaseUnit  string    `json:"case_unit"`
	Kind      string    `json:"kind"`
	Due       string    `json:"due"`
	CreatedAt time.Time `json:"created_at"`
}

// EscalationStore is what the escalation job needs of the database.
type EscalationStore interface {
	// OverdueSteps lists steps whose deadline is before today (YYYY-MM-DD, Asia/Shanghai)
	// and that have not been escalated.
	OverdueSteps(ctx context.Context, today string, limit int) ([]Overdue, error)
	// Escalate records the notification (its id makes a second one impossible), then
	// marks the case's step as escalated. It reports whether this call escalated it.
	Escalate(ctx context.Context, o Overdue, n Notification) (bool, error)
}

// Leases is what a periodic job needs of the lease store (storage/*'s LeaseStore).
type Leases interface {
	// AcquireLease takes or renews the named lease for holder until the given time,
	// if it is free, expired or already holder's.
	AcquireLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error)
}

// Escalator finds overdue steps, marks the cases and notifies the parent units. Several
// server instances can run it: a lease in the database lets one work at a time, and
// each overdue step is escalated exactly once, across restarts.
type Escalator struct {
	Store  EscalationStore
	Leases Leases
	// Parent names the unit to notify for a case's unit: its parent, or the unit
	// itself at the top.
	Parent func(unitID string) string
	Log    *slog.Logger
	Now    func() time.Time
	Holder string // this instance; random when empty
	Lease  time.Duration
}

const escalationLease = "triage.escalation"

func (e *Escalator) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

// RunOnce escalates what is overdue now, if this instance holds the lease. It returns
// how many steps it escalated.
func (e *Escalator) RunOnce(ctx context.Context) (int, error) {
	if e.Holder == "" {
		e.Holder = "escalator-" + rand.Text()[:10]
	}
	lease := e.Lease
	if lease <= 0 {
		lease = 2 * time.Minute
	}
	now := e.now()
	ok, err := e.Leases.AcquireLease(ctx, escalationLease, e.Holder, now, now.Add(lease))
	if err != nil || !ok {
		return 0, err
	}
	today := now.In(shanghai).Format(time.DateOnly)
	n := 0
	for {
		steps, err := e.Store.OverdueSteps(ctx, today, 200)
		if err != nil {
			return n, err
		}
		progressed := false
		for _, o := range steps {
			unit := e.Parent(o.UnitID)
			key := o.Key
			if key == "" {
				key = o.Kind
			}
			done, err := e.Store.Escalate(ctx, o, Notification{ID: o.CaseID + ":" + key, UnitID: unit, Case: o.Number,
				CaseUnit: o.UnitID, Kind: o.Kind, Due: o.Due, CreatedAt: now})
			if err != nil {
				return n, fmt.Errorf("escalate %s %s: %w", o.Number, o.Kind, err)
			}
			progressed = true
			if done {
				n++
				if e.Log != nil {
					e.Log.WarnContext(ctx, "overdue step escalated", "event", "case.overdue", "case", o.Number, "kind", o.Kind,
						"due", o.Due, "unit", o.UnitID, "notified", unit)
				}
			}
		}
		if len(steps) < 200 || !progressed {
			return n, nil
		}
	}
}
