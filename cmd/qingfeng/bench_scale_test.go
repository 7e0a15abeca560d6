package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	qfcrypto "github.com/qingfeng-zj/qingfeng/crypto"
	"github.com/qingfeng-zj/qingfeng/intake"
)

// BenchmarkScale is the store issue's table: a server on the embedded default with
// 1k / 10k / 100k / 200k cases (QF_BENCH_SIZES, comma-separated, to choose), the cases
// filled through the case store directly (CreateCase, 32 at a time), then each request
// a reporter or staff member makes timed over HTTP, one after another (interactive
// latency, not throughput), reqs times each. It prints one table of p50 / p99 in
// milliseconds per request and size:
//
//	go test -run '^$' -bench Scale -benchtime 1x -timeout 60m ./cmd/qingfeng/
//
// A fifth of the cases belong to the measured staff member's unit (a county office's
// share of a city's caseload), spread over every status, category and township, with
// deadlines, assignees and new reporter activity on some, so that each queue filter
// selects a realistic part of the unit.
func BenchmarkScale(b *testing.B) {
	sizes := []int{1_000, 10_000, 100_000, 200_000}
	if v := os.Getenv("QF_BENCH_SIZES"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 100 {
				b.Fatalf("QF_BENCH_SIZES: %q", v)
			}
			sizes = append(sizes, n)
		}
	}
	const reqs = 200
	type row struct {
		name string
		p    map[int][2]float64 // size → p50, p99 in ms
	}
	var table []*row
	rowOf := func(name string) *row {
		for _, r := range table {
			if r.name == name {
				return r
			}
		}
		r := &row{name: name, p: map[int][2]float64{}}
		table = append(table, r)
		return r
	}
	fills := map[int]time.Duration{}
	for b.Loop() {
		for _, n := range sizes {
			sc := startScale(b, n)
			fills[n] = sc.fillTime
			for _, p := range sc.paths() {
				lat := make([]time.Duration, 0, reqs)
				for i := range reqs {
					start := time.Now()
					if err := p.do(i); err != nil {
						b.Fatalf("%d cases, %s: %v", n, p.name, err)
					}
					lat = append(lat, time.Since(start))
				}
				slices.Sort(lat)
				ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
				rowOf(p.name).p[n] = [2]float64{ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100])}
			}
			sc.close()
		}
	}
	var out strings.Builder
	fmt.Fprintf(&out, "\nBenchmarkScale: p50 / p99 ms over %d sequential requests each (embedded default, storage/sqlite)\n\n| request |", reqs)
	for _, n := range sizes {
		fmt.Fprintf(&out, " %d cases |", n)
	}
	out.WriteString("\n|---|")
	for range sizes {
		out.WriteString("---|")
	}
	out.WriteString("\n")
	for _, r := range table {
		fmt.Fprintf(&out, "| %s |", r.name)
		for _, n := range sizes {
			v := r.p[n]
			fmt.Fprintf(&out, " %.1f / %.1f |", v[0], v[1])
		}
		out.WriteString("\n")
	}
	out.WriteString("| (fill through the store, cases/s) |")
	for _, n := range sizes {
		fmt.Fprintf(&out, " %.0f |", float64(n)/fills[n].Seconds())
	}
	out.WriteString("\n")
	fmt.Print(out.String())
	b.ReportMetric(0, "ns/op")
}

// scale is one server filled with n cases.
type scale struct {
	m         *Main
	base      string
	client    *http.Client
	staff     string   // access token of a staff member of unit
	staffName string   // that staff member's username (password consolePassword)
	numbers   []string // case numbers of the unit
	receipts  []string // receipt codes of a sample of cases
	after     string   // a cursor: the id of a case on the unit's first page
	fillTime  time.Duration
}

const scaleUnit = "330782-mz"

