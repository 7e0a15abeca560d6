package intake

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/audit"
	"github.com/qingfeng-zj/qingfeng/intake/media"
)

// Receipts makes and checks receipt codes. The implementation holds a server-side
// pepper, so that a copy of the database alone can neither recover nor test receipts.
type Receipts interface {
	NewCode() string
	Normalize(code string) (string, bool)
	Format(code string) string
	Hash(code string) []byte
	// KeyedHash fingerprints request data (idempotency keys, request bodies) without
	// leaving anything a database reader could brute-force offline.
	KeyedHash(s string) string
	// SealCode encrypts a receipt for an idempotency record under a key derived from
	// the server's secret and requestKey (the client's Idempotency-Key, never stored),
	// so that only a retry carrying the key can read it back with OpenCode.
	SealCode(code, requestKey string) []byte
	OpenCode(sealed []byte, requestKey string) (string, error)
}

// Config holds the limits and policies of intake.
type Config struct {
	MaxFileBytes   int64 // per evidence file
	MaxCaseBytes   int64 // all evidence of a case
	MaxFilesPerReq int
	KeepOriginals  bool // keep each evidence original, sealed to the custodians
	AcceptanceDays int  // working days to tell a real-name reporter about acceptance
	IdempotencyTTL time.Duration
}

// DefaultConfig is what the service runs with unless configured otherwise.
var DefaultConfig = Config{
	MaxFileBytes:   50 << 20,
	MaxCaseBytes:   200 << 20,
	MaxFilesPerReq: 10,
	AcceptanceDays: 15,
	IdempotencyTTL: 24 * time.Hour,
}

