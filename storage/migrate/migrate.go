// Package migrate copies a Qingfeng database and its evidence objects from one store
// to another — the embedded default's SQLite file to MongoDB and back, or an earlier
// release's FerretDB data directory to SQLite (issue 12, item 4) — and then verifies
// the copy: the same records of every kind, field by field, every object's SHA-256,
// and an intact audit chain on the target.
//
// It copies kind by kind, each in its store's key order, preserving ids, versions,
// hashes and timestamps exactly. Every write is an insert-if-absent (Store's Put
// methods), so a migration that was killed is resumed by running it again: what the
// target holds is skipped, and the verification at the end compares everything.
//
// What is copied: users, the audit chain, calendar years, routing rules and their
// version, units, organizations, custody recipients, disclosure requests and re-seal
// tasks, counters (case numbers), cases, messages, escalation notifications, the donation ledger (entries, balances, goods
// verifications, photos, published statements, corrections, alerts), and the objects
// cases and ledger photos refer to.
// What is not, by design: idempotency records (of filing and of ledger appends) and
// leases of periodic jobs — transient: a record lives a day, a lease minutes; staff
// sessions (staff sign in again after a move); case events not yet relayed to
// webhooks (relay them first, or accept that a move does not re-send them).
// Run refuses a source holding undelivered events unless Options.AllowIncomplete is
// set, so nothing is left behind silently.
//
// This package knows stores only through Store, which storage/sqlite and storage/mongo
// implement (each with a compile-time check); it must not import a driver. Run it
// with no server writing to the source: a record changed after it was copied shows as
// a difference at verification.
package migrate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/audit"
	"github.com/qingfeng-zj/qingfeng/custody"
	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/triage"
)

// Counter is one named sequence (case numbers per year and unit).
type Counter struct {
	Name string
	Seq  int64
}

// LedgerHead is the cached balance of one organization's donation ledger.
type LedgerHead struct {
	Org     string
	Balance donations.Balance
}

// PhotoBatch is one upload of ledger photos (影像资料) and its files.
type PhotoBatch struct {
	ID, Org string
	At      time.Time
	Photos  []intake.Evidence
}

// Correction notes a ledger entry recorded after its month's statement was published.
type Correction struct {
	Org, Month string
	Seq        int64
}

// Store is one database as a migration sees it: every kind it copies, listed in key
// order, and written insert-if-absent. A Put never changes a record the store already
// holds (PutCounters raises a counter to the given value, never lowers it) and writes
// what it is given verbatim: no events, no audit entries, no derived updates.
type Store interface {
	EachUser(ctx context.Context, fn func(*accounts.User) error) error
	PutUsers(ctx context.Context, us []*accounts.User) error

	// The audit chain: audit.Store's Each and Last, and PutAudit, which writes
	// entries verbatim (seq, time, prev and hash as they are).
	audit.Iterator
	Last(ctx context.Context) (e audit.Entry, ok bool, err error)
	PutAudit(ctx context.Context, es []audit.Entry) error

	CalendarYears(ctx context.Context) ([]triage.StoredYear, error)
	PutCalendarYears(ctx context.Context, ys []triage.StoredYear) error

	// RuleSet is every rule (retired ones too) and the current version, as
	// routing.RuleStore's Load; PutRuleSet adds the rules absent and sets the version
	// if the store has none.
	RuleSet(ctx context.Context) (routing.RuleSet, error)
	PutRuleSet(ctx context.Context, set routing.RuleSet) error

	EachOrganization(ctx context.Context, fn func(routing.Organization) error) error
	PutOrganizations(ctx context.Context, orgs []routing.Organization) error
	Units(ctx context.Context) ([]routing.RegistryUnit, error)
	PutUnits(ctx context.Context, units []routing.RegistryUnit) error

	Recipients(ctx context.Context) ([]custody.Recipient, error)
	PutRecipients(ctx context.Context, rs []custody.Recipient) error
	EachDisclosure(ctx context.Context, fn func(custody.Disclosure) error) error
	PutDisclosures(ctx context.Context, ds []custody.Disclosure) error
	EachResealTask(ctx context.Context, fn func(custody.ResealTask) error) error
	PutResealTasks(ctx context.Context, ts []custody.ResealTask) error

	Counters(ctx context.Context) ([]Counter, error)
	PutCounters(ctx context.Context, cs []Counter) error

	EachCase(ctx context.Context, fn func(*intake.Case) error) error
	PutCases(ctx context.Context, cs []*intake.Case) error
	EachMessage(ctx context.Context, fn func(*intake.Message) error) error
	PutMessages(ctx context.Context, ms []*intake.Message) error
	EachNotification(ctx context.Context, fn func(triage.Notification) error) error
	PutNotifications(ctx context.Context, ns []triage.Notification) error

	// The donation ledger. Entries are written without recomputing a head; the heads
	// come after them.
	EachLedgerEntry(ctx context.Context, fn func(donations.Entry) error) error
	PutLedgerEntries(ctx context.Context, es []donations.Entry) error
	EachLedgerHead(ctx context.Context, fn func(LedgerHead) error) error
	PutLedgerHeads(ctx context.Context, hs []LedgerHead) error
	EachVerification(ctx context.Context, fn func(donations.Verification) error) error
	PutVerifications(ctx context.Context, vs []donations.Verification) error
	EachPhotoBatch(ctx context.Context, fn func(PhotoBatch) error) error
	PutPhotoBatches(ctx context.Context, bs []PhotoBatch) error
	EachStatement(ctx context.Context, fn func(donations.PublishedStatement) error) error
	PutStatements(ctx context.Context, ps []donations.PublishedStatement) error
	EachCorrection(ctx context.Context, fn func(Correction) error) error
	PutCorrections(ctx context.Context, cs []Correction) error
	EachAlert(ctx context.Context, fn func(donations.Alert) error) error
	PutAlerts(ctx context.Context, as []donations.Alert) error

	// Uncopied counts the records this package does not copy, by kind, leaving out
	// the transient ones (idempotency, leases, sessions): case events not delivered.
	Uncopied(ctx context.Context) (map[string]int64, error)
}

