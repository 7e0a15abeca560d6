package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/audit"
	qfcrypto "github.com/qingfeng-zj/qingfeng/crypto"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/storage/sqlite"
)

// rawResponse is an exchange made from a goroutine: it is checked against the spec
// afterwards, on the test's goroutine.
type rawResponse struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func sendRaw(method, path, contentType string, body []byte, header map[string]string) rawResponse {
	hr, err := http.NewRequest(method, baseURL+path, bytes.NewReader(body))
	if err != nil {
		return rawResponse{err: err}
	}
	hr.Header.Set("Content-Type", contentType)
	for k, v := range header {
		hr.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return rawResponse{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}

// casesWithDescription lists the stored cases whose description is desc: a filing's
// own cases, whatever other tests file meanwhile.
func casesWithDescription(t *testing.T, desc string) []*intake.Case {
	t.Helper()
	var out []*intake.Case
	after := ""
	for {
		page, err := sqlite.NewCaseStore(srv.st.sqlite).ListCases(context.Background(), intake.CaseFilter{Limit: 200, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			if c.Description == desc {
				out = append(out, c)
			}
		}
		if len(page) < 200 {
			return out
		}
		after = page[len(page)-1].ID
	}
}

// TestIdempotencyRace: 32 identical filings with one Idempotency-Key at once, over
// real HTTP, repeated with a fresh key each round, as JSON and as multipart with a
// photo. Every round stores exactly one case; every 2xx answer carries its number
// and receipt; every other answer is 409 in_progress with Retry-After.
func TestIdempotencyRace(t *testing.T) {
	const parallel, rounds = 32, 10
	photo := testJPEG(t)
	for _, kind := range []string{"json", "multipart"} {
		t.Run(kind, func(t *testing.T) {
			for round := range rounds {
				desc := fmt.Sprintf("并发重试测试（%s 第%d轮 %d）：同一个幂等键同时提交了多次。", kind, round, time.Now().UnixNano())
				report := anonymousReport()
				report["description"] = desc
				var body []byte
				var ct string
				if kind == "json" {
					body, ct = jsonBytes(t, report), "application/json"
				} else {
					r, c := multipartBody(t, [][2]string{{"report", string(jsonBytes(t, report))}}, []filePart{{"file", "p.jpg", photo}})
					body, _ = io.ReadAll(r)
					ct = c
				}
				key := map[string]string{"Idempotency-Key": fmt.Sprintf("race-%s-%d-%d", kind, round, time.Now().UnixNano())}
				results := make([]rawResponse, parallel)
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range results {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						results[i] = sendRaw("POST", "/v1/reports", ct, body, key)
					}()
				}
				close(start)
				wg.Wait()

				var (
					created, replayed, inProgress int
					number, receipt               string
				)
				for _, r := range results {
					if r.err != nil {
						t.Fatal(r.err)
					}
					loadSpec(t).CheckResponse(t, "POST", "/v1/reports", r.status, r.header.Get("Content-Type"), r.body)
					switch r.status {
					case 201, 200:
						if r.status == 201 {
							created++
						} else {
							replayed++
						}
						var f filed
						if err := json.Unmarshal(r.body, &f); err != nil {
							t.Fatal(err)
						}
						if number == "" {
							number, receipt = f.CaseNumber, f.ReceiptCode
						}
						if f.CaseNumber != number || f.ReceiptCode != receipt {
							t.Errorf("round %d: answers disagree: %s/%s and %s/%s", round, number, receipt, f.CaseNumber, f.ReceiptCode)
						}
					case 409:
						inProgress++
						if !strings.Contains(string(r.body), `"in_progress"`) || r.header.Get("Retry-After") == "" {
							t.Errorf("round %d: 409 without in_progress and Retry-After: %s", round, r.body)
						}
					default:
						t.Errorf("round %d: status %d: %s", round, r.status, r.body)
					}
				}
				if created != 1 {
					t.Errorf("round %d: %d answers 201, want exactly 1 (%d replays, %d in progress)", round, created, replayed, inProgress)
				}
				stored := casesWithDescription(t, desc)
				if len(stored) != 1 {
					t.Fatalf("round %d: %d cases stored, want 1", round, len(stored))
				}
				if stored[0].Number != number {
					t.Errorf("round %d: stored %s, answered %s", round, stored[0].Number, number)
				}
				if kind == "multipart" && len(stored[0].Evidence) != 1 {
					t.Errorf("round %d: %d evidence files, want 1", round, len(stored[0].Evidence))
				}
				// Once settled, a retry is a replay.
				again := sendRaw("POST", "/v1/reports", ct, body, key)
				if again.status != 200 || !strings.Contains(string(again.body), number) {
					t.Errorf("round %d: retry after the race: %d %s", round, again.status, again.body)
				}
			}
		})
	}
}

// switchProxy forwards HTTP to target while up (with target's Host header, which
// the embedded S3 server insists on); down closes its listener and every open
// connection, so clients see "connection refused", as with a stopped server, until
// up listens on the same address again.
type switchProxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	server *http.Server
	ln     net.Listener
}

// listenStable listens on addr; for "127.0.0.1:0" it picks a port below Linux's
// ephemeral range (32768 and up), so that while a proxy is down no outgoing
// connection can take its port and keep it from listening again.
func listenStable(t *testing.T, addr string) net.Listener {
	t.Helper()
	if addr != "127.0.0.1:0" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	for range 100 {
		if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))); err == nil {
			return ln
		}
	}
	t.Fatal("no free port below the ephemeral range")
	return nil
}