// Service files reports and manages what reporters and staff attach to them.
type Service struct {
	Cases    CaseStore
	Blobs    EvidenceStore
	Sealer   Sealer
	Router   Router
	Calendar Calendar
	Receipts Receipts
	Ref      Reference
	Config   Config
	Log      *slog.Logger
	// Audit, when set, receives a case.filed entry for every case stored: a case's
	// life starts in the audit chain (package audit), without the reporter's identity.
	Audit Auditor
	Now   func() time.Time
	// DeadlineDays, when set, gives a unit's own working days for a step ("acceptance");
	// otherwise Config.AcceptanceDays applies.
	DeadlineDays func(unitID, kind string) int
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Auditor appends to the audit log; audit.Log implements it.
type Auditor interface {
	Record(ctx context.Context, actor, role, action, caseNumber string, detail map[string]string) error
}

// AuditFiled is the audit action of a case being stored.
const AuditFiled = "case.filed"

// Filed is what the reporter is told once, when a report is registered.
type Filed struct {
	Case          *Case
	ReceiptCode   string // formatted; shown only in this response
	AcceptanceDue string
	DueEstimated  bool
	Replayed      bool // an idempotent retry returned the earlier result
}

// FileRequest is one submission: the draft, an optional idempotency key, and the
// files (multipart) that come with it.
type FileRequest struct {
	Draft          Draft
	IdempotencyKey string
	FiledBy        string // liaison account id when a liaison files for a visitor
}

// Prepared is a validated report, sealed and routed, that has not been stored yet.
// Files may be attached to it (Attach) before Commit numbers it and stores everything
// as one document; Abort removes whatever was uploaded. A case number is taken only in
// Commit, once everything else has succeeded, so a refused filing burns none.
type Prepared struct {
	c        *Case
	receipt  string
	rec      *IdempotencyRecord // the claim this attempt holds, if a key was sent
	key      string             // the client's Idempotency-Key, which seals the receipt
	county   string
	year     int
	seq      int64 // the number Commit took, until the case is stored
	replay   *Filed
	s        *Service
	uploaded []string
}

// Idempotency claims. A claim is held for idempotencyClaim and renewed with every
// file, so that the retry of an attempt that crashed can take it over later; a
// concurrent retry waits up to idempotencyWait for the holder to finish, polling, and
// is then told the request is still in progress.
const (
	idempotencyClaim = 5 * time.Minute
	idempotencyWait  = 3 * time.Second
	idempotencyPoll  = 25 * time.Millisecond
)

var (
	errInProgress = qingfeng.Errorf(qingfeng.EINPROGRESS, "请求正在处理，请稍后重试", "the same request is still being processed; retry shortly")
	errKeyReused  = qingfeng.Errorf(qingfeng.ECONFLICT, "该幂等键已用于另一份举报", "this Idempotency-Key was used for a different report")
)

// Prepare validates a submission and gets it ready to store. A submission with an
// idempotency key claims the key here: a retry of a stored one gets the earlier
// result (Replayed), one racing a live attempt waits briefly for it and then gets
// EINPROGRESS, and a key reused for another request is ECONFLICT.
func (s *Service) Prepare(ctx context.Context, req FileRequest) (*Prepared, error) {
	now := s.now()
	d, warns, err := req.Draft.validate(s.Ref, now)
	if err != nil {
		return nil, err
	}
	if len(d.Sealed) > 0 {
		if err := s.Sealer.CheckSealed(d.Sealed); err != nil {
			return nil, err
		}
	}
	county, _ := s.Ref.ValidDivision(d.Location.Division)
	p := &Prepared{s: s}

	if req.IdempotencyKey != "" {
		if len(req.IdempotencyKey) > 200 {
			return nil, qingfeng.Invalid(map[string]qingfeng.FieldError{"Idempotency-Key": fieldErr("too_long", "幂等键过长", "too long")})
		}
		rec := &IdempotencyRecord{
			KeyHash:     s.Receipts.KeyedHash("idempotency-key\x00" + req.IdempotencyKey),
			RequestHash: s.Receipts.KeyedHash("request\x00" + d.fingerprint()),
			Owner:       NewID(), CreatedAt: now, ExpiresAt: now.Add(s.Config.IdempotencyTTL),
		}
		p.key = req.IdempotencyKey
		if p.rec, p.replay, err = s.claim(ctx, rec, p.key); err != nil {
			return nil, err
		}
		if p.replay != nil {
			return p, nil
		}
	}

	c := &Case{
		Source: d.Source, Category: Category(d.Category), Subject: d.Subject, Description: d.Description,
		Location: d.Location, OccurredOn: d.OccurredOn, RealName: !d.Anonymous, Status: StatusRegistered,
		Warnings: warns, ReceivedAt: now, UpdatedAt: now, FiledBy: req.FiledBy, Version: 1,
	}
	if p.rec != nil && p.rec.CaseID != "" {
		// A crashed attempt got as far as numbering the case: finish it under the
		// same id, number and receipt.
		c.ID, c.Number = p.rec.CaseID, p.rec.CaseNumber
		if p.receipt, err = s.Receipts.OpenCode(p.rec.ReceiptEnc, p.key); err != nil {
			return nil, fmt.Errorf("open idempotent receipt: %w", err)
		}
	} else {
		c.ID = NewID()
		p.receipt = s.Receipts.NewCode()
	}
	c.ReceiptHash = s.Receipts.Hash(p.receipt)
	p.county, p.year = county, now.In(shanghai).Year()

	switch {
	case d.Identity != nil:
		plain, err := json.Marshal(sealedIdentityV1{V: 1, Name: d.Identity.Name, Mobile: d.Identity.Mobile,
			ResidentID: d.Identity.ResidentID, PreferredContact: d.Identity.PreferredContact})
		if err != nil {
			return p.fail(ctx, err)
		}
		sealed, err := s.Sealer.Seal(ctx, county, plain)
		clear(plain)
		if err != nil {
			return p.fail(ctx, err)
		}
		c.Identity = sealed
	case len(d.Sealed) > 0:
		c.Identity = &SealedIdentity{Ciphertext: d.Sealed, SealedOnDevice: true, SealedAt: now}
	}

	if c.Decision, err = s.Router.Route(ctx, c); err != nil {
		return p.fail(ctx, fmt.Errorf("route case: %w", err))
	}
	c.UnitID = c.Decision.UnitID
	if c.RealName {
		c.AcceptanceDue, _ = s.acceptanceDue(c)
	}
	p.c = c
	return p, nil
}

// fail releases what Prepare claimed and returns err.
func (p *Prepared) fail(ctx context.Context, err error) (*Prepared, error) {
	p.Abort(ctx)
	return nil, err
}

// claim claims rec's key, or finds the answer of the attempt that holds it. It returns
// the claim, or the earlier result to replay.
func (s *Service) claim(ctx context.Context, rec *IdempotencyRecord, key string) (*IdempotencyRecord, *Filed, error) {
	deadline := time.Now().Add(idempotencyWait)
	for {
		rec.ClaimUntil = s.now().Add(idempotencyClaim)
		got, err := s.Cases.ClaimIdempotency(ctx, rec)
		if err != nil {
			return nil, nil, err
		}
		switch {
		case got.RequestHash != rec.RequestHash:
			return nil, nil, errKeyReused
		case got.Owner == rec.Owner && got.CaseID != "":
			// Taken over from a crashed attempt: it may have stored the case already
			// and died before marking the record done.
			c, err := s.Cases.CaseByID(ctx, got.CaseID)
			if qingfeng.ErrorCode(err) == qingfeng.ENOTFOUND {
				return got, nil, nil
			}
			if err != nil {
				return nil, nil, err
			}
			got.Done = true
			if err := s.Cases.UpdateIdempotency(ctx, got); err != nil {
				s.Log.WarnContext(ctx, "mark idempotency record done", "err", err)
			}
			f, err := s.replayed(c, got.ReceiptEnc, key)
			return nil, f, err
		case got.Owner == rec.Owner:
			return got, nil, nil
		case got.Done:
			c, err := s.Cases.CaseByID(ctx, got.CaseID)
			if err != nil {
				return nil, nil, fmt.Errorf("idempotent replay of %s: %w", got.CaseNumber, err)
			}
			f, err := s.replayed(c, got.ReceiptEnc, key)
			return nil, f, err
		}
		// Another attempt holds the claim: wait, briefly, reading only, until it is
		// done, released or lapsed; then claim again (or replay its answer).
		if err := s.awaitClaim(ctx, rec.KeyHash, deadline); err != nil {
			return nil, nil, err
		}
	}
}

// awaitClaim polls the record with keyHash until its claim is done, released or
// lapsed; EINPROGRESS once deadline has passed.
func (s *Service) awaitClaim(ctx context.Context, keyHash string, deadline time.Time) error {
	for {
		if time.Now().After(deadline) {
			return errInProgress
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(idempotencyPoll):
		}
		cur, err := s.Cases.Idempotency(ctx, keyHash)
		switch {
		case qingfeng.ErrorCode(err) == qingfeng.ENOTFOUND:
			return nil
		case err != nil:
			return err
		case cur.Done || !cur.ClaimUntil.After(s.now()):
			return nil
		}
	}
}

// replayed is the answer to a retry of the filing of c, whose receipt is sealed.
func (s *Service) replayed(c *Case, sealedReceipt []byte, key string) (*Filed, error) {
	code, err := s.Receipts.OpenCode(sealedReceipt, key)
	if err != nil {
		return nil, fmt.Errorf("open idempotent receipt: %w", err)
	}
	due, est := s.acceptanceDue(c)
	return &Filed{Case: c, ReceiptCode: s.Receipts.Format(code), AcceptanceDue: due, DueEstimated: est, Replayed: true}, nil
}

func (p *Prepared) counter() string { return fmt.Sprintf("case:%s:%d", p.county, p.year) }

type sealedIdentityV1 struct {
	V                int    `json:"v"`
	Name             string `json:"name"`
	Mobile           string `json:"mobile"`
	ResidentID       string `json:"resident_id,omitempty"`
	PreferredContact string `json:"preferred_contact,omitempty"`
}

// fingerprint is a stable rendering of the draft for idempotency comparison. It is
// only ever stored under a keyed hash: it contains the plaintext identity.
func (d Draft) fingerprint() string {
	b, _ := json.Marshal(struct {
		D  Draft
		ID *sealedIdentityV1
	}{D: Draft{Category: d.Category, Subject: d.Subject, Description: d.Description, Location: d.Location,
		OccurredOn: d.OccurredOn, Anonymous: d.Anonymous, Sealed: d.Sealed, Source: d.Source}, ID: identityV1(d.Identity)})
	return string(b)
}

func identityV1(id *Identity) *sealedIdentityV1 {
	if id == nil {
		return nil
	}
	return &sealedIdentityV1{V: 1, Name: id.Name, Mobile: id.Mobile, ResidentID: id.ResidentID, PreferredContact: id.PreferredContact}
}

// Replayed reports whether this submission is a retry of one already stored.
func (p *Prepared) Replayed() bool { return p.replay != nil }

// Attach streams one file into the prepared case's evidence. Call only when !Replayed().
func (p *Prepared) Attach(ctx context.Context, r io.Reader, uploader string) error {
	if len(p.c.Evidence) >= p.s.Config.MaxFilesPerReq {
		return qingfeng.Errorf(qingfeng.ETOOLARGE, fmt.Sprintf("一次最多上传%d个文件", p.s.Config.MaxFilesPerReq), "too many files in one request")
	}
	if err := p.renew(ctx); err != nil {
		return err
	}
	ev, keys, err := p.s.storeFile(ctx, p.c, r, uploader, p.s.Config.MaxCaseBytes-p.c.EvidenceBytes)
	p.uploaded = append(p.uploaded, keys...)
	if err != nil {
		return err
	}
	p.c.Evidence = append(p.c.Evidence, ev)
	p.c.EvidenceBytes += ev.Size
	return nil
}

// renew extends this attempt's claim on its idempotency key; a claim another attempt
// took over (this one was too slow) ends this attempt with EINPROGRESS.
func (p *Prepared) renew(ctx context.Context) error {
	if p.rec == nil {
		return nil
	}
	p.rec.ClaimUntil = p.s.now().Add(idempotencyClaim)
	if err := p.s.Cases.UpdateIdempotency(ctx, p.rec); err != nil {
		if qingfeng.ErrorCode(err) == qingfeng.ECONFLICT {
			p.rec = nil // no longer ours: Abort must not touch it
			return errInProgress
		}
		return err
	}
	return nil
}

// Commit numbers the case and stores it with its evidence as one document. The
// number is taken only now, and given back if the case cannot be stored.
func (p *Prepared) Commit(ctx context.Context) (*Filed, error) {
	if p.replay != nil {
		return p.replay, nil
	}
	s := p.s
	c := p.c
	// Still ours? A claim taken over while this attempt was uploading must not cost
	// a number.
	if err := p.renew(ctx); err != nil {
		return p.abortWith(ctx, err)
	}
	if c.Number == "" {
		seq, err := s.Cases.NextSequence(ctx, p.counter())
		if err != nil {
			return p.abortWith(ctx, fmt.Errorf("number case: %w", err))
		}
		p.seq = seq
		c.Number = fmt.Sprintf("QF-%s-%d-%06d", p.county, p.year, seq)
	}
	if p.rec != nil {
		// Recorded before the case is stored, so that a retry after a crash here
		// finishes this case instead of filing a second one.
		p.rec.CaseID, p.rec.CaseNumber, p.rec.ReceiptEnc = c.ID, c.Number, s.Receipts.SealCode(p.receipt, p.key)
		if err := p.renew(ctx); err != nil {
			return p.abortWith(ctx, err)
		}
	}
	if err := s.Cases.CreateCase(ctx, c); err != nil {
		if p.rec != nil && qingfeng.ErrorCode(err) == qingfeng.ECONFLICT {
			// Stored by an attempt that took over this one's claim: answer as it did.
			if stored, err2 := s.Cases.CaseByID(ctx, c.ID); err2 == nil {
				p.rec = nil
				p.Abort(ctx)
				due, est := s.acceptanceDue(stored)
				return &Filed{Case: stored, ReceiptCode: s.Receipts.Format(p.receipt), AcceptanceDue: due, DueEstimated: est, Replayed: true}, nil
			}
		}
		return p.abortWith(ctx, fmt.Errorf("store case %s: %w", c.Number, err))
	}
	p.uploaded = nil
	if p.rec != nil {
		p.rec.Done = true
		if err := s.Cases.UpdateIdempotency(ctx, p.rec); err != nil {
			// The case is stored; a retry finds it through the record's case id.
			s.Log.WarnContext(ctx, "mark idempotency record done", "case", c.Number, "err", err)
		}
	}
	s.auditFiled(ctx, c)
	if n, ok := s.Router.(PlacedNotifier); ok {
		n.Placed(ctx, c)
	}
	due, est := s.acceptanceDue(c)
	s.Log.InfoContext(ctx, "case registered", "case", c.Number, "unit", c.UnitID, "category", string(c.Category),
		"real_name", c.RealName, "evidence", len(c.Evidence))
	return &Filed{Case: c, ReceiptCode: s.Receipts.Format(p.receipt), AcceptanceDue: due, DueEstimated: est}, nil
}

// auditFiled records that c was stored. The entry names who filed it only as "the
// reporter", a liaison's account or the system, and holds the case's number, unit,
// category, source and number of files: nothing about the reporter. As with workflow
// changes, the case is already stored when the entry is written, so a failure to
// write it is logged as an error, not returned: the reporter must still get the
// receipt of a case that exists.
func (s *Service) auditFiled(ctx context.Context, c *Case) {
	if s.Audit == nil {
		return
	}
	actor, role := audit.ActorReporter, ""
	switch {
	case c.FiledBy != "":
		actor, role = c.FiledBy, "liaison"
	case c.Source == "system":
		actor = audit.ActorSystem
	}
	detail := map[string]string{"unit": c.UnitID, "category": string(c.Category), "source": c.Source,
		"evidence": fmt.Sprint(len(c.Evidence))}
	if err := s.Audit.Record(context.WithoutCancel(ctx), actor, role, AuditFiled, c.Number, detail); err != nil {
		s.Log.ErrorContext(ctx, "audit record failed", "action", AuditFiled, "case", c.Number, "err", err)
	}
}

func (p *Prepared) abortWith(ctx context.Context, err error) (*Filed, error) {
	p.Abort(ctx)
	return nil, err
}

// Abort removes everything uploaded for a prepared case that will not be stored, gives
// back the case number if Commit took one, and releases the idempotency claim so that
// a retry starts clean. Only this attempt's own claim is touched. A number that cannot
// be given back (another case was numbered since) stays with the claim when there is
// one, for the retry to use; otherwise it is a gap, logged.
func (p *Prepared) Abort(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	s := p.s
	for _, k := range p.uploaded {
		if err := s.Blobs.Delete(ctx, k); err != nil {
			s.Log.ErrorContext(ctx, "remove orphaned evidence object", "err", err)
		}
	}
	p.uploaded = nil
	keepNumber := p.rec != nil && p.rec.CaseNumber != "" && p.seq == 0 // taken over from a crashed attempt
	if p.seq != 0 {
		returned, err := s.Cases.ReturnSequence(ctx, p.counter(), p.seq)
		if err != nil || !returned {
			if p.rec != nil {
				keepNumber = true
			} else {
				s.Log.WarnContext(ctx, "case number left unused", "case", p.c.Number, "err", err)
			}
		}
		p.seq = 0
	}
	if p.rec == nil || p.replay != nil {
		return
	}
	if keepNumber {
		p.rec.ClaimUntil = time.Time{} // a retry may take it over at once
		if err := s.Cases.UpdateIdempotency(ctx, p.rec); err != nil && qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
			s.Log.ErrorContext(ctx, "release idempotency claim", "err", err)
		}
	} else if err := s.Cases.ReleaseIdempotency(ctx, p.rec.KeyHash, p.rec.Owner); err != nil {
		s.Log.ErrorContext(ctx, "release idempotency claim", "err", err)
	}
	p.rec = nil
}