// Objects is an object store (storage/blob.Store).
type Objects interface {
	Get(ctx context.Context, key string) (io.ReadCloser, int64, error)
	Put(ctx context.Context, key string, r io.Reader, contentType string) (int64, error)
}

// Side is one end of a migration.
type Side struct {
	Store   Store
	Objects Objects
}

// Options tune a migration.
type Options struct {
	// Progress receives a plain progress line per kind, at most about once a second
	// and when the kind is done. Nil discards them.
	Progress io.Writer
	// AllowIncomplete copies even when the source holds records this package does
	// not copy (Store.Uncopied); they stay behind in the source.
	AllowIncomplete bool
	// BatchSize is how many records one Put writes; 0 means 500.
	BatchSize int
}

// Report is what a migration copied and verified.
type Report struct {
	Kinds     []KindReport
	Objects   int64  // objects verified on the target
	Copied    int64  // of which copied by this run
	AuditHead string // the hash of the target's last audit entry, chain verified
	Left      map[string]int64
}

// KindReport is one kind's outcome.
type KindReport struct {
	Kind     string
	Source   int64 // records in the source
	Inserted int64 // records this run wrote (the rest the target already held)
}

// ErrForeignTarget is Run's error for a target holding another database's records:
// its audit chain starts with another entry than the source's.
var ErrForeignTarget = errors.New("migrate: the target holds another database (its audit chain is not the source's)")

// sameChain refuses a target whose first audit entry is not the source's: a store
// already in use, whose records a migration would mix with the source's.
func sameChain(ctx context.Context, src, dst Store) error {
	a, okA, err := firstEntry(ctx, src)
	if err != nil {
		return fmt.Errorf("migrate: read the source's audit chain: %w", err)
	}
	b, okB, err := firstEntry(ctx, dst)
	if err != nil {
		return fmt.Errorf("migrate: read the target's audit chain: %w", err)
	}
	if okB && (!okA || a.Hash != b.Hash) {
		return ErrForeignTarget
	}
	return nil
}

var errStop = errors.New("stop")

func firstEntry(ctx context.Context, s Store) (audit.Entry, bool, error) {
	var first audit.Entry
	found := false
	err := s.Each(ctx, 1, func(e audit.Entry) error {
		first, found = e, true
		return errStop
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return first, found, err
}

// ErrIncomplete is Run's error for a source with records it does not copy.
var ErrIncomplete = errors.New("migrate: the source holds records that are not copied")

// A MismatchError is Verify's: source and target differ.
type MismatchError struct {
	Kind   string
	Key    string // the first record or object that differs; "" when only counts do
	Reason string
}

func (e *MismatchError) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("migrate: verify %s: %s", e.Kind, e.Reason)
	}
	return fmt.Sprintf("migrate: verify %s %s: %s", e.Kind, e.Key, e.Reason)
}

