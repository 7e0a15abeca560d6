package audit

import (
	"context"
	"errors"
	"fmt"
)

// Report is what Verify found.
type Report struct {
	// Entries is how many entries were read: all of them when OK, else up to and
	// including the first broken one.
	Entries int64
	OK      bool
	// FirstBroken is the first entry where the chain breaks; nil when OK.
	FirstBroken *Broken
	// Head is the hash of the last entry of an intact chain ("" when the log is
	// empty or broken). Kept outside the database, it shows a later rewrite of the
	// tail, which the chain alone cannot.
	Head string
	// HeadSeq is the Seq of that entry.
	HeadSeq int64
}

// Broken names where the chain breaks and why.
type Broken struct {
	Seq    int64
	Reason string // Chinese first, then English
}

// Why a chain is broken. Verify checks, in order: that the entry has the next Seq,
// that its hash is the hash of its contents, and that its Prev is the hash of the
// entry before.
const (
	// ReasonGap: entries are missing before this Seq (deleted); Broken.Seq is the
	// first missing one.
	ReasonGap = "序号缺失（条目被删除） / missing entry: the sequence has a gap"
	// ReasonOrder: a Seq seen before, or not positive.
	ReasonOrder = "序号重复或无效 / sequence number repeated or invalid"
	// ReasonHash: the entry was changed after it was written.
	ReasonHash = "哈希不符（条目内容被改动） / hash mismatch: the entry was altered"
	// ReasonPrev: the entry does not follow the one before it — the one before was
	// changed and re-hashed, or this one was forged, moved or inserted.
	ReasonPrev = "前一条哈希不符（链接断开） / previous-hash mismatch: the link to the entry before is broken"
	// ReasonMalformed: the stored entry cannot be read as an entry.
	ReasonMalformed = "条目无法解析 / the entry cannot be decoded"
)

var errStop = errors.New("stop")

// Verify reads the whole chain from s and checks every link. A broken chain is a
// Report with OK false, not an error; the error is for a store that cannot be read.
func Verify(ctx context.Context, s Iterator) (Report, error) {
	var r Report
	want, prev := int64(1), ""
	broken := func(seq int64, reason string) error {
		r.FirstBroken = &Broken{Seq: seq, Reason: reason}
		return errStop
	}
	err := s.Each(ctx, 1, func(e Entry) error {
		r.Entries++
		switch {
		case e.Seq > want:
			return broken(want, ReasonGap)
		case e.Seq < want:
			return broken(e.Seq, ReasonOrder)
		case e.ComputeHash() != e.Hash:
			return broken(e.Seq, ReasonHash)
		case e.Prev != prev:
			return broken(e.Seq, ReasonPrev)
		}
		want, prev = e.Seq+1, e.Hash
		return nil
	})
	var mal *MalformedError
	switch {
	case errors.Is(err, errStop):
		return r, nil
	case errors.As(err, &mal):
		r.Entries++
		switch {
		case mal.Seq > want:
			r.FirstBroken = &Broken{Seq: want, Reason: ReasonGap}
		case mal.Seq > 0 && mal.Seq < want:
			r.FirstBroken = &Broken{Seq: mal.Seq, Reason: ReasonOrder}
		default: // this Seq, or one that cannot be read: where the chain stops making sense
			r.FirstBroken = &Broken{Seq: want, Reason: ReasonMalformed}
		}
		return r, nil
	case err != nil:
		return Report{}, fmt.Errorf("audit: verify: %w", err)
	}
	r.OK = true
	if prev != "" {
		r.Head, r.HeadSeq = prev, want-1
	}
	return r, nil
}