func (s *Service) acceptanceDue(c *Case) (string, bool) {
	if !c.RealName {
		return "", false
	}
	days := s.Config.AcceptanceDays
	if s.DeadlineDays != nil && c.UnitID != "" {
		days = s.DeadlineDays(c.UnitID, "acceptance")
	}
	return s.Calendar.AddWorkingDays(c.ReceivedAt, days)
}

// storeFile streams one upload through type sniffing, metadata removal and hashing
// into the evidence store. It returns the keys of every object it wrote, so the caller
// can remove them if the request as a whole fails.
func (s *Service) storeFile(ctx context.Context, c *Case, r io.Reader, uploader string, room int64) (Evidence, []string, error) {
	limit := s.Config.MaxFileBytes
	// A file the case holds takes no room (see Evidence.Repeats), but which one it is
	// shows only once it is hashed: while the uploader has files on the case, each
	// goes through up to the per-file limit, and the room is checked after. So the
	// retry of an upload that filled the case is answered with its entry, not refused.
	sentBefore := slices.ContainsFunc(c.Evidence, func(e Evidence) bool { return e.UploadedBy == uploader && e.ObjectKey != "" })
	if room < limit && !sentBefore {
		limit = room
	}
	if limit <= 0 {
		return Evidence{}, nil, caseRoomError(s.Config.MaxCaseBytes, 0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ev := Evidence{ID: NewID(), UploadedBy: uploader, UploadedAt: s.now()}
	ev.ObjectKey = "evidence/" + c.ID + "/" + NewID()
	keys := []string{ev.ObjectKey}
	opts := media.Options{MaxBytes: limit}

	var (
		origDone  chan error
		origPipeW *io.PipeWriter
		sealW     io.WriteCloser
	)
	if s.Config.KeepOriginals {
		ev.OriginalKey = "originals/" + c.ID + "/" + NewID() + ".age"
		keys = append(keys, ev.OriginalKey)
		var origPipeR *io.PipeReader
		origPipeR, origPipeW = io.Pipe()
		// The reader must run before SealStream: age writes the header at once.
		origDone = make(chan error, 1)
		go func() {
			_, err := s.Blobs.Put(ctx, ev.OriginalKey, origPipeR, "application/octet-stream")
			origPipeR.CloseWithError(errStoreClosed(err))
			origDone <- err
		}()
		var err error
		if sealW, err = s.Sealer.SealStream(ctx, c.Location.Division, origPipeW); err != nil {
			origPipeW.CloseWithError(err)
			<-origDone
			return Evidence{}, keys, err
		}
		opts.Original = sealW
	}

	pr, pw := io.Pipe()
	type processed struct {
		res media.Result
		err error
	}
	done := make(chan processed, 1)
	go func() {
		res, err := media.Process(r, pw, opts)
		if sealW != nil {
			if err == nil {
				err = sealW.Close()
			}
			origPipeW.CloseWithError(err)
		}
		pw.CloseWithError(err)
		done <- processed{res, err}
	}()
	_, putErr := s.Blobs.Put(ctx, ev.ObjectKey, pr, "application/octet-stream")
	pr.CloseWithError(errStoreClosed(putErr))
	if putErr != nil {
		cancel()
	}
	p := <-done
	var origErr error
	if origDone != nil {
		origErr = <-origDone
	}
	switch {
	case p.err != nil && limit < s.Config.MaxFileBytes && qingfeng.ErrorCode(p.err) == qingfeng.ETOOLARGE:
		// The file is within the per-file limit but not within what the case has left:
		// name that limit, not the room as if it were a file limit.
		return Evidence{}, keys, caseRoomError(s.Config.MaxCaseBytes, room)
	case p.err != nil:
		return Evidence{}, keys, p.err // the client's file is at fault: say why
	case putErr != nil:
		return Evidence{}, keys, fmt.Errorf("store evidence: %w", putErr)
	case origErr != nil:
		return Evidence{}, keys, fmt.Errorf("store sealed original: %w", origErr)
	}
	ev.ContentType = p.res.ContentType
	ev.Size = p.res.StoredSize
	ev.SHA256Received = p.res.ReceivedSHA256
	ev.SHA256Stored = p.res.StoredSHA256
	ev.MetadataRemoved = p.res.MetadataRemoved
	if _, held := repeated(ev, c.Evidence); ev.Size > room && !held {
		return Evidence{}, keys, caseRoomError(s.Config.MaxCaseBytes, room)
	}
	return ev, keys, nil
}

// caseRoomError is the ETOOLARGE error for evidence over the case's total
// (QF_MAX_CASE_BYTES), naming that limit and the room left, so that it is not read as
// the per-file limit.
func caseRoomError(max, room int64) *qingfeng.Error {
	if room <= 0 {
		return qingfeng.Errorf(qingfeng.ETOOLARGE, fmt.Sprintf("该案件的证据总量已达上限（每案合计 %s），不能再上传文件", sizeText(max, "字节")),
			fmt.Sprintf("the case's evidence has reached the per-case total of %s; no more files can be added", sizeText(max, "bytes")))
	}
	return qingfeng.Errorf(qingfeng.ETOOLARGE,
		fmt.Sprintf("超出该案件的证据总量上限（每案合计 %s）：本案还可上传 %s，此次文件超出剩余额度", sizeText(max, "字节"), sizeText(room, "字节")),
		fmt.Sprintf("over the case's evidence total of %s: %s left for this case, and the upload does not fit", sizeText(max, "bytes"), sizeText(room, "bytes")))
}

// sizeText formats a byte count the way people read it ("MB" is what Chinese users know
// MiB as): whole units exactly, others to one decimal.
func sizeText(n int64, unit string) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d %s", n, unit)
}

func errStoreClosed(err error) error {
	if err == nil {
		return io.ErrClosedPipe
	}
	return err
}

// AddedEvidence is one file of an AddEvidence request as the case holds it.
type AddedEvidence struct {
	Evidence
	// AlreadyStored: the uploader had given the case these very bytes before (a
	// retried or doubled upload, see Evidence.Repeats); Evidence is that entry, and
	// nothing was stored again.
	AlreadyStored bool
}

// AddEvidence attaches files to a registered case. Either every file of the request is
// stored and referenced, or none is and no object remains. A file the uploader already
// gave the case is not stored again: it is answered with the entry the case holds, its
// object is removed, and it is no new reporter activity.
func (s *Service) AddEvidence(ctx context.Context, c *Case, uploader string, next func() (io.Reader, error)) ([]AddedEvidence, error) {
	var kept []Evidence
	evs, err := s.StoreFiles(ctx, c, uploader, next, s.Config.MaxCaseBytes-c.EvidenceBytes, func(evs []Evidence) ([]Evidence, error) {
		var err error
		kept, err = s.Cases.AddEvidence(ctx, c.ID, evs, s.Config.MaxCaseBytes)
		return kept, err
	})
	if err != nil {
		return nil, err
	}
	out := make([]AddedEvidence, len(kept))
	repeats := 0
	for i, e := range kept {
		out[i] = AddedEvidence{Evidence: e, AlreadyStored: e.ID != evs[i].ID}
		if out[i].AlreadyStored {
			repeats++
		}
	}
	s.Log.InfoContext(ctx, "evidence added", "case", c.Number, "files", len(evs)-repeats, "already_stored", repeats, "by", uploader)
	return out, nil
}

// StoreFiles runs every file next yields through the evidence pipeline (type sniffing,
// metadata removal, hashing, the object store) under owner's id, within room bytes in
// all, then calls commit with them; if anything fails, every object written is removed.
// commit returns the entry kept for each file, in order: a file kept as another entry
// (one with another ID: the same bytes stored before) was not needed, and its objects
// are removed too. StoreFiles returns the files as stored by it, before commit's
// answer. owner's Location.Division names the custodians sealed originals go to.
// Evidence of cases goes through AddEvidence; the donation ledger's photos come here
// directly.
func (s *Service) StoreFiles(ctx context.Context, owner *Case, uploader string, next func() (io.Reader, error), room int64, commit func([]Evidence) ([]Evidence, error)) ([]Evidence, error) {
	c := owner
	var (
		evs     []Evidence
		written []string
		total   int64
	)
	remove := func(keys []string) {
		dctx := context.WithoutCancel(ctx)
		for _, k := range keys {
			if derr := s.Blobs.Delete(dctx, k); derr != nil {
				s.Log.ErrorContext(ctx, "remove orphaned evidence object", "err", derr)
			}
		}
	}
	fail := func(err error) ([]Evidence, error) {
		remove(written)
		return nil, err
	}
	for {
		r, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail(err)
		}
		if len(evs) >= s.Config.MaxFilesPerReq {
			return fail(qingfeng.Errorf(qingfeng.ETOOLARGE, fmt.Sprintf("一次最多上传%d个文件", s.Config.MaxFilesPerReq), "too many files in one request"))
		}
		ev, keys, err := s.storeFile(ctx, c, r, uploader, room-total)
		written = append(written, keys...)
		if err != nil {
			return fail(err)
		}
		// A file the case holds already takes no room (see Evidence.Repeats); the store
		// decides for good. The ledger's owner holds none: its photos all count.
		if _, ok := repeated(ev, c.Evidence); !ok {
			total += ev.Size
		}
		evs = append(evs, ev)
	}
	if len(evs) == 0 {
		return nil, qingfeng.Invalid(map[string]qingfeng.FieldError{"file": fieldErr("required", "请至少上传一个文件", "upload at least one file")})
	}
	kept, err := commit(evs)
	if err != nil {
		return fail(err)
	}
	if len(kept) != len(evs) {
		// A store's bug: which objects are referenced is unknown, so none is removed.
		return nil, fmt.Errorf("store files: %d files kept as %d entries", len(evs), len(kept))
	}
	var unneeded []string
	for i, e := range kept {
		if e.ID != evs[i].ID {
			unneeded = append(unneeded, evs[i].ObjectKey)
			if evs[i].OriginalKey != "" {
				unneeded = append(unneeded, evs[i].OriginalKey)
			}
		}
	}
	remove(unneeded)
	return evs, nil
}