func startScale(b *testing.B, n int) *scale {
	b.Helper()
	ctx := context.Background()
	cfg := testConfig(b, b.TempDir(), nil)
	m := &Main{Config: cfg, Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), Stderr: io.Discard}
	if err := m.Run(ctx); err != nil {
		_ = m.Close()
		b.Fatal(err)
	}
	sc := &scale{m: m, base: "http://" + m.Addr(), client: &http.Client{}}
	receipts := qfcrypto.Receipts{Pepper: m.Intake.Receipts.(qfcrypto.Receipts).Pepper}

	// Cases: a fifth in the measured unit, the rest over other units of the city.
	others := []string{"330702-mz", "330703-mz", "330723-mz", "330726-mz", "330727-mz", "330781-mz", "330783-mz", "330784-mz"}
	statuses := []intake.Status{intake.StatusRegistered, intake.StatusRegistered, intake.StatusAccepted, intake.StatusAccepted,
		intake.StatusDisposed, intake.StatusConcluded, intake.StatusFeedbackGiven, intake.StatusClosed, intake.StatusClosed, intake.StatusNotAccepted}
	categories := intake.Categories
	townships := []string{"330782001", "330782002", "330782003", "330782004", "330782005", "330782006", "330782100", "330782101"}
	start := time.Date(2023, 1, 1, 0, 0, 0, 0, qingfeng.Shanghai)
	span := time.Since(start)
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	t0 := time.Now()
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(n), uint64(w)))
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				unit, division := others[i%len(others)], "330782001"
				if i%5 == 0 {
					unit, division = scaleUnit, townships[r.IntN(len(townships))]
				} else {
					division = strings.TrimSuffix(unit, "-mz") + "001"
				}
				received := start.Add(time.Duration(r.Int64N(int64(span))))
				code := receipts.NewCode()
				st := statuses[r.IntN(len(statuses))]
				// One of 5,800 organizations, a third of the reports with its credit code.
				org := r.IntN(5800)
				subject := &intake.OrgSubject{Name: fmt.Sprintf("义乌市第%d号社会组织", org)}
				if i%3 == 0 {
					subject.CreditCode = fmt.Sprintf("51330782MJ%06d0X", org)
				}
				c := &intake.Case{ID: fmt.Sprintf("scale-%07d", i), Number: fmt.Sprintf("QF-%s-%d-%06d", division[:6], received.Year(), i+1),
					Source: "app", Category: categories[r.IntN(len(categories))].Code,
					Subject:     intake.Subject{Kind: intake.SubjectOrganization, Organization: subject},
					Description: "以会员费名义向企业强制收费，收费标准未公示，不交即不予办理。", Location: intake.Location{Division: division},
					ReceiptHash: receipts.Hash(code), Status: st, UnitID: unit,
					Decision:   intake.Decision{UnitID: unit, UnitName: "民政局", Reason: "属地管辖", Router: "rules/v1", DecidedAt: received},
					ReceivedAt: received, UpdatedAt: received, Version: 1}
				due := received.AddDate(0, 0, 15).Format(time.DateOnly)
				switch st {
				case intake.StatusRegistered:
					c.AcceptanceDue = due
				case intake.StatusConcluded:
					c.FeedbackDue = due
				}
				if st != intake.StatusRegistered && r.IntN(3) == 0 {
					c.Assignee = "scale-staff"
				}
				if r.IntN(50) == 0 {
					c.NewActivity, c.ReporterActivityN, c.ReporterActivityAt = true, 1, received.Add(time.Hour)
				}
				if err := m.st.cases.CreateCase(ctx, c); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					next.Store(int64(n))
					return
				}
				mu.Lock()
				if unit == scaleUnit {
					sc.numbers = append(sc.numbers, c.Number)
				}
				if len(sc.receipts) < 1000 {
					sc.receipts = append(sc.receipts, code)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sc.fillTime = time.Since(t0)
	if firstErr != nil {
		sc.close()
		b.Fatal(firstErr)
	}

	// The measured staff member, signed in with the second factor the config requires.
	pw := consolePassword
	name := fmt.Sprintf("scale%d", time.Now().UnixNano())
	_, err := m.Accounts.CreateUser(ctx, accounts.NewUser{Username: name, Password: pw, Role: accounts.RoleStaff, UnitID: scaleUnit},
		func(string) bool { return true }, func(string) bool { return true })
	if err != nil {
		b.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := sc.call("POST", "/v1/auth/login", "", map[string]string{"username": name, "password": pw}, 200, &tok); err != nil {
		b.Fatal(err)
	}
	sc.staff, sc.staffName = tok.AccessToken, name
	var page []struct {
		CaseNumber string `json:"case_number"`
	}
	if err := sc.call("GET", "/v1/cases?limit=50", sc.staff, nil, 200, &page); err != nil {
		b.Fatal(err)
	}
	if len(page) > 0 {
		c, err := m.st.cases.CaseByNumber(ctx, page[len(page)-1].CaseNumber)
		if err != nil {
			b.Fatal(err)
		}
		sc.after = c.ID
	}
	return sc
}

func (sc *scale) close() { _ = sc.m.Close() }

// call sends one request and decodes the answer into out (when not nil); the status
// must be want.
func (sc *scale) call(method, path, token string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, sc.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := sc.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			// Lists are wrapped in an object: decode the "cases" member.
			var wrapped struct {
				Cases json.RawMessage `json:"cases"`
			}
			if json.Unmarshal(b, &wrapped) == nil && wrapped.Cases != nil {
				return json.Unmarshal(wrapped.Cases, out)
			}
			return err
		}
	}
	return nil
}

