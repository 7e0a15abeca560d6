package intake_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	qfcrypto "github.com/qingfeng-zj/qingfeng/crypto"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/triage"
)

// BenchmarkIntakeServiceInMemory is the CPU one tip-off costs the intake service itself
// (validation, numbering, receipt, routing, sealing, logging), with the database
// replaced by a map: Prepare then Commit, one report per iteration.
//
//	go test -run '^$' -bench 'IntakeServiceInMemory' -benchmem -count 5 ./intake/
//
// The sub-benchmarks:
//
//   - anonymous: no identity, so nothing is sealed;
//   - realname: the same report with an identity, sealed with age to two hybrid
//     (ML-KEM-768 + X25519) custodians, as crypto's BenchmarkSealIdentity does;
//   - seal-only: Sealer.Seal of the same identity JSON alone, the same call and
//     configuration as crypto's BenchmarkSealIdentity, so that (realname − anonymous)
//     can be compared with it in the same process;
//   - receipt-only: what a report spends on its receipt (new code, keyed hash,
//     formatting), the other deliberate cost.
//
// (realname − anonymous) is sealing plus the small extras of a real-name report: the
// identity's validation and JSON encoding and the acceptance deadline (working-day
// calendar).
func BenchmarkIntakeServiceInMemory(b *testing.B) {
	svc, sealer := benchService(b)
	ctx := context.Background()

	file := func(b *testing.B, d func() intake.Draft) {
		b.ReportAllocs()
		for b.Loop() {
			p, err := svc.Prepare(ctx, intake.FileRequest{Draft: d()})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := p.Commit(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("anonymous", func(b *testing.B) { file(b, anonymousDraft) })
	b.Run("realname", func(b *testing.B) { file(b, realNameDraft) })
	b.Run("seal-only", func(b *testing.B) {
		identity := []byte(`{"name":"张三","mobile":"13800000000","resident_id":"330782199001011234","preferred_contact":"工作日晚上打电话，不要发短信"}` + strings.Repeat(" ", 40))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := sealer.Seal(ctx, "330782001", identity); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("receipt-only", func(b *testing.B) {
		r := svc.Receipts
		b.ReportAllocs()
		for b.Loop() {
			code := r.NewCode()
			if len(r.Hash(code)) == 0 || r.Format(code) == "" {
				b.Fatal("empty receipt")
			}
		}
	})
}

// benchService wires intake.Service as cmd/qingfeng does, with memCases for the database
// and no object store (no report here carries files).
func benchService(b *testing.B) (*intake.Service, *qfcrypto.Sealer) {
	b.Helper()
	var recipients [2]string
	for i := range recipients {
		_, r, err := qfcrypto.GenerateCustodianKey()
		if err != nil {
			b.Fatal(err)
		}
		recipients[i] = r
	}
	sealer, err := qfcrypto.NewSealer(map[string][]string{"330782": {recipients[0]}, "*": {recipients[1]}})
	if err != nil {
		b.Fatal(err)
	}
	cal, err := triage.NewCalendar()
	if err != nil {
		b.Fatal(err)
	}
	pepper, err := qfcrypto.NewPepper([]byte("benchmark pepper, 32 bytes or more, not a secret"))
	if err != nil {
		b.Fatal(err)
	}
	units, err := routing.NewUnits(routing.DefaultUnits())
	if err != nil {
		b.Fatal(err)
	}
	router := routing.NewEngine(units, routing.NewOrgs(), routing.DefaultRules())
	return &intake.Service{
		Cases: newMemCases(), Blobs: noBlobs{}, Sealer: sealer, Router: router, Calendar: cal,
		Receipts: qfcrypto.Receipts{Pepper: pepper}, Ref: routing.Reference{}, Config: intake.DefaultConfig,
		// Production logs JSON at info level; "case registered" is formatted and dropped.
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}, sealer
}

// anonymousDraft is the report of cmd/qingfeng's API tests (anonymousReport) as the
// handler decodes it: a fresh Draft each time, since validation normalizes in place.
func anonymousDraft() intake.Draft {
	return intake.Draft{
		Category: "arbitrary_fees",
		Subject: intake.Subject{Kind: intake.SubjectOrganization,
			Organization: &intake.OrgSubject{CreditCode: "51330782MJ0000018J", Name: "义乌市某行业协会"}},
		Description: "该协会以“会员服务费”名义向会员企业收取费用，没有收费依据，也不开具票据。",
		Location:    intake.Location{Division: "330782", Address: "义乌市稠城街道"},
		OccurredOn:  "2026-10",
		Anonymous:   true,
		Source:      "app",
	}
}

func realNameDraft() intake.Draft {
	d := anonymousDraft()
	d.Anonymous = false
	d.Identity = &intake.Identity{Name: "张三", Mobile: "13800000000", ResidentID: "", PreferredContact: "phone"}
	return d
}

// memCases is the smallest intake.CaseStore Prepare and Commit can run on: counters
// and case ids in maps under one mutex. Methods they do not call fail.
type memCases struct {
	mu       sync.Mutex
	counters map[string]int64
	cases    map[string]struct{} // ids only: the benchmark should not grow the Go heap by every case
}

func newMemCases() *memCases {
	return &memCases{counters: map[string]int64{}, cases: map[string]struct{}{}}
}

var _ intake.CaseStore = (*memCases)(nil)

var errNotInBenchmark = errors.New("memCases: not implemented for the benchmark")

func (m *memCases) NextSequence(_ context.Context, name string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.counters[name]++
	return m.counters[name], nil
}

func (m *memCases) CreateCase(_ context.Context, c *intake.Case) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.cases[c.ID]; ok {
		return errors.New("memCases: duplicate case id")
	}
	m.cases[c.ID] = struct{}{}
	return nil
}

func (m *memCases) CaseByID(context.Context, string) (*intake.Case, error) {
	return nil, errNotInBenchmark
}

func (m *memCases) CaseByNumber(context.Context, string) (*intake.Case, error) {
	return nil, errNotInBenchmark
}

func (m *memCases) CaseByReceipt(context.Context, []byte) (*intake.Case, error) {
	return nil, errNotInBenchmark
}

func (m *memCases) ListCases(context.Context, intake.CaseFilter) ([]*intake.Case, error) {
	return nil, errNotInBenchmark
}

func (m *memCases) AddEvidence(context.Context, string, []intake.Evidence, int64) ([]intake.Evidence, error) {
	return nil, errNotInBenchmark
}

func (m *memCases) Reroute(context.Context, *intake.Case, intake.Category, intake.Subject, intake.Decision) error {
	return errNotInBenchmark
}

func (m *memCases) AddMessage(context.Context, *intake.Message) error { return errNotInBenchmark }

func (m *memCases) Messages(context.Context, string) ([]*intake.Message, error) {
	return nil, errNotInBenchmark
}

func (m *memCases) MarkActivitySeen(context.Context, string, string, int64, time.Time) (bool, error) {
	return false, errNotInBenchmark
}
func (m *memCases) EndFollowUp(context.Context, string, time.Time) error { return errNotInBenchmark }

func (m *memCases) ReturnSequence(context.Context, string, int64) (bool, error) {
	return false, errNotInBenchmark
}

func (m *memCases) ClaimIdempotency(context.Context, *intake.IdempotencyRecord) (*intake.IdempotencyRecord, error) {
	return nil, errNotInBenchmark
}

func (m *memCases) UpdateIdempotency(context.Context, *intake.IdempotencyRecord) error {
	return errNotInBenchmark
}

func (m *memCases) Idempotency(context.Context, string) (*intake.IdempotencyRecord, error) {
	return nil, errNotInBenchmark
}

func (m *memCases) ReleaseIdempotency(context.Context, string, string) error {
	return errNotInBenchmark
}

// noBlobs is an object store for reports without files: any use is a bug here.
type noBlobs struct{}

func (noBlobs) Put(context.Context, string, io.Reader, string) (int64, error) {
	return 0, errNotInBenchmark
}

func (noBlobs) Get(context.Context, string) (io.ReadCloser, int64, error) {
	return nil, 0, errNotInBenchmark
}

func (noBlobs) Delete(context.Context, string) error { return errNotInBenchmark }