const contentType = "application/octet-stream" // what intake stores every object as

// Run copies everything from src to dst and verifies the copy. Running it again after
// an interruption continues where it stopped. ctx cancels it between two writes; what
// was written stays and is skipped by the next run.
func Run(ctx context.Context, src, dst Side, opt Options) (Report, error) {
	var rep Report
	m := &migration{src: src, dst: dst, opt: opt, progress: newProgress(opt.Progress)}
	if m.opt.BatchSize <= 0 {
		m.opt.BatchSize = 500
	}
	left, err := src.Store.Uncopied(ctx)
	if err != nil {
		return rep, fmt.Errorf("migrate: count what cannot be copied: %w", err)
	}
	rep.Left = left
	if len(left) > 0 && !opt.AllowIncomplete {
		return rep, fmt.Errorf("%w: %v", ErrIncomplete, left)
	}
	if err := sameChain(ctx, src.Store, dst.Store); err != nil {
		return rep, err
	}
	for _, k := range kinds {
		kr, err := k.copy(ctx, m)
		rep.Kinds = append(rep.Kinds, kr)
		if err != nil {
			return rep, fmt.Errorf("migrate: copy %s: %w", k.name, err)
		}
	}
	if rep.Objects, rep.Copied, err = m.copyObjects(ctx); err != nil {
		return rep, err
	}
	head, err := Verify(ctx, src, dst, opt.Progress)
	rep.AuditHead = head
	return rep, err
}

type migration struct {
	src, dst Side
	opt      Options
	progress *progress
}

// A kind is one sort of record, with its copy and its digest.
type kind struct {
	name string
	copy func(ctx context.Context, m *migration) (KindReport, error)
	// digests calls fn with the key and digest of every record of the kind in s.
	digests func(ctx context.Context, s Store, fn func(key, digest string) error) error
}