// FollowUp finds the case a receipt code belongs to: EUNAUTHORIZED for a code that
// belongs to none, which is a guess (the caller meters those; see package pow), and
// EINVALID for a typo, which never reaches the store.
func (s *Service) FollowUp(ctx context.Context, code string) (*Case, error) {
	norm, ok := s.Receipts.Normalize(code)
	if !ok {
		// A typo (wrong length, failed check digit) never reaches the store and costs
		// no attempt: the reporter is told to check what they typed.
		return nil, errReceiptTypo
	}
	c, err := s.Cases.CaseByReceipt(ctx, s.Receipts.Hash(norm))
	if qingfeng.ErrorCode(err) == qingfeng.ENOTFOUND {
		return nil, errBadReceipt
	}
	return c, err
}

var (
	errBadReceipt  = qingfeng.Errorf(qingfeng.EUNAUTHORIZED, "回执码无效", "invalid receipt code")
	errReceiptTypo = &qingfeng.Error{Code: qingfeng.EINVALID, Message: "回执码应为16位数字，请核对是否输错", English: "a receipt code is 16 digits; check for a typo",
		Fields: map[string]qingfeng.FieldError{"receipt_code": {Code: "invalid_receipt", Message: "回执码格式不正确", English: "malformed receipt code"}}}
)

