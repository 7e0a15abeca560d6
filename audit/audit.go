// Package audit is the append-only, hash-chained audit log (审计日志): who read a case,
// downloaded evidence, moved a case through its workflow, transferred it, or did
// anything with accounts and sealed identities. Each entry carries the SHA-256 of the
// entry before it, so an entry edited, deleted, reordered or slipped in afterwards
// breaks the chain, and Verify names the first entry where it breaks.
//
// What the chain cannot show: a rewrite of the whole tail (every entry after some
// point, hashes recomputed) or the last entries simply removed. Against those, write
// down Report.Head from time to time somewhere the database's administrators cannot
// reach, and compare.
//
// What it must not hold: anything that identifies a reporter (举报人). A reporter's
// actions are recorded with the actor "reporter" and never with a name, phone number,
// identity number, receipt code or its hash, follow-up session id, or anything else
// that links two reports or follow-ups to the same person; and no entry, for anyone,
// carries an IP address, user agent or device identifier. Record refuses detail keys
// that name such data (see Record), but the rule is the caller's to keep: a value is
// never inspected.
//
// The package knows nothing of the database; Store is implemented in storage/mongo.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Actors that are not staff accounts.
const (
	ActorReporter = "reporter" // a reporter, never identified further
	ActorSystem   = "system"   // the server itself: deadlines, escalations, imports
)

// Entry is one audit record.
type Entry struct {
	Seq    int64     // 1, 2, 3, … with no gaps; the position in the chain
	At     time.Time // when, UTC, to the millisecond (what the database keeps)
	Actor  string    // a staff account id, ActorReporter or ActorSystem
	Role   string    // the actor's role (admin, staff, …), empty for reporters and the system
	Action string    // what was done, e.g. case.read, evidence.download, case.transition
	Case   string    // the case number (案件编号), empty when the action is not about a case
	Detail map[string]string
	Prev   string // hex SHA-256 of the entry before, "" for the first
	Hash   string // hex SHA-256 of this entry's canonical encoding, Prev included
}

// hashDomain starts every encoding, so that an entry's hash can never be taken for
// the hash of anything else, and a future encoding can be told apart.
const hashDomain = "qingfeng/audit/v1\n"

// ComputeHash returns the hex SHA-256 of the entry's canonical encoding: every field
// but Hash in a fixed order, each string preceded by its length as 8 bytes big-endian
// (so "ab"+"c" and "a"+"bc" differ), Seq as 8 bytes, At as UTC RFC 3339 with
// nanoseconds, and Detail as its number of pairs followed by the pairs sorted by key.
func (e *Entry) ComputeHash() string {
	h := sha256.New()
	var n [8]byte
	num := func(v uint64) {
		binary.BigEndian.PutUint64(n[:], v)
		h.Write(n[:])
	}
	str := func(s string) {
		num(uint64(len(s)))
		h.Write([]byte(s))
	}
	h.Write([]byte(hashDomain))
	num(uint64(e.Seq))
	str(e.At.UTC().Format(time.RFC3339Nano))
	str(e.Actor)
	str(e.Role)
	str(e.Action)
	str(e.Case)
	num(uint64(len(e.Detail)))
	for _, k := range slices.Sorted(maps.Keys(e.Detail)) {
		str(k)
		str(e.Detail[k])
	}
	str(e.Prev)
	return hex.EncodeToString(h.Sum(nil))
}

// Store keeps the entries. Implementations must make Append of a Seq that is taken
// fail with ErrSeqTaken, atomically, across every process writing to the store: that
// is all that keeps two servers from forking the chain.
type Store interface {
	// Append stores e under e.Seq, or fails with an error wrapping ErrSeqTaken.
	Append(ctx context.Context, e Entry) error
	// Get returns entry seq, or an error wrapping ErrNotFound.
	Get(ctx context.Context, seq int64) (Entry, error)
	// Last returns the entry with the highest Seq; ok is false when there is none.
	Last(ctx context.Context) (e Entry, ok bool, err error)
	Iterator
	// List returns entries matching q in Seq order.
	List(ctx context.Context, q Query) ([]Entry, error)
}