// streamed is a kind listed with an Each method and written with a Put method.
func streamed[T any](name string, key func(T) string, each func(Store) func(context.Context, func(T) error) error,
	put func(Store) func(context.Context, []T) error) kind {
	return kind{
		name: name,
		copy: func(ctx context.Context, m *migration) (KindReport, error) {
			kr := KindReport{Kind: name}
			have, err := keys(ctx, each(m.dst.Store), key)
			if err != nil {
				return kr, err
			}
			var batch []T
			flush := func() error {
				if len(batch) == 0 {
					return nil
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := put(m.dst.Store)(ctx, batch); err != nil {
					return err
				}
				kr.Inserted += int64(len(batch))
				batch = batch[:0]
				return nil
			}
			err = each(m.src.Store)(ctx, func(v T) error {
				kr.Source++
				if !have[key(v)] {
					batch = append(batch, v)
				}
				if len(batch) >= m.opt.BatchSize {
					if err := flush(); err != nil {
						return err
					}
				}
				m.progress.report(name, kr.Source, kr.Inserted, false)
				return nil
			})
			if err == nil {
				err = flush()
			}
			m.progress.report(name, kr.Source, kr.Inserted, err == nil)
			return kr, err
		},
		digests: func(ctx context.Context, s Store, fn func(key, digest string) error) error {
			return each(s)(ctx, func(v T) error { return fn(key(v), digest(v)) })
		},
	}
}

func keys[T any](ctx context.Context, each func(context.Context, func(T) error) error, key func(T) string) (map[string]bool, error) {
	have := map[string]bool{}
	err := each(ctx, func(v T) error {
		have[key(v)] = true
		return nil
	})
	return have, err
}

// listed adapts a method returning a whole list to an Each.
func listed[T any](list func(context.Context) ([]T, error)) func(context.Context, func(T) error) error {
	return func(ctx context.Context, fn func(T) error) error {
		vs, err := list(ctx)
		if err != nil {
			return err
		}
		for _, v := range vs {
			if err := fn(v); err != nil {
				return err
			}
		}
		return nil
	}
}

// ruleSetKind copies the rules and then the version, so that a target never has a
// version whose rules are missing.
var ruleSetKind = kind{
	name: "rules",
	copy: func(ctx context.Context, m *migration) (KindReport, error) {
		kr := KindReport{Kind: "rules"}
		set, err := m.src.Store.RuleSet(ctx)
		if err != nil {
			return kr, err
		}
		have, err := m.dst.Store.RuleSet(ctx)
		if err != nil {
			return kr, err
		}
		kr.Source, kr.Inserted = int64(len(set.Rules)), int64(len(set.Rules)-len(have.Rules))
		err = m.dst.Store.PutRuleSet(ctx, set)
		m.progress.report("rules", kr.Source, kr.Inserted, err == nil)
		return kr, err
	},
	digests: func(ctx context.Context, s Store, fn func(key, digest string) error) error {
		set, err := s.RuleSet(ctx)
		if err != nil {
			return err
		}
		if err := fn("version", strconv.Itoa(set.Version)); err != nil {
			return err
		}
		for _, r := range set.Rules {
			if err := fn(r.ID, digest(r)); err != nil {
				return err
			}
		}
		return nil
	},
}

// auditKind appends the entries after the target's last one, verbatim: the chain's
// hashes cover every field, so audit.Verify on the target proves the copy.
var auditKind = kind{
	name: "audit",
	copy: func(ctx context.Context, m *migration) (KindReport, error) {
		kr := KindReport{Kind: "audit"}
		last, ok, err := m.dst.Store.Last(ctx)
		if err != nil {
			return kr, err
		}
		from := int64(1)
		if ok {
			from = last.Seq + 1
			kr.Source = last.Seq
		}
		var batch []audit.Entry
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := m.dst.Store.PutAudit(ctx, batch); err != nil {
				return err
			}
			kr.Inserted += int64(len(batch))
			batch = batch[:0]
			return nil
		}
		err = m.src.Store.Each(ctx, from, func(e audit.Entry) error {
			kr.Source++
			batch = append(batch, e)
			m.progress.report("audit", kr.Source, kr.Inserted, false)
			if len(batch) >= m.opt.BatchSize {
				return flush()
			}
			return nil
		})
		if err == nil {
			err = flush()
		}
		m.progress.report("audit", kr.Source, kr.Inserted, err == nil)
		return kr, err
	},
	digests: func(ctx context.Context, s Store, fn func(key, digest string) error) error {
		return s.Each(ctx, 1, func(e audit.Entry) error { return fn(strconv.FormatInt(e.Seq, 10), digest(e)) })
	},
}