// PostMessage adds a message to a case's conversation (PostNote of kind "message").
func (s *Service) PostMessage(ctx context.Context, c *Case, from, authorID, body, key string) (*Message, bool, error) {
	return s.PostNote(ctx, c, from, authorID, "message", body, key)
}

// MaxIdempotencyKey is the longest Idempotency-Key a client may send.
const MaxIdempotencyKey = 200

var errMessageKeyReused = qingfeng.Errorf(qingfeng.ECONFLICT, "该幂等键已用于另一条留言", "this Idempotency-Key was used for a different message")

// PostNote stores a message of a kind: "message", "internal" (staff only, seen only by
// the unit) or "public_note" (staff only, a status note the reporter sees).
//
// key, when not empty, is the client's idempotency key (a form's, or an
// Idempotency-Key header): a retry under it — a double tap, a resend over a bad
// connection, 32 at once — stores nothing more and returns the message the first
// attempt stored (replayed true), so the reporter never reads the same message twice
// nor staff one reporter message as two. The key names the message (its id is derived
// from the case, the sender, the author and the key), so the store's unique id is what
// makes it once, on every store. The same key with another message is ECONFLICT.
func (s *Service) PostNote(ctx context.Context, c *Case, from, authorID, kind, body, key string) (*Message, bool, error) {
	switch {
	case kind == "message":
	case (kind == "internal" || kind == "public_note") && from == "staff":
	default:
		return nil, false, qingfeng.Invalid(map[string]qingfeng.FieldError{"kind": fieldErr("invalid_value", "留言类型只能是 message、internal 或 public_note", "one of message, internal, public_note")})
	}
	body = trimText(body)
	switch n := len([]rune(body)); {
	case n == 0:
		return nil, false, qingfeng.Invalid(map[string]qingfeng.FieldError{"body": fieldErr("required", "必填", "required")})
	case n > 2000:
		return nil, false, qingfeng.Invalid(map[string]qingfeng.FieldError{"body": fieldErr("too_long", "留言不能超过2000字", "at most 2,000 characters")})
	}
	if len(key) > MaxIdempotencyKey {
		return nil, false, qingfeng.Invalid(map[string]qingfeng.FieldError{"Idempotency-Key": fieldErr("too_long", "幂等键不能超过200个字符", "at most 200 characters")})
	}
	m := &Message{ID: NewID(), CaseID: c.ID, From: from, Kind: kind, AuthorID: authorID, Body: body, CreatedAt: s.now()}
	if key != "" {
		m.ID = messageID(c.ID, from, authorID, key)
	}
	err := s.Cases.AddMessage(ctx, m)
	if err == nil {
		return m, false, nil
	}
	if key != "" && qingfeng.ErrorCode(err) == qingfeng.ECONFLICT {
		// The id is taken: the first attempt's message, or (the same key reused) another.
		msgs, lerr := s.Cases.Messages(ctx, c.ID)
		if lerr != nil {
			return nil, false, lerr
		}
		for _, first := range msgs {
			if first.ID != m.ID {
				continue
			}
			if first.Kind != m.Kind || first.Body != m.Body {
				return nil, false, errMessageKeyReused
			}
			return first, true, nil
		}
	}
	return nil, false, fmt.Errorf("store message on %s: %w", c.Number, err)
}