// Chainer is a Store that can link an entry to the chain itself: AppendChained reads
// the last stored entry, has next build the new one from it (next sets Seq, Prev and
// Hash) and stores it, all in one transaction, so that concurrent appends need no
// lock in the Log and can share a commit (storage/sqlite's group commit). Log uses it
// when its Store has it.
type Chainer interface {
	AppendChained(ctx context.Context, next func(last Entry, ok bool) Entry) (Entry, error)
}

// Iterator is what Verify needs of a store.
type Iterator interface {
	// Each calls fn for every entry with Seq ≥ fromSeq in Seq order, stopping at the
	// first error. An entry that cannot be decoded stops it with a *MalformedError.
	Each(ctx context.Context, fromSeq int64, fn func(Entry) error) error
}

// Query selects entries for List.
type Query struct {
	Case  string // only entries about this case; all when empty
	After int64  // only entries with Seq > After
	Limit int    // at most this many; see MaxLimit
}

// Page sizes for List.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

var (
	// ErrSeqTaken is Store.Append's error when another writer took the Seq first.
	ErrSeqTaken = errors.New("audit: sequence number taken")
	// ErrNotFound is Store.Get's error for a Seq with no entry.
	ErrNotFound = errors.New("audit: no such entry")
	// ErrIdentifying is Record's error for a detail key that names identifying data.
	ErrIdentifying = errors.New("audit: identifying data is never recorded")
)

// MalformedError is Each's error for a stored entry that cannot be decoded: Verify
// reports it as the first broken entry instead of failing.
type MalformedError struct {
	Seq int64 // 0 when not even the sequence number could be read
	Err error
}

func (e *MalformedError) Error() string {
	return fmt.Sprintf("audit: entry %d cannot be decoded: %v", e.Seq, e.Err)
}

func (e *MalformedError) Unwrap() error { return e.Err }

// forbiddenKeys are detail keys that would put a network or device identity into the
// log, compared after lowercasing and turning '-' into '_'.
var forbiddenKeys = map[string]bool{
	"ip": true, "ip_address": true, "remote_addr": true, "remote_ip": true, "client_ip": true,
	"x_forwarded_for": true, "forwarded": true,
	"user_agent": true, "ua": true, "device_id": true, "device": true,
}

// Limits on what an entry may hold: the log is for who did what, not for content.
const (
	maxKeyLen   = 64
	maxValueLen = 4096
	maxDetail   = 32
	maxFieldLen = 256
)

// Log appends entries to a Store. It is safe for concurrent use, and several Logs —
// in one process or in several servers — may append to the same store: a Seq is
// taken by inserting the entry under it, and a writer that loses the race reads the
// winner's entry and tries the next Seq.
type Log struct {
	Store Store
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	mu    sync.Mutex
	head  Entry // the last entry this Log knows of
	known bool  // head is loaded; false after an append whose outcome is unknown
}

// maxAttempts bounds how many Seqs one Record tries before giving up.
const maxAttempts = 64

// Record appends an entry. actor and action are required; caseNumber may be empty.
// Detail keys are lowercase letters, digits and '_' (at most 64, at most 32 keys);
// values at most 4096 bytes; everything valid UTF-8. Keys naming an IP address, user
// agent or device (ip, user_agent, ua, device_id and the like) are refused with
// ErrIdentifying.
func (l *Log) Record(ctx context.Context, actor, role, action, caseNumber string, detail map[string]string) error {
	_, err := l.Append(ctx, actor, role, action, caseNumber, detail)
	return err
}