// kinds in the order they are copied: what others refer to first, cases before their
// messages, the audit chain last but one and the counters last, so that an
// interrupted run never leaves a target whose counters are ahead of its cases.
var kinds = []kind{
	streamed("users", func(u *accounts.User) string { return u.ID },
		func(s Store) func(context.Context, func(*accounts.User) error) error { return s.EachUser },
		func(s Store) func(context.Context, []*accounts.User) error { return s.PutUsers }),
	streamed("calendar_years", func(y triage.StoredYear) string { return strconv.Itoa(y.Year) },
		func(s Store) func(context.Context, func(triage.StoredYear) error) error {
			return listed(s.CalendarYears)
		},
		func(s Store) func(context.Context, []triage.StoredYear) error { return s.PutCalendarYears }),
	ruleSetKind,
	streamed("units", func(u routing.RegistryUnit) string { return u.ID },
		func(s Store) func(context.Context, func(routing.RegistryUnit) error) error { return listed(s.Units) },
		func(s Store) func(context.Context, []routing.RegistryUnit) error { return s.PutUnits }),
	streamed("organizations", func(o routing.Organization) string { return o.CreditCode },
		func(s Store) func(context.Context, func(routing.Organization) error) error { return s.EachOrganization },
		func(s Store) func(context.Context, []routing.Organization) error { return s.PutOrganizations }),
	streamed("recipients", func(r custody.Recipient) string { return r.ID },
		func(s Store) func(context.Context, func(custody.Recipient) error) error { return listed(s.Recipients) },
		func(s Store) func(context.Context, []custody.Recipient) error { return s.PutRecipients }),
	streamed("cases", func(c *intake.Case) string { return c.ID },
		func(s Store) func(context.Context, func(*intake.Case) error) error { return s.EachCase },
		func(s Store) func(context.Context, []*intake.Case) error { return s.PutCases }),
	streamed("disclosures", func(d custody.Disclosure) string { return d.ID },
		func(s Store) func(context.Context, func(custody.Disclosure) error) error { return s.EachDisclosure },
		func(s Store) func(context.Context, []custody.Disclosure) error { return s.PutDisclosures }),
	streamed("reseal_tasks", func(t custody.ResealTask) string { return t.ID },
		func(s Store) func(context.Context, func(custody.ResealTask) error) error { return s.EachResealTask },
		func(s Store) func(context.Context, []custody.ResealTask) error { return s.PutResealTasks }),
	streamed("messages", func(m *intake.Message) string { return m.ID },
		func(s Store) func(context.Context, func(*intake.Message) error) error { return s.EachMessage },
		func(s Store) func(context.Context, []*intake.Message) error { return s.PutMessages }),
	streamed("notifications", func(n triage.Notification) string { return n.ID },
		func(s Store) func(context.Context, func(triage.Notification) error) error { return s.EachNotification },
		func(s Store) func(context.Context, []triage.Notification) error { return s.PutNotifications }),
	streamed("ledger_entries", func(e donations.Entry) string { return e.ID },
		func(s Store) func(context.Context, func(donations.Entry) error) error { return s.EachLedgerEntry },
		func(s Store) func(context.Context, []donations.Entry) error { return s.PutLedgerEntries }),
	streamed("ledger_heads", func(h LedgerHead) string { return h.Org },
		func(s Store) func(context.Context, func(LedgerHead) error) error { return s.EachLedgerHead },
		func(s Store) func(context.Context, []LedgerHead) error { return s.PutLedgerHeads }),
	streamed("ledger_verifications", func(v donations.Verification) string { return v.EntryID },
		func(s Store) func(context.Context, func(donations.Verification) error) error {
			return s.EachVerification
		},
		func(s Store) func(context.Context, []donations.Verification) error { return s.PutVerifications }),
	streamed("ledger_photos", func(b PhotoBatch) string { return b.ID },
		func(s Store) func(context.Context, func(PhotoBatch) error) error { return s.EachPhotoBatch },
		func(s Store) func(context.Context, []PhotoBatch) error { return s.PutPhotoBatches }),
	streamed("ledger_statements", func(p donations.PublishedStatement) string { return p.Org + ":" + p.Month },
		func(s Store) func(context.Context, func(donations.PublishedStatement) error) error {
			return s.EachStatement
		},
		func(s Store) func(context.Context, []donations.PublishedStatement) error { return s.PutStatements }),
	streamed("ledger_corrections", func(c Correction) string { return fmt.Sprintf("%s:%s:%d", c.Org, c.Month, c.Seq) },
		func(s Store) func(context.Context, func(Correction) error) error { return s.EachCorrection },
		func(s Store) func(context.Context, []Correction) error { return s.PutCorrections }),
	streamed("ledger_alerts", func(a donations.Alert) string { return a.ID },
		func(s Store) func(context.Context, func(donations.Alert) error) error { return s.EachAlert },
		func(s Store) func(context.Context, []donations.Alert) error { return s.PutAlerts }),
	auditKind,
	counterKind,
}

// counterKind raises the target's counters to the source's: a counter already there
// with the same value is left, a lower one raised (a resumed run), never lowered.
var counterKind = kind{
	name: "counters",
	copy: func(ctx context.Context, m *migration) (KindReport, error) {
		kr := KindReport{Kind: "counters"}
		cs, err := m.src.Store.Counters(ctx)
		if err != nil {
			return kr, err
		}
		have, err := m.dst.Store.Counters(ctx)
		if err != nil {
			return kr, err
		}
		at := map[string]int64{}
		for _, c := range have {
			at[c.Name] = c.Seq
		}
		var put []Counter
		for _, c := range cs {
			if at[c.Name] != c.Seq {
				put = append(put, c)
			}
		}
		kr.Source, kr.Inserted = int64(len(cs)), int64(len(put))
		if len(put) > 0 {
			err = m.dst.Store.PutCounters(ctx, put)
		}
		m.progress.report("counters", kr.Source, kr.Inserted, err == nil)
		return kr, err
	},
	digests: func(ctx context.Context, s Store, fn func(key, digest string) error) error {
		cs, err := s.Counters(ctx)
		if err != nil {
			return err
		}
		for _, c := range cs {
			if err := fn(c.Name, strconv.FormatInt(c.Seq, 10)); err != nil {
				return err
			}
		}
		return nil
	},
}