// messageID is the id of the message sent under an idempotency key: the same for every
// retry of it, written as NewID's are.
func messageID(caseID, from, authorID, key string) string {
	h := sha256.Sum256([]byte("message\x00" + caseID + "\x00" + from + "\x00" + authorID + "\x00" + key))
	return idText([16]byte(h[:16]))
}

// MarkActivitySeen records that staff of unitID read case c as it was loaded: its new
// reporter activity is cleared unless more arrived since c was loaded or the case
// no longer belongs to unitID. Only the owning unit's read counts; anyone else's is
// a no-op. c is the case as shown to the reader, loaded before its messages.
func (s *Service) MarkActivitySeen(ctx context.Context, c *Case, unitID string) error {
	if !c.NewActivity || unitID == "" || c.UnitID != unitID {
		return nil
	}
	cleared, err := s.Cases.MarkActivitySeen(ctx, c.ID, unitID, c.ReporterActivityN, s.now())
	if err != nil {
		return fmt.Errorf("mark activity on %s seen: %w", c.Number, err)
	}
	if !cleared {
		s.Log.DebugContext(ctx, "new reporter activity arrived while the case was read", "case", c.Number)
	}
	return nil
}

var shanghai = qingfeng.Shanghai // the one definition of the zone

// NewID returns a random 128-bit identifier in lowercase base32: unguessable, URL- and
// object-key-safe.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return idText(b)
}

// idText writes 16 bytes as an id: 26 lower-case base32 characters.
func idText(b [16]byte) string {
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// HashHex is SHA-256 in hex.
func HashHex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
