package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
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
	"github.com/qingfeng-zj/qingfeng/intake"
)

// BenchmarkConsolePages: server time of the console's queue and case page, HTML, on
// a server holding QF_BENCH_CONSOLE_CASES cases (default 10,000; a fifth of them the
// measured unit's), filled through the case store, each page requested 200 times one
// after another over HTTP with the session cookie. It prints p50 / p99 in ms, and the
// API's own list for comparison:
//
//	go test -run '^$' -bench ConsolePages -benchtime 1x -timeout 30m ./cmd/qingfeng/
//
// A figure, not an assertion. (BenchmarkScale, the store issue's harness on the lead's
// branch, is the place for these rows at 200,000 cases once both are merged.)
func BenchmarkConsolePages(b *testing.B) {
	n := 10_000
	if v := os.Getenv("QF_BENCH_CONSOLE_CASES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 100 {
			b.Fatalf("QF_BENCH_CONSOLE_CASES: %q", v)
		}
	}
	ctx := context.Background()
	m := &Main{Config: testConfig(b, b.TempDir(), nil), Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), Stderr: io.Discard}
	if err := m.Run(ctx); err != nil {
		_ = m.Close()
		b.Fatal(err)
	}
	defer m.Close()
	base := "http://" + m.Addr()
	const unit = "330782-mz"
	others := []string{"330702-mz", "330703-mz", "330723-mz", "330781-mz", "330783-mz"}
	statuses := []intake.Status{intake.StatusRegistered, intake.StatusAccepted, intake.StatusAccepted, intake.StatusDisposed,
		intake.StatusConcluded, intake.StatusClosed, intake.StatusClosed, intake.StatusNotAccepted}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, qingfeng.Shanghai)
	span := time.Since(start)
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		mu      sync.Mutex
		numbers []string
		fillErr error
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
				u, division := others[i%len(others)], ""
				if i%5 == 0 {
					u, division = unit, "330782"+fmt.Sprintf("%03d", 1+r.IntN(9))
				} else {
					division = strings.TrimSuffix(u, "-mz") + "001"
				}
				received := start.Add(time.Duration(r.Int64N(int64(span))))
				st := statuses[r.IntN(len(statuses))]
				c := &intake.Case{ID: fmt.Sprintf("cbench-%07d", i), Number: fmt.Sprintf("QF-%s-%d-%06d", division[:6], received.Year(), i+1),
					Source: "app", Category: intake.Categories[r.IntN(len(intake.Categories))].Code,
					Subject:     intake.Subject{Kind: intake.SubjectOrganization, Organization: &intake.OrgSubject{Name: fmt.Sprintf("义乌市第%d号社会组织", r.IntN(5800))}},
					Description: "以会员费名义向企业强制收费，收费标准未公示，不交即不予办理。", Location: intake.Location{Division: division},
					ReceiptHash: []byte(fmt.Sprintf("bench-%d", i)), Status: st, UnitID: u,
					Decision:   intake.Decision{UnitID: u, UnitName: "民政局", Reason: "属地管辖", Router: "rules/v1", DecidedAt: received},
					ReceivedAt: received, UpdatedAt: received, Version: 1}
				if st == intake.StatusRegistered {
					c.AcceptanceDue = received.AddDate(0, 0, 21).Format(time.DateOnly)
				}
				if r.IntN(50) == 0 {
					c.NewActivity, c.ReporterActivityN, c.ReporterActivityAt = true, 1, received.Add(time.Hour)
				}
				if err := m.Intake.Cases.CreateCase(ctx, c); err != nil {
					mu.Lock()
					fillErr = err
					mu.Unlock()
					next.Store(int64(n))
					return
				}
				if u == unit {
					mu.Lock()
					numbers = append(numbers, c.Number)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if fillErr != nil {
		b.Fatal(fillErr)
	}
	fill := time.Since(t0)

	name := fmt.Sprintf("cbench%d", time.Now().UnixNano())
	if _, err := m.Accounts.CreateUser(ctx, accounts.NewUser{Username: name, Password: consolePassword, Role: accounts.RoleStaff, UnitID: unit},
		func(string) bool { return true }, func(string) bool { return true }); err != nil {
		b.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	get := func(path string) (string, error) {
		resp, err := client.Get(base + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return "", fmt.Errorf("GET %s: %d", path, resp.StatusCode)
		}
		return string(body), err
	}
	login, err := get("/console/login")
	if err != nil {
		b.Fatal(err)
	}
	csrf := csrfInput.FindStringSubmatch(login)[1]
	resp, err := client.PostForm(base+"/console/login", url.Values{"_csrf": {csrf}, "username": {name}, "password": {consolePassword}})
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasSuffix(resp.Request.URL.Path, "/console") {
		b.Fatalf("console sign-in: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	lr, err := http.Post(base+"/v1/auth/login", "application/json", strings.NewReader(`{"username":"`+name+`","password":"`+consolePassword+`"}`))
	if err != nil {
		b.Fatal(err)
	}
	if err := json.NewDecoder(lr.Body).Decode(&tok); err != nil {
		b.Fatal(err)
	}
	lr.Body.Close()
	api := func(path string) error {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 {
			return fmt.Errorf("GET %s: %d", path, resp.StatusCode)
		}
		return nil
	}

	paths := []struct {
		name string
		path func(i int) string
	}{
		{"queue, first page (50)", func(int) string { return "/console/cases" }},
		{"queue, status tab", func(int) string { return "/console/cases?status=accepted" }},
		{"queue, by due date", func(int) string { return "/console/cases?sort=due" }},
		{"queue, new activity", func(int) string { return "/console/cases?new_activity=true" }},
		{"case page", func(i int) string { return "/console/cases/" + numbers[i%len(numbers)] }},
		{"API: GET /v1/cases (50)", func(int) string { return "api:/v1/cases" }},
		{"API: GET /v1/cases/counts", func(int) string { return "api:/v1/cases/counts" }},
	}
	const reqs = 200
	var out strings.Builder
	fmt.Fprintf(&out, "\nBenchmarkConsolePages: %d cases (%d of the unit), filled in %s; p50 / p99 ms over %d sequential requests\n\n| page | p50 | p99 |\n|---|---|---|\n",
		n, len(numbers), fill.Round(time.Second), reqs)
	for b.Loop() {
		for _, p := range paths {
			lat := make([]time.Duration, 0, reqs)
			for i := range reqs {
				t := time.Now()
				path := p.path(i)
				var err error
				if a, ok := strings.CutPrefix(path, "api:"); ok {
					err = api(a)
				} else {
					_, err = get(path)
				}
				if err != nil {
					b.Fatalf("%s: %v", p.name, err)
				}
				lat = append(lat, time.Since(t))
			}
			slices.Sort(lat)
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			fmt.Fprintf(&out, "| %s | %.1f | %.1f |\n", p.name, ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]))
		}
	}
	fmt.Print(out.String())
	b.ReportMetric(0, "ns/op")
}