// object is one object a case refers to and the SHA-256 it must have ("" when the
// case records none: a sealed original, compared with the source's object).
type object struct {
	key, sha256 string
}

func caseObjects(c *intake.Case) []object { return evidenceObjects(c.Evidence) }

func evidenceObjects(evs []intake.Evidence) []object {
	var out []object
	for _, ev := range evs {
		if ev.ObjectKey != "" {
			out = append(out, object{ev.ObjectKey, ev.SHA256Stored})
		}
		if ev.OriginalKey != "" {
			out = append(out, object{ev.OriginalKey, ""})
		}
	}
	return out
}

// eachObject calls fn with every object s's records refer to: the evidence of each
// case (owner its number) and each ledger photo (owner the batch).
func eachObject(ctx context.Context, s Store, fn func(owner string, o object) error) error {
	err := s.EachCase(ctx, func(c *intake.Case) error {
		for _, o := range caseObjects(c) {
			if err := fn("case "+c.Number, o); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.EachPhotoBatch(ctx, func(b PhotoBatch) error {
		for _, o := range evidenceObjects(b.Photos) {
			if err := fn("ledger photos "+b.ID, o); err != nil {
				return err
			}
		}
		return nil
	})
}

// objectWorkers is how many objects are copied or hashed at once: each is a few
// round trips to an object store, which a single stream would wait on.
const objectWorkers = 4

// forEachObject runs fn for every object s's records refer to, objectWorkers at a
// time, and returns the first error (after which the others stop).
func forEachObject(ctx context.Context, s Store, fn func(owner string, o object) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	type job struct {
		owner string
		o     object
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range objectWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := fn(j.owner, j.o); err != nil {
					cancel(err)
				}
			}
		}()
	}
	err := eachObject(ctx, s, func(owner string, o object) error {
		select {
		case jobs <- job{owner, o}:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	close(jobs)
	wg.Wait()
	// A worker's error (or the caller's cancellation) is why the listing stopped.
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	return err
}

// copyObjects makes every object the source's records refer to present in the target
// with the right content, copying those missing or different.
func (m *migration) copyObjects(ctx context.Context) (int64, int64, error) {
	var verified, copied atomic.Int64
	err := forEachObject(ctx, m.src.Store, func(owner string, o object) error {
		done, err := m.ensureObject(ctx, o)
		if err != nil {
			return fmt.Errorf("%s: %w", owner, err)
		}
		v := verified.Add(1)
		if done {
			copied.Add(1)
		}
		m.progress.report("objects", v, copied.Load(), false)
		return nil
	})
	m.progress.report("objects", verified.Load(), copied.Load(), err == nil)
	if err != nil {
		return verified.Load(), copied.Load(), fmt.Errorf("migrate: copy objects: %w", err)
	}
	return verified.Load(), copied.Load(), nil
}

// ensureObject copies o unless the target has it with the expected hash; it returns
// whether it copied.
func (m *migration) ensureObject(ctx context.Context, o object) (bool, error) {
	if got, err := hashObject(ctx, m.dst.Objects, o.key); err == nil {
		want := o.sha256
		if want == "" {
			if want, err = hashObject(ctx, m.src.Objects, o.key); err != nil {
				return false, fmt.Errorf("read source object %s: %w", o.key, err)
			}
		}
		if got == want {
			return false, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	r, _, err := m.src.Objects.Get(ctx, o.key)
	if err != nil {
		return false, fmt.Errorf("read source object %s: %w", o.key, err)
	}
	hr := &hashingReader{r: r, h: sha256.New()}
	_, err = m.dst.Objects.Put(ctx, o.key, hr, contentType)
	_ = r.Close()
	if err != nil {
		return false, fmt.Errorf("write object %s: %w", o.key, err)
	}
	if got := hex.EncodeToString(hr.h.Sum(nil)); o.sha256 != "" && got != o.sha256 {
		return true, &MismatchError{Kind: "objects", Key: o.key, Reason: "the source object's SHA-256 is " + got + ", its record says " + o.sha256}
	}
	return true, nil
}

type hashingReader struct {
	r io.Reader
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	return n, err
}

func hashObject(ctx context.Context, s Objects, key string) (string, error) {
	r, _, err := s.Get(ctx, key)
	if err != nil {
		return "", err
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Verify compares src and dst: for every kind the same keys with the same content,
// every object the target's cases refer to with its recorded SHA-256 (and sealed
// originals equal to the source's), and an intact audit chain on the target. It
// returns the target chain's head hash. progress may be nil.
func Verify(ctx context.Context, src, dst Side, progress io.Writer) (string, error) {
	p := newProgress(progress)
	for _, k := range kinds {
		// The source's digests in memory (a key and 32 bytes a record), the target's
		// streamed against them.
		want := map[string]string{}
		if err := k.digests(ctx, src.Store, func(key, d string) error { want[key] = d; return nil }); err != nil {
			return "", fmt.Errorf("migrate: verify %s: read the source: %w", k.name, err)
		}
		n := int64(len(want))
		err := k.digests(ctx, dst.Store, func(key, d string) error {
			w, ok := want[key]
			if !ok {
				return &MismatchError{Kind: k.name, Key: key, Reason: "in the target but not in the source"}
			}
			if w != d {
				return &MismatchError{Kind: k.name, Key: key, Reason: "differs between source and target"}
			}
			delete(want, key)
			return nil
		})
		var me *MismatchError
		if errors.As(err, &me) {
			return "", err
		}
		if err != nil {
			return "", fmt.Errorf("migrate: verify %s: read the target: %w", k.name, err)
		}
		for key := range want {
			return "", &MismatchError{Kind: k.name, Key: key, Reason: "missing in the target"}
		}
		p.report("verified "+k.name, n, 0, true)
	}
	var n atomic.Int64
	err := forEachObject(ctx, dst.Store, func(_ string, o object) error {
		got, err := hashObject(ctx, dst.Objects, o.key)
		if err != nil {
			return &MismatchError{Kind: "objects", Key: o.key, Reason: "missing in the target: " + err.Error()}
		}
		want := o.sha256
		if want == "" {
			if want, err = hashObject(ctx, src.Objects, o.key); err != nil {
				return fmt.Errorf("read source object %s: %w", o.key, err)
			}
		}
		if got != want {
			return &MismatchError{Kind: "objects", Key: o.key, Reason: "SHA-256 " + got + ", want " + want}
		}
		p.report("verified objects", n.Add(1), 0, false)
		return nil
	})
	if err != nil {
		var me *MismatchError
		if errors.As(err, &me) {
			return "", err
		}
		return "", fmt.Errorf("migrate: verify objects: %w", err)
	}
	p.report("verified objects", n.Load(), 0, true)
	r, err := audit.Verify(ctx, dst.Store)
	if err != nil {
		return "", fmt.Errorf("migrate: verify the target's audit chain: %w", err)
	}
	if !r.OK {
		return "", &MismatchError{Kind: "audit", Key: strconv.FormatInt(r.FirstBroken.Seq, 10), Reason: "the target's chain is broken: " + r.FirstBroken.Reason}
	}
	return r.Head, nil
}

// progress writes "migrate: cases 12000 read, 3400 written" lines, at most one a
// second per kind and one when the kind is done.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	last  map[string]time.Time
	start map[string]time.Time
}

func newProgress(w io.Writer) *progress {
	return &progress{w: w, last: map[string]time.Time{}, start: map[string]time.Time{}}
}

func (p *progress) report(kind string, read, written int64, done bool) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if _, ok := p.start[kind]; !ok {
		p.start[kind] = now
		p.last[kind] = now // the first line after a second, not at once
	}
	if !done && now.Sub(p.last[kind]) < time.Second {
		return
	}
	p.last[kind] = now
	state := "…"
	if done {
		state = fmt.Sprintf(" done in %s", now.Sub(p.start[kind]).Round(time.Millisecond))
	}
	if written > 0 || !done || kind == "objects" {
		fmt.Fprintf(p.w, "migrate: %-16s %9d read, %9d written%s\n", kind, read, written, state)
	} else {
		fmt.Fprintf(p.w, "migrate: %-16s %9d%s\n", kind, read, state)
	}
}