func newSwitchProxy(t *testing.T, target string) *switchProxy {
	p := &switchProxy{t: t, target: target, addr: "127.0.0.1:0"}
	p.up()
	t.Cleanup(p.down)
	return p
}

func (p *switchProxy) up() {
	ln := listenStable(p.t, p.addr)
	// A real MinIO checks the request's signature, which covers the Host header the
	// client sent (the proxy's address); the embedded S3 server refuses any Host but
	// its own (421). So the header is rewritten for the embedded server only.
	realS3 := os.Getenv("QF_TEST_S3_ENDPOINT") != ""
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.Out.URL.Scheme, r.Out.URL.Host = "http", p.target
		if !realS3 {
			r.Out.Host = p.target
		}
	}}
	p.mu.Lock()
	p.addr, p.server, p.ln = ln.Addr().String(), &http.Server{Handler: rp}, ln
	srv := p.server
	p.mu.Unlock()
	go srv.Serve(ln)
}

func (p *switchProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.server != nil {
		// Close the listener here: Server.Close does not know it until Serve has
		// started, which may be later.
		p.ln.Close()
		p.server.Close()
		p.server = nil
	}
}

func withPhotoReport(t *testing.T, report map[string]any, data []byte) ([]byte, string) {
	r, ct := multipartBody(t, [][2]string{{"report", string(jsonBytes(t, report))}}, []filePart{{"file", "p.jpg", data}})
	b, _ := io.ReadAll(r)
	return b, ct
}

