package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkConsolePages: server time of the console's queue and case page, HTML, on
// a server holding QF_BENCH_CONSOLE_CASES cases (default 10,000; a fifth of them the
// measured unit's), filled through the case store, each page requested 200 times one
// after another over HTTP with the session cookie. It prints p50 / p99 in ms, and the
// API's own list for comparison:
//
//	go test -run '^$' -bench ConsolePages -benchtime 1x -timeout 30m ./cmd/qingfeng/
//
// A figure, not an assertion. The cases and the staff member are BenchmarkScale's
// (startScale).
func BenchmarkConsolePages(b *testing.B) {
	n := 10_000
	if v := os.Getenv("QF_BENCH_CONSOLE_CASES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 100 {
			b.Fatalf("QF_BENCH_CONSOLE_CASES: %q", v)
		}
	}
	// The store issue's fill (BenchmarkScale): a fifth of the cases the unit's, and a
	// staff member of it already signed in to the API.
	sc := startScale(b, n)
	defer sc.close()
	base, numbers, name, fill := sc.base, sc.numbers, sc.staffName, sc.fillTime
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
	api := func(path string) error {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+sc.staff)
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