type scalePath struct {
	name string
	do   func(i int) error
}

// paths are the requests timed: a reporter's and a staff member's.
func (sc *scale) paths() []scalePath {
	get := func(path string) func(int) error {
		return func(int) error { return sc.call("GET", path, sc.staff, nil, 200, nil) }
	}
	today := time.Now().In(qingfeng.Shanghai)
	return []scalePath{
		{"staff reads one case", func(i int) error {
			return sc.call("GET", "/v1/cases/"+sc.numbers[(i*7919)%len(sc.numbers)], sc.staff, nil, 200, nil)
		}},
		{"reporter follow-up login", func(i int) error {
			return sc.call("POST", "/v1/followup/session", "", map[string]string{"receipt_code": sc.receipts[(i*7919)%len(sc.receipts)]}, 200, nil)
		}},
		{"queue (50), newest first", get("/v1/cases?limit=50")},
		{"queue, page 2 (cursor)", get("/v1/cases?limit=50&after=" + sc.after)},
		{"queue, by due date", get("/v1/cases?limit=50&sort=due")},
		{"queue, due within a week", get("/v1/cases?limit=50&sort=due&due_before=" + today.AddDate(0, 0, 7).Format(time.DateOnly))},
		{"queue, status=accepted", get("/v1/cases?limit=50&status=accepted")},
		{"queue, status=registered, by due", get("/v1/cases?limit=50&status=registered&sort=due")},
		{"queue, category", get("/v1/cases?limit=50&category=" + string(intake.Categories[0].Code))},
		{"queue, township", get("/v1/cases?limit=50&division=330782003")},
		{"queue, assignee=me (none)", get("/v1/cases?limit=50&assignee=me")},
		{"queue, assignee=scale-staff", get("/v1/cases?limit=50&assignee=scale-staff")},
		{"queue, new reporter activity", get("/v1/cases?limit=50&new_activity=true")},
		{"queue, org name (one organization)", get("/v1/cases?limit=50&org=" + url.QueryEscape("义乌市第123号社会组织"))},
		{"queue, org name prefix (a fifth of all)", get("/v1/cases?limit=50&org=" + url.QueryEscape("义乌市第1"))},
		{"queue, org name prefix, by due", get("/v1/cases?limit=50&sort=due&org=" + url.QueryEscape("义乌市第1"))},
		{"queue, org credit code", get("/v1/cases?limit=50&org=51330782MJ0001230X")},
		{"queue, org name (none)", get("/v1/cases?limit=50&org=" + url.QueryEscape("杭州某某"))},
		{"/v1/cases/counts", get("/v1/cases/counts")},
		{"/v1/stats (unit, all time)", get("/v1/stats")},
		{"/v1/stats (unit, one year)", get("/v1/stats?from=" + today.AddDate(-1, 0, 0).Format(time.DateOnly) + "&to=" + today.Format(time.DateOnly))},
	}
}