// TestStorageUnavailableAndContiguousNumbers runs a second server whose evidence store
// sits behind a proxy that the test stops and starts. A filing while the store is
// down is 503 with Retry-After and the code unavailable, /readyz says not ready until
// the store answers again, and no refusal of any kind (bad fields, bad or oversized
// files, the store down, a reused key) takes a case number: the stored cases are
// numbered 1, 2, 3, ... without a gap.
func TestStorageUnavailableAndContiguousNumbers(t *testing.T) {
	proxy := newSwitchProxy(t, srv.s3.Endpoint)
	dir := t.TempDir()
	cfg := testConfig(t, dir, map[string]string{"S3_ENDPOINT": proxy.addr, "S3_ACCESS_KEY": srv.s3.AccessKey,
		"S3_SECRET_KEY": srv.s3.SecretKey, "S3_BUCKET": fmt.Sprintf("qf-unavail-%d", time.Now().UnixNano())})
	var logs syncBuffer
	m := &Main{Config: cfg, Log: slog.New(slog.NewJSONHandler(&logs, nil)), Stderr: io.Discard}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	base := "http://" + m.Addr()
	send := func(t *testing.T, path, ct string, body []byte, header map[string]string) rawResponse {
		t.Helper()
		hr, _ := http.NewRequest("POST", base+path, bytes.NewReader(body))
		if path == "/readyz" {
			hr, _ = http.NewRequest("GET", base+path, nil)
		}
		hr.Header.Set("Content-Type", ct)
		for k, v := range header {
			hr.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		loadSpec(t).CheckResponse(t, hr.Method, path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		return rawResponse{status: resp.StatusCode, header: resp.Header, body: b}
	}
	withPhoto := func(t *testing.T, data []byte) ([]byte, string) { return withPhotoReport(t, anonymousReport(), data) }
	photo := testJPEG(t)
	var numbers []string
	good := func(t *testing.T) {
		t.Helper()
		b, ct := withPhoto(t, photo)
		r := send(t, "/v1/reports", ct, b, nil)
		if r.status != 201 {
			t.Fatalf("valid filing: %d %s", r.status, r.body)
		}
		var f filed
		json.Unmarshal(r.body, &f)
		numbers = append(numbers, f.CaseNumber)
	}
	refused := func(t *testing.T, status int, code, ct string, body []byte, header map[string]string) {
		t.Helper()
		r := send(t, "/v1/reports", ct, body, header)
		if r.status != status || !strings.Contains(string(r.body), `"`+code+`"`) {
			t.Fatalf("got %d %s, want %d %s", r.status, r.body, status, code)
		}
	}
	ready := func(t *testing.T, want int) {
		t.Helper()
		if r := send(t, "/readyz", "", nil, nil); r.status != want {
			t.Fatalf("/readyz %d, want %d: %s", r.status, want, r.body)
		}
	}

	good(t)
	ready(t, 200)
	bad := anonymousReport()
	bad["category"] = "no_such_category"
	refused(t, 400, "invalid_input", "application/json", jsonBytes(t, bad), nil)
	b, ct := withPhoto(t, []byte("MZ not a photo at all"))
	refused(t, 415, "unsupported", ct, b, nil)
	b, ct = withPhoto(t, append(append([]byte{}, photo...), bytes.Repeat([]byte{0}, 3<<20)...))
	refused(t, 413, "too_large", ct, b, nil)
	good(t)

	proxy.down()
	b, ct = withPhoto(t, photo)
	r := send(t, "/v1/reports", ct, b, map[string]string{"Idempotency-Key": "down-1"})
	if r.status != 503 || !strings.Contains(string(r.body), `"unavailable"`) || r.header.Get("Retry-After") == "" {
		t.Fatalf("filing with the store down: %d %s (Retry-After %q)", r.status, r.body, r.header.Get("Retry-After"))
	}
	ready(t, 503)
	proxy.up()
	ready(t, 200)
	// The retry under the same key now succeeds, as a new filing.
	r = send(t, "/v1/reports", ct, b, map[string]string{"Idempotency-Key": "down-1"})
	if r.status != 201 {
		t.Fatalf("retry after recovery: %d %s", r.status, r.body)
	}
	var f filed
	json.Unmarshal(r.body, &f)
	numbers = append(numbers, f.CaseNumber)
	other := anonymousReport()
	other["description"] = "同一个幂等键，另一份举报内容。"
	refused(t, 409, "conflict", "application/json", jsonBytes(t, other), map[string]string{"Idempotency-Key": "down-1"})
	good(t)

	// A seeded random sequence of the same steps, with keys reused, replayed and
	// reused for another report, and the store going down and up in between.
	seed := time.Now().UnixNano()
	if v := os.Getenv("QF_TEST_SEED"); v != "" {
		fmt.Sscan(v, &seed)
	}
	t.Logf("random sequence seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	type keyed struct{ body, ct, number string }
	byKey := map[string]keyed{}
	var keys []string
	storeDown := false
	for step := range 30 {
		header := map[string]string{}
		op := rng.IntN(8)
		switch {
		// The store stays down for a step or two: each filing then costs the
		// store client's retries (seconds).
		case op == 0 && !storeDown, op <= 3 && storeDown:
			if storeDown {
				proxy.up()
			} else {
				proxy.down()
			}
			storeDown = !storeDown
		case op <= 4:
			// A filing with a photo, under a new key, a used key, or none.
			report := anonymousReport()
			report["description"] = fmt.Sprintf("随机序列第%d步的举报内容，种子%d。", step, seed)
			b, ct := withPhotoReport(t, report, photo)
			key := fmt.Sprintf("seq-%d-%d", seed, step)
			switch {
			case len(keys) > 0 && rng.IntN(2) == 0:
				key = keys[rng.IntN(len(keys))]
				if rng.IntN(2) == 0 {
					b, ct = []byte(byKey[key].body), byKey[key].ct
				}
			case rng.IntN(4) == 0:
				key = ""
			}
			if key != "" {
				header["Idempotency-Key"] = key
			}
			prev, seen := byKey[key]
			r := send(t, "/v1/reports", ct, b, header)
			var f filed
			json.Unmarshal(r.body, &f)
			switch {
			case storeDown && !seen:
				if r.status != 503 {
					t.Fatalf("step %d: store down: %d %s", step, r.status, r.body)
				}
			case seen && prev.body == string(b): // the retry's files are not stored
				if r.status != 200 || f.CaseNumber != prev.number {
					t.Fatalf("step %d: replay of %s: %d %s", step, prev.number, r.status, r.body)
				}
			case seen: // refused before anything is stored
				if r.status != 409 {
					t.Fatalf("step %d: key reused for another report: %d %s", step, r.status, r.body)
				}
			default:
				if r.status != 201 {
					t.Fatalf("step %d: new filing: %d %s", step, r.status, r.body)
				}
				numbers = append(numbers, f.CaseNumber)
				if key != "" {
					byKey[key] = keyed{string(b), ct, f.CaseNumber}
					keys = append(keys, key)
				}
			}
		case op == 5:
			bad := anonymousReport()
			bad["location"] = map[string]any{"division": "999999"}
			r := send(t, "/v1/reports", "application/json", jsonBytes(t, bad), nil)
			if r.status != 400 {
				t.Fatalf("step %d: bad division: %d %s", step, r.status, r.body)
			}
		case op == 6:
			b, ct := withPhoto(t, []byte("MZ not a photo at all"))
			if r := send(t, "/v1/reports", ct, b, nil); r.status/100 != 4 && !(storeDown && r.status == 503) {
				t.Fatalf("step %d: bad file: %d %s", step, r.status, r.body)
			}
		default:
			b, ct := withPhoto(t, append(append([]byte{}, photo...), bytes.Repeat([]byte{0}, 3<<20)...))
			if r := send(t, "/v1/reports", ct, b, nil); r.status != 413 && !(storeDown && r.status == 503) {
				t.Fatalf("step %d: oversized file: %d %s", step, r.status, r.body)
			}
		}
	}
	if storeDown {
		proxy.up()
	}

	for i, n := range numbers {
		if want := fmt.Sprintf("-%06d", i+1); !strings.HasSuffix(n, want) {
			t.Errorf("case numbers %v: number %d is %s, want it to end in %s", numbers, i+1, n, want)
		}
	}
	cases, err := sqlite.NewCaseStore(m.st.sqlite).CountCases(context.Background())
	if err != nil || cases != int64(len(numbers)) {
		t.Errorf("%d cases stored (%v), want %d", cases, err, len(numbers))
	}
}

// TestFilingIsAudited: a stored case starts its audit trail with case.filed, naming
// the reporter only as "reporter", with its unit, category and source; nothing of a
// real-name reporter's identity or the receipt is in it. A replay adds no entry, and
// a refused filing none either.
func TestFilingIsAudited(t *testing.T) {
	report := anonymousReport()
	report["anonymous"] = false
	report["description"] = fmt.Sprintf("实名举报审计测试 %d：协会违规收费。", time.Now().UnixNano())
	report["identity"] = map[string]any{"name": "审计测试人", "mobile": "13905710042"}
	key := map[string]string{"Idempotency-Key": fmt.Sprintf("audit-%d", time.Now().UnixNano())}
	send := func() response {
		return do(t, req{method: "POST", path: "/v1/reports", body: bytes.NewReader(jsonBytes(t, report)), contentType: "application/json", header: key})
	}
	r := send()
	wantStatus(t, r, 201)
	var f filed
	r.json(t, &f)
	wantStatus(t, send(), 200)

	entries, err := srv.Audit.List(context.Background(), audit.Query{Case: f.CaseNumber})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("%d entries for a filed case and its replay, want 1: %+v", len(entries), entries)
	}
	e := entries[0]
	if e.Action != "case.filed" || e.Actor != audit.ActorReporter || e.Role != "" {
		t.Errorf("entry %+v", e)
	}
	if e.Detail["category"] != "arbitrary_fees" || e.Detail["unit"] == "" || e.Detail["source"] == "" || e.Detail["evidence"] != "0" {
		t.Errorf("detail %v", e.Detail)
	}
	all := fmt.Sprintf("%+v", e)
	digits := strings.ReplaceAll(f.ReceiptCode, " ", "")
	for _, secret := range []string{"审计测试人", "13905710042", digits, f.ReceiptCode} {
		if strings.Contains(all, secret) {
			t.Errorf("audit entry holds %q: %s", secret, all)
		}
	}
}

// TestCloseWaitsForBackgroundJobs: Close returns only after every background job has
// returned, and closes the database after them: a job that still writes to the
// database while winding down succeeds, and nothing logs a disconnected client.
func TestCloseWaitsForBackgroundJobs(t *testing.T) {
	var logs syncBuffer
	m := &Main{Config: testConfig(t, t.TempDir(), nil), Log: slog.New(slog.NewJSONHandler(&logs, nil)), Stderr: io.Discard}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var (
		exited  = make(chan error, 1)
		running = make(chan struct{})
	)
	m.jobs.Go("test job", time.Hour, func(ctx context.Context) error {
		close(running)
		<-ctx.Done()
		time.Sleep(200 * time.Millisecond) // a run slow to wind down
		_, err := sqlite.NewCaseStore(m.st.sqlite).NextSequence(context.WithoutCancel(ctx), "test:shutdown")
		exited <- err
		return nil
	})
	<-running
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the job's last database write failed: %v", err)
		}
	default:
		t.Fatal("Close returned before the background job did")
	}
	if strings.Contains(logs.String(), "client is disconnected") {
		t.Errorf("log: %s", logs.String())
	}
}

