package retention

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Orphaned objects are evidence objects (and sealed originals) that nothing refers
// to: an upload cut off by a crash (kill -9, power loss) between writing its objects
// and storing the case or ledger entry that names them, or a clean-up that failed.
// Nothing would ever delete them: retention follows a case's references. The Sweeper
// does, once an object is older than a grace period, so that an upload still in
// progress — its objects written, its case not yet stored — is never touched.

// ObjectStore lists and deletes objects (storage/blob).
type ObjectStore interface {
	// List calls fn for every object whose key starts with prefix, with the time it
	// was last written.
	List(ctx context.Context, prefix string, fn func(key string, modified time.Time) error) error
	Delete(ctx context.Context, key string) error
}

// ReferencedObjects returns every object key some stored record names: case
// evidence and kept originals, ledger photos and theirs (storage/mongo).
type ReferencedObjects func(ctx context.Context) (map[string]bool, error)

// OrphanPrefixes are the key prefixes the service writes objects under; the sweeper
// never looks elsewhere, so nothing else in the bucket can be deleted by it.
var OrphanPrefixes = []string{"evidence/", "originals/"}

// DefaultOrphanGrace is how old an unreferenced object must be before it is deleted:
// far longer than any upload or idempotent retry (24 h) can take.
const DefaultOrphanGrace = 48 * time.Hour

// OrphanLeaseName is the lease that lets one instance sweep at a time.
const OrphanLeaseName = "orphan-sweep"

// Counter counts deleted objects (a Prometheus counter).
type Counter interface{ Add(float64) }

// Sweeper deletes orphaned objects older than Grace.
type Sweeper struct {
	Objects    ObjectStore
	Referenced ReferencedObjects
	// Lease, when set, is taken for the run so that one instance sweeps at a time
	// (Leases.AcquireLease).
	Lease   func(ctx context.Context, name, holder string, now, until time.Time) (bool, error)
	Holder  string
	Grace   time.Duration // DefaultOrphanGrace when 0
	Deleted Counter       // optional
	Now     func() time.Time
	Log     *slog.Logger
}

// SweepOnce deletes the orphaned objects older than the grace period and returns how
// many it deleted. It lists the objects first and reads the references after, so an
// object that a record started naming during the listing is seen as referenced.
// ErrLeaseHeld means another instance is sweeping.
func (s *Sweeper) SweepOnce(ctx context.Context) (int, error) {
	now := time.Now().UTC()
	if s.Now != nil {
		now = s.Now().UTC()
	}
	grace := s.Grace
	if grace <= 0 {
		grace = DefaultOrphanGrace
	}
	if s.Lease != nil {
		if s.Holder == "" {
			s.Holder = "sweeper-" + rand.Text()[:10]
		}
		ok, err := s.Lease(ctx, OrphanLeaseName, s.Holder, now, now.Add(30*time.Minute))
		if err != nil {
			return 0, fmt.Errorf("orphan sweep lease: %w", err)
		}
		if !ok {
			return 0, ErrLeaseHeld
		}
		defer func() {
			end := time.Now().UTC()
			_, _ = s.Lease(context.WithoutCancel(ctx), OrphanLeaseName, s.Holder, end, end)
		}()
	}
	var old []string
	cutoff := now.Add(-grace)
	for _, prefix := range OrphanPrefixes {
		err := s.Objects.List(ctx, prefix, func(key string, modified time.Time) error {
			if !modified.After(cutoff) {
				old = append(old, key)
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("list objects under %s: %w", prefix, err)
		}
	}
	if len(old) == 0 {
		return 0, nil
	}
	refs, err := s.Referenced(ctx)
	if err != nil {
		return 0, fmt.Errorf("read object references: %w", err)
	}
	var (
		n    int
		errs []error
	)
	for _, key := range old {
		if refs[key] || !hasOrphanPrefix(key) {
			continue
		}
		if err := s.Objects.Delete(ctx, key); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
		if s.Deleted != nil {
			s.Deleted.Add(1)
		}
	}
	if n > 0 && s.Log != nil {
		// Keys name no one (random ids), but the count is what operators need.
		s.Log.InfoContext(ctx, "deleted orphaned objects", "event", "orphans.deleted", "count", n, "grace", grace.String())
	}
	return n, errors.Join(errs...)
}

func hasOrphanPrefix(key string) bool {
	for _, p := range OrphanPrefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}