// Append is Record returning the entry as stored.
func (l *Log) Append(ctx context.Context, actor, role, action, caseNumber string, detail map[string]string) (Entry, error) {
	if err := checkFields(actor, role, action, caseNumber, detail); err != nil {
		return Entry{}, err
	}
	var d map[string]string
	if len(detail) > 0 {
		d = maps.Clone(detail)
	}
	if c, ok := l.Store.(Chainer); ok {
		at := l.now()
		e, err := c.AppendChained(ctx, func(last Entry, ok bool) Entry {
			e := Entry{Seq: 1, At: at, Actor: actor, Role: role, Action: action, Case: caseNumber, Detail: d}
			if ok {
				e.Seq, e.Prev = last.Seq+1, last.Hash
			}
			e.Hash = e.ComputeHash()
			return e
		})
		if err != nil {
			return Entry{}, fmt.Errorf("audit: record %s: %w", action, err)
		}
		return e, nil
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.known {
		if err := l.loadHead(ctx); err != nil {
			return Entry{}, err
		}
	}
	for attempt := range maxAttempts {
		e := Entry{Seq: l.head.Seq + 1, At: l.now(), Actor: actor, Role: role, Action: action, Case: caseNumber,
			Detail: d, Prev: l.head.Hash}
		e.Hash = e.ComputeHash()
		err := l.Store.Append(ctx, e)
		if err == nil {
			l.head = e
			return e, nil
		}
		if !errors.Is(err, ErrSeqTaken) {
			// The entry may or may not be stored (a timeout after the server wrote
			// it): read the head again next time.
			l.known = false
			return Entry{}, fmt.Errorf("audit: record %s: %w", action, err)
		}
		// Another writer took the Seq. Its entry is the new head, unless it is ours
		// (a retried insert that had landed). After the first loss, the other writer
		// may be far ahead: jump to the last entry rather than walk to it.
		var got Entry
		if attempt == 0 {
			got, err = l.Store.Get(ctx, e.Seq)
		} else {
			var ok bool
			got, ok, err = l.Store.Last(ctx)
			if err == nil && !ok {
				err = errors.New("the store is empty after a sequence number conflict")
			}
		}
		if err != nil {
			l.known = false
			return Entry{}, fmt.Errorf("audit: record %s: read the entry that took seq %d: %w", action, e.Seq, err)
		}
		if got.Hash == e.Hash {
			l.head = got
			return got, nil
		}
		l.head = got
	}
	l.known = false
	return Entry{}, fmt.Errorf("audit: record %s: lost the race for a sequence number %d times", action, maxAttempts)
}

func (l *Log) loadHead(ctx context.Context) error {
	last, ok, err := l.Store.Last(ctx)
	if err != nil {
		return fmt.Errorf("audit: read the last entry: %w", err)
	}
	if !ok {
		last = Entry{}
	}
	l.head, l.known = last, true
	return nil
}

// now is the entry time: UTC, truncated to the millisecond that a BSON date keeps, so
// that the hash computed here is the hash of what is read back.
func (l *Log) now() time.Time {
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	return now().UTC().Truncate(time.Millisecond)
}

func checkFields(actor, role, action, caseNumber string, detail map[string]string) error {
	if actor == "" || action == "" {
		return errors.New("audit: an entry needs an actor and an action")
	}
	for name, v := range map[string]string{"actor": actor, "role": role, "action": action, "case": caseNumber} {
		if len(v) > maxFieldLen || !utf8.ValidString(v) {
			return fmt.Errorf("audit: %s is longer than %d bytes or not UTF-8", name, maxFieldLen)
		}
	}
	if len(detail) > maxDetail {
		return fmt.Errorf("audit: %d detail keys, at most %d", len(detail), maxDetail)
	}
	for k, v := range detail {
		if forbiddenKeys[strings.ReplaceAll(strings.ToLower(k), "-", "_")] {
			return fmt.Errorf("%w: detail key %q", ErrIdentifying, k)
		}
		if !validKey(k) {
			return fmt.Errorf("audit: detail key %q: want 1 to %d lowercase letters, digits or '_'", k, maxKeyLen)
		}
		if len(v) > maxValueLen || !utf8.ValidString(v) {
			return fmt.Errorf("audit: detail %q is longer than %d bytes or not UTF-8", k, maxValueLen)
		}
	}
	return nil
}

func validKey(k string) bool {
	if k == "" || len(k) > maxKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// Verify checks the whole chain of the Log's store.
func (l *Log) Verify(ctx context.Context) (Report, error) { return Verify(ctx, l.Store) }

// List returns the entries matching q in Seq order, with q.Limit defaulted to
// DefaultLimit and capped at MaxLimit.
func (l *Log) List(ctx context.Context, q Query) ([]Entry, error) {
	if q.Limit <= 0 {
		q.Limit = DefaultLimit
	}
	q.Limit = min(q.Limit, MaxLimit)
	q.After = max(q.After, 0)
	es, err := l.Store.List(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("audit: list: %w", err)
	}
	return es, nil
}