// TestOrphanSweep: an object nobody refers to — what a crash between writing the
// evidence and storing the case leaves, here under a case id that does not exist —
// is deleted once older than the grace period and counted in the metric; case
// evidence, kept sealed originals and ledger photos are untouched, and a fresh orphan
// (an upload that may still be in progress) is left alone.
func TestOrphanSweep(t *testing.T) {
	ctx := context.Background()
	srv.Intake.Config.KeepOriginals = true
	report := anonymousReport()
	body, ct := multipartBody(t, [][2]string{{"report", string(jsonBytes(t, report))}}, []filePart{{"file", "p.jpg", testJPEG(t)}})
	r := do(t, req{method: "POST", path: "/v1/reports", body: body, contentType: ct})
	srv.Intake.Config.KeepOriginals = false
	wantStatus(t, r, 201)
	const code = "51330782MJ00000611"
	srv.engine.Orgs.Put(routing.Organization{CreditCode: code, Name: "义乌市某互助会", Type: "社会团体", RegDivision: "330782",
		Division: "330782", Status: routing.OrgNormal})
	liaison, _ := staffLogin(t, accounts.RoleLiaison, "", "330782")
	body, ct = multipartBody(t, nil, []filePart{{"file", "rice.jpg", testJPEG(t)}})
	wantStatus(t, do(t, req{method: "POST", path: "/v1/orgs/" + code + "/ledger/photos", body: body, contentType: ct, token: liaison}), 201)

	orphan := "evidence/" + intake.NewID() + "/" + intake.NewID()
	if _, err := srv.blobs.Put(ctx, orphan, strings.NewReader("left by a crash"), "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	refs, err := srv.st.referenced(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var originals, ledger int
	for k := range refs {
		if strings.HasPrefix(k, "originals/") {
			originals++
		}
		if strings.HasPrefix(k, "evidence/ledger-"+code+"/") {
			ledger++
		}
	}
	if originals == 0 || ledger == 0 {
		t.Fatalf("test setup: %d originals, %d ledger photos referenced", originals, ledger)
	}
	exists := func(key string) bool {
		rc, _, err := srv.blobs.Get(ctx, key)
		if err == nil {
			rc.Close()
		}
		return err == nil
	}
	metric := func() string {
		resp, err := httpGet(baseURL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(resp.Body), "\n") {
			if strings.HasPrefix(line, "qingfeng_orphan_objects_deleted_total ") {
				return strings.TrimPrefix(line, "qingfeng_orphan_objects_deleted_total ")
			}
		}
		t.Fatalf("no qingfeng_orphan_objects_deleted_total in /metrics")
		return ""
	}
	before := metric()

	sweep := func(at time.Time) int {
		sw := *srv.sweeper
		sw.Now = func() time.Time { return at }
		n, err := sw.SweepOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := sweep(time.Now()); n != 0 || !exists(orphan) {
		t.Fatalf("a fresh orphan was swept (%d deleted)", n)
	}
	n := sweep(time.Now().Add(srv.Config.OrphanGrace + time.Minute))
	if n < 1 || exists(orphan) {
		t.Fatalf("orphan still there after a sweep past the grace period (%d deleted)", n)
	}
	for k := range refs {
		if !exists(k) {
			t.Errorf("referenced object %s was deleted", k)
		}
	}
	if after := metric(); before == after {
		t.Errorf("metric unchanged at %s after %d deletions", after, n)
	}
}

// TestIdempotencyStalledAndCrashedAttempts: an attempt that stalls mid-upload holds
// its key: a retry meanwhile waits and is told 409 in_progress. Once the claim has
// lapsed (here: moved into the past in the database, as 5 minutes after a crash), a
// retry takes it over and files the case; when the stalled attempt finally finishes
// it does not file a second one, and its answer is 409 in_progress. One case, and
// its number is the next one: the stalled attempt took none.
func TestIdempotencyStalledAndCrashedAttempts(t *testing.T) {
	ctx := context.Background()
	key := fmt.Sprintf("stalled-%d", time.Now().UnixNano())
	report := anonymousReport()
	report["description"] = fmt.Sprintf("上传中断测试 %d：手机在上传途中断网。", time.Now().UnixNano())
	photo := testJPEG(t)
	full, ct := multipartBody(t, [][2]string{{"report", string(jsonBytes(t, report))}}, []filePart{{"file", "p.jpg", photo}})
	body, _ := io.ReadAll(full)
	header := map[string]string{"Idempotency-Key": key}

	// The stalled attempt: everything but the last bytes of the file.
	cut := len(body) - len(photo)/2
	pr, pw := io.Pipe()
	stalled := make(chan rawResponse, 1)
	go func() {
		hr, _ := http.NewRequest("POST", baseURL+"/v1/reports", pr)
		hr.Header.Set("Content-Type", ct)
		hr.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			stalled <- rawResponse{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		stalled <- rawResponse{status: resp.StatusCode, header: resp.Header, body: b}
	}()
	if _, err := pw.Write(body[:cut]); err != nil {
		t.Fatal(err)
	}
	keyHash := srv.Intake.Receipts.KeyedHash("idempotency-key\x00" + key)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := srv.st.cases.Idempotency(ctx, keyHash); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stalled attempt never claimed its key")
		}
		time.Sleep(10 * time.Millisecond)
	}

	r := sendRaw("POST", "/v1/reports", ct, body, header)
	loadSpec(t).CheckResponse(t, "POST", "/v1/reports", r.status, r.header.Get("Content-Type"), r.body)
	if r.status != 409 || !strings.Contains(string(r.body), `"in_progress"`) || r.header.Get("Retry-After") == "" {
		t.Fatalf("retry during a live attempt: %d %s", r.status, r.body)
	}

	// The holder is as good as crashed: its claim lapses.
	rawExec(t, dataDir, "UPDATE idempotency SET claim_until = ? WHERE key_hash = ?", time.Now().Add(-time.Minute).UnixMilli(), keyHash)
	r = sendRaw("POST", "/v1/reports", ct, body, header)
	if r.status != 201 {
		t.Fatalf("retry after the claim lapsed: %d %s", r.status, r.body)
	}
	var f filed
	json.Unmarshal(r.body, &f)

	// The stalled attempt wakes up and finishes its upload.
	if _, err := pw.Write(body[cut:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	s := <-stalled
	if s.err != nil {
		t.Fatal(s.err)
	}
	if s.status != 409 || !strings.Contains(string(s.body), `"in_progress"`) {
		t.Errorf("the stalled attempt, overtaken: %d %s", s.status, s.body)
	}
	if stored := casesWithDescription(t, report["description"].(string)); len(stored) != 1 {
		t.Fatalf("%d cases stored, want 1", len(stored))
	}
	// The next case gets the next number: the overtaken attempt burnt none.
	next := fileReport(t, anonymousReport())
	if want := nextNumber(t, f.CaseNumber); next.CaseNumber != want {
		t.Errorf("after %s the next case is %s, want %s", f.CaseNumber, next.CaseNumber, want)
	}
	again := sendRaw("POST", "/v1/reports", ct, body, header)
	if again.status != 200 || !strings.Contains(string(again.body), f.CaseNumber) {
		t.Errorf("replay: %d %s", again.status, again.body)
	}
}

func nextNumber(t *testing.T, number string) string {
	t.Helper()
	i := strings.LastIndex(number, "-")
	var n int
	if _, err := fmt.Sscanf(number[i+1:], "%d", &n); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s-%06d", number[:i], n+1)
}

// tcpProxy forwards TCP connections to target while up; down closes the listener and
// every connection, as a stopped database server would, until up listens again on
// the same address.
type tcpProxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{t: t, target: target, addr: "127.0.0.1:0", conns: map[net.Conn]bool{}}
	p.up()
	t.Cleanup(p.down)
	return p
}

func (p *tcpProxy) up() {
	ln := listenStable(p.t, p.addr)
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[s] = true, true
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
}

func (p *tcpProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// TestDatabaseUnavailable: with the database unreachable a filing is 503 with
// Retry-After and /readyz is not ready; once it is back, both recover, and the case
// numbers have no gap.
func TestDatabaseUnavailable(t *testing.T) {
	mongoAddr := strings.TrimPrefix(strings.SplitN(testMongoURI(t), "/?", 2)[0], "mongodb://")
	mongoAddr = strings.TrimSuffix(mongoAddr, "/")
	proxy := newTCPProxy(t, mongoAddr)
	_, recipient, err := qfcrypto.GenerateCustodianKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, t.TempDir(), map[string]string{"MONGODB_URI": "mongodb://" + proxy.addr + "/?retryWrites=false",
		"MONGODB_DATABASE": fmt.Sprintf("qf_dbdown_%d", time.Now().UnixNano()), "QF_CUSTODIAN_RECIPIENTS": "*=" + recipient})
	m := &Main{Config: cfg, Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), Stderr: io.Discard}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	base := "http://" + m.Addr()
	post := func() rawResponse {
		resp, err := http.Post(base+"/v1/reports", "application/json", bytes.NewReader(jsonBytes(t, anonymousReport())))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		loadSpec(t).CheckResponse(t, "POST", "/v1/reports", resp.StatusCode, resp.Header.Get("Content-Type"), b)
		return rawResponse{status: resp.StatusCode, header: resp.Header, body: b}
	}
	ready := func() int {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var numbers []string
	good := func() {
		t.Helper()
		r := post()
		if r.status != 201 {
			t.Fatalf("filing: %d %s", r.status, r.body)
		}
		var f filed
		json.Unmarshal(r.body, &f)
		numbers = append(numbers, f.CaseNumber)
	}
	good()
	proxy.down()
	r := post()
	if r.status != 503 || !strings.Contains(string(r.body), `"unavailable"`) || r.header.Get("Retry-After") == "" {
		t.Fatalf("filing with the database down: %d %s", r.status, r.body)
	}
	if s := ready(); s != 503 {
		t.Errorf("/readyz with the database down: %d", s)
	}
	proxy.up()
	deadline := time.Now().Add(20 * time.Second)
	for ready() != 200 {
		if time.Now().After(deadline) {
			t.Fatal("/readyz did not recover")
		}
		time.Sleep(100 * time.Millisecond)
	}
	good()
	if !strings.HasSuffix(numbers[0], "-000001") || !strings.HasSuffix(numbers[1], "-000002") {
		t.Errorf("case numbers %v", numbers)
	}
}

// TestOrphanAfterKill9: the real server binary is killed (SIGKILL) while a report's
// second file is still uploading: the first file's object is left in the store with
// no case naming it. A server started again on the same data directory sweeps it once
// it is past the grace period; the evidence of a case filed before the kill stays.
func TestOrphanAfterKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the server binary; skipped with -short")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to build the server with")
	}
	bin := filepath.Join(t.TempDir(), "qingfeng")
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	// The killed server and the one started after it use the same object store: the
	// real MinIO when the tests have one, else the embedded S3 in dir.
	s3 := map[string]string{}
	if ep := os.Getenv("QF_TEST_S3_ENDPOINT"); ep != "" {
		s3 = map[string]string{"S3_ENDPOINT": ep, "S3_ACCESS_KEY": os.Getenv("QF_TEST_S3_ACCESS_KEY"),
			"S3_SECRET_KEY": os.Getenv("QF_TEST_S3_SECRET_KEY"), "S3_BUCKET": fmt.Sprintf("qf-kill9-%d", time.Now().UnixNano())}
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "QF_ADDR=127.0.0.1:0", "QF_DATA_DIR=" + dir, "QF_LOG_FORMAT=json"}
	for k, v := range s3 {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		listening := regexp.MustCompile(`"msg":"listening".*"addr":"([^"]+)"`)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addrCh <- m[1]
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	var base string
	select {
	case a := <-addrCh:
		base = "http://" + a
	case <-time.After(60 * time.Second):
		t.Fatal("the server did not start")
	}
	photo := testJPEG(t)
	body, ct := multipartBody(t, [][2]string{{"report", string(jsonBytes(t, anonymousReport()))}}, []filePart{{"file", "p.jpg", photo}})
	resp, err := http.Post(base+"/v1/reports", ct, body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("filing before the kill: %d", resp.StatusCode)
	}

	// Two files; the second never finishes.
	full, ct := multipartBody(t, [][2]string{{"report", string(jsonBytes(t, anonymousReport()))}},
		[]filePart{{"file", "a.jpg", photo}, {"file", "b.jpg", photo}})
	all, _ := io.ReadAll(full)
	pr, pw := io.Pipe()
	go func() {
		hr, _ := http.NewRequest("POST", base+"/v1/reports", pr)
		hr.Header.Set("Content-Type", ct)
		if resp, err := http.DefaultClient.Do(hr); err == nil {
			resp.Body.Close()
		}
	}()
	pw.Write(all[:len(all)-len(photo)/2])
	time.Sleep(2 * time.Second) // the first file is stored meanwhile
	cmd.Process.Kill()
	cmd.Wait()
	killed = true
	pw.CloseWithError(errors.New("server killed"))

	restart := testConfig(t, dir, nil)
	if len(s3) == 0 {
		restart.S3Endpoint = "" // testConfig may name the real MinIO: use the embedded S3, as the binary did
	} else {
		restart.S3Bucket = s3["S3_BUCKET"]
	}
	m := &Main{Config: restart, Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), Stderr: io.Discard}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	objects := func() []string {
		var keys []string
		if err := m.blobs.List(ctx, "evidence/", func(k string, _ time.Time) error { keys = append(keys, k); return nil }); err != nil {
			t.Fatal(err)
		}
		return keys
	}
	refs, err := m.st.referenced(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var orphans []string
	for _, k := range objects() {
		if !refs[k] {
			orphans = append(orphans, k)
		}
	}
	if len(refs) != 1 || len(orphans) == 0 {
		t.Fatalf("after the kill: %d referenced objects (want 1), orphans %v", len(refs), orphans)
	}
	sw := *m.sweeper
	sw.Now = func() time.Time { return time.Now().Add(m.Config.OrphanGrace + time.Minute) }
	n, err := sw.SweepOnce(ctx)
	if err != nil || n != len(orphans) {
		t.Fatalf("swept %d (%v), want %d", n, err, len(orphans))
	}
	left := objects()
	if len(left) != 1 || !refs[left[0]] {
		t.Errorf("objects left %v, want only the referenced one", left)
	}
}
