package main

// End-to-end tests of the disclosure flow through the real CLI against a real server.
//
// TestScripts builds cmd/qingfeng once, and every script in testdata/script gets its
// own server on the embedded default (FerretDB on SQLite, gofakes3) in a fresh data
// directory under the script's $WORK, on a loopback port of its own. The scripts run
// `exec qfctl ...` (this test binary, re-executed as qfctl) with real post-quantum
// keys; the administrator's and reporter's parts, which qfctl does not do, are the
// custom commands below.
//
// Not covered here: a request expiring. The server's clock cannot be moved from
// outside and it has no setting for the request lifetime, so expiry is tested in
// cmd/qingfeng's TestDisclosureFlow, which moves custody.Disclosures.Now in process.
//
// Custom commands in the scripts:
//
//	qf user NAME ROLE SCOPE          create an account (admin API); SCOPE is the unit of
//	                                 staff, the division of a custodian; password in $WORK/password.txt
//	qf recipient NAME PUBFILE        register NAME's public key (admin API)
//	qf report NAME MOBILE [ID]       file a real-name report in 义乌 (330782) with a photo;
//	                                 sets $CASE
//	qf corrupt SRC DST               copy SRC to DST with one payload byte flipped
//	qf stop                          stop the server (its database is checkpointed)
//	qf scan WORD...                  fail if any file of the server's data directory, or
//	                                 its log, contains a WORD (UTF-8, or JSON-escaped)
//	! qf scan WORD...                fail unless every WORD is found (the scan's control)
//	capture VAR REGEXP               set $VAR to REGEXP's first group in the last stdout

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"qfctl": func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// testPassword is every script account's password; Setup writes it to
// $WORK/password.txt for `stdin password.txt` before `exec qfctl login`.
const testPassword = "correct horse battery staple"

func TestScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the server; skipped with -short")
	}
	bin := buildServer(t)
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Setup:               func(env *testscript.Env) error { return startServer(env, bin) },
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"qf": cmdQF,
			"sleep": func(ts *testscript.TestScript, neg bool, args []string) {
				d, err := time.ParseDuration(strings.Join(args, ""))
				if neg || err != nil || d > time.Minute {
					ts.Fatalf("usage: sleep DURATION (at most 1m)")
				}
				time.Sleep(d)
			},
			"capture": cmdCapture,
		},
	})
}

// buildServer builds cmd/qingfeng into a temporary directory.
func buildServer(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to build the server with")
	}
	bin := filepath.Join(t.TempDir(), "qingfeng")
	start := time.Now()
	cmd := exec.Command(goBin, "build", "-o", bin, "../qingfeng")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ../qingfeng: %v\n%s", err, out)
	}
	t.Logf("built the server in %v", time.Since(start).Round(time.Millisecond))
	return bin
}

// server is one script's running server.
type server struct {
	base    string // http://127.0.0.1:port
	dataDir string
	logPath string
	admin   string // the bootstrap admin's access token
	stop    func() // stops the server (graceful, then killed); idempotent

	mu    sync.Mutex
	users map[string]string // username → id
}

type serverKey struct{}

func serverOf(ts *testscript.TestScript) *server { return ts.Value(serverKey{}).(*server) }

var (
	passwordLine  = regexp.MustCompile(`^\s*password: (\S+)\s*$`)
	listeningLine = regexp.MustCompile(`"msg":"listening".*"addr":"([^"]+)"`)
)

// startServer runs the server on 127.0.0.1:0 in a fresh data directory, learns the
// bootstrap admin's password and the port from its stderr, waits for /readyz and
// signs the admin in.
func startServer(env *testscript.Env, bin string) error {
	dir := filepath.Join(env.WorkDir, ".server")
	s := &server{dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "server.log"), users: map[string]string{}}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin)
	cmd.Dir = dir
	cmd.Env = append(serverEnviron(),
		"QF_ADDR=127.0.0.1:0", "QF_DATA_DIR="+s.dataDir, "QF_LOG_FORMAT=json", "QF_LOG_LEVEL=info",
		// These scripts are about custody, not second factors (cmd/qingfeng tests those);
		// qfctl login --totp is how a custodian with one signs in.
		"QF_REQUIRE_2FA=none")
	// The expiry script gets requests that stay open for seconds, not a week.
	if n, ok := env.T().(interface{ Name() string }); ok && strings.HasSuffix(n.Name(), "/expired") {
		cmd.Env = append(cmd.Env, "QF_DISCLOSURE_TTL=4s")
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	cmd.Stdout = logFile
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	var stopOnce sync.Once
	s.stop = func() {
		stopOnce.Do(func() {
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				cmd.Process.Kill()
			}
			select {
			case <-exited:
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
			logFile.Close()
		})
	}
	env.Defer(s.stop)
	var pw, addr string
	found := make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			if m := passwordLine.FindStringSubmatch(line); m != nil {
				pw = m[1]
				line = "  password: <redacted by the test>"
			}
			if m := listeningLine.FindStringSubmatch(line); m != nil {
				addr = m[1]
			}
			fmt.Fprintln(logFile, line)
			if !signalled && pw != "" && addr != "" {
				signalled = true
				close(found)
			}
		}
		io.Copy(io.Discard, stderr)
		cmd.Wait()
	}()
	select {
	case <-found:
	case <-exited:
		return fmt.Errorf("the server exited before listening; its log:\n%s", readLog(s.logPath))
	case <-time.After(60 * time.Second):
		return fmt.Errorf("the server did not print its admin password and address within 60s; its log:\n%s", readLog(s.logPath))
	}
	s.base = "http://" + addr
	if err := waitReady(s.base); err != nil {
		return fmt.Errorf("%v; the server's log:\n%s", err, readLog(s.logPath))
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := s.call("POST", "/v1/auth/login", "", map[string]string{"username": "admin", "password": pw}, &tok); err != nil {
		return fmt.Errorf("admin login: %v", err)
	}
	// The printed password is one-time: the admin's first act is to change it.
	if err := s.call("POST", "/v1/auth/password", tok.AccessToken, map[string]string{"current_password": pw, "new_password": testPassword + " (admin)"}, nil); err != nil {
		return fmt.Errorf("admin password change: %v", err)
	}
	s.admin = tok.AccessToken
	env.Values[serverKey{}] = s
	env.Setenv("QF_SERVER", s.base)
	env.Setenv("QF_DATA_DIR", s.dataDir)
	env.Setenv("QF_TOKEN", "")
	return os.WriteFile(filepath.Join(env.WorkDir, "password.txt"), []byte(testPassword+"\n"), 0o600)
}

// serverEnviron is this process's environment without the server's own settings, so
// that CI's QF_TEST_S3_* or a developer's QF_* cannot point it elsewhere.
func serverEnviron() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "QF_") || strings.HasPrefix(k, "S3_") || strings.HasPrefix(k, "MONGODB_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func readLog(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

func waitReady(base string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s/readyz not ready after 30s (last: %v)", base, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// call is the fixtures' own small HTTP client, independent of qfctl's.
func (s *server) call(method, path, token string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return s.send(method, path, token, "application/json", b, out)
}

func (s *server) send(method, path, token, contentType string, b []byte, out any) error {
	req, err := http.NewRequestWithContext(context.Background(), method, s.base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func cmdQF(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		// `! qf scan WORD...`: the positive control, that the scan finds what is there.
		if len(args) < 2 || args[0] != "scan" {
			ts.Fatalf("only qf scan supports !")
		}
		scanForPlaintext(ts, serverOf(ts), args[1:], true)
		return
	}
	if len(args) == 0 {
		ts.Fatalf("usage: qf user|recipient|report|transfer|corrupt|scan ...")
	}
	s := serverOf(ts)
	switch args[0] {
	case "user":
		if len(args) != 4 {
			ts.Fatalf("usage: qf user NAME ROLE UNIT|DIVISION")
		}
		body := map[string]any{"username": args[1], "display_name": args[1], "password": testPassword, "role": args[2], "must_change_password": false}
		if args[2] == "staff" {
			body["unit_id"] = args[3]
		} else {
			body["division"] = args[3]
		}
		var u struct {
			ID string `json:"id"`
		}
		ts.Check(s.call("POST", "/v1/admin/users", s.admin, body, &u))
		s.mu.Lock()
		s.users[args[1]] = u.ID
		s.mu.Unlock()
	case "recipient":
		if len(args) != 3 {
			ts.Fatalf("usage: qf recipient NAME PUBFILE")
		}
		s.mu.Lock()
		id, ok := s.users[args[1]]
		s.mu.Unlock()
		if !ok {
			ts.Fatalf("no user %s (create it with qf user first)", args[1])
		}
		rcp := strings.TrimSpace(ts.ReadFile(args[2]))
		ts.Check(s.call("POST", "/v1/admin/recipients", s.admin, map[string]string{"user_id": id, "recipient": rcp, "label": args[1]}, nil))
	case "report":
		if len(args) != 3 && len(args) != 4 {
			ts.Fatalf("usage: qf report NAME MOBILE [RESIDENT_ID]")
		}
		identity := map[string]string{"name": args[1], "mobile": args[2], "preferred_contact": "phone"}
		if len(args) == 4 {
			identity["resident_id"] = args[3]
		}
		body := map[string]any{
			"category":    "arbitrary_fees",
			"subject":     map[string]any{"kind": "organization", "organization": map[string]any{"credit_code": "51330782MJ0000018J", "name": "义乌市某行业协会"}},
			"description": "该协会以“会员服务费”名义向会员企业收取费用，没有收费依据，也不开具票据。",
			"location":    map[string]any{"division": "330782", "address": "义乌市稠城街道"},
			"occurred_on": "2026-10",
			"identity":    identity,
		}
		// Multipart, with a photo, so that the object store holds something too.
		report, err := json.Marshal(body)
		ts.Check(err)
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		ts.Check(mw.WriteField("report", string(report)))
		fw, err := mw.CreateFormFile("file", "photo.png")
		ts.Check(err)
		ts.Check(png.Encode(fw, testImage()))
		ts.Check(mw.Close())
		var f struct {
			CaseNumber string `json:"case_number"`
			Evidence   []struct {
				ID string `json:"id"`
			} `json:"evidence"`
		}
		ts.Check(s.send("POST", "/v1/reports", "", mw.FormDataContentType(), buf.Bytes(), &f))
		if len(f.Evidence) != 1 {
			ts.Fatalf("report filed with %d evidence files, want 1", len(f.Evidence))
		}
		ts.Setenv("CASE", f.CaseNumber)
	case "transfer":
		// qf transfer NAME TO_UNIT: staff member NAME transfers $CASE to another unit.
		if len(args) != 3 {
			ts.Fatalf("usage: qf transfer NAME TO_UNIT")
		}
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		ts.Check(s.call("POST", "/v1/auth/login", "", map[string]string{"username": args[1], "password": testPassword}, &tok))
		ts.Check(s.call("POST", "/v1/cases/"+ts.Getenv("CASE")+"/transfer", tok.AccessToken,
			map[string]string{"to_unit": args[2], "reason": "属其他辖区管辖"}, nil))
	case "corrupt":
		if len(args) != 3 {
			ts.Fatalf("usage: qf corrupt SRC DST")
		}
		b := []byte(ts.ReadFile(args[1]))
		if len(b) < 64 {
			ts.Fatalf("%s: too short to be a sealed file", args[1])
		}
		b[len(b)-5] ^= 0x01 // in the last chunk's Poly1305 tag
		ts.Check(os.WriteFile(ts.MkAbs(args[2]), b, 0o600))
	case "stop":
		s.stop()
	case "scan":
		if len(args) < 2 {
			ts.Fatalf("usage: qf scan WORD...")
		}
		scanForPlaintext(ts, s, args[1:], false)
	default:
		ts.Fatalf("unknown qf command %q", args[0])
	}
}

// scanForPlaintext reads every file under the data directory (the SQLite database
// and its journal under ferretdb/, the objects under s3/, the generated keys) and the
// server's log, and fails on any occurrence of a word, as UTF-8 or as a JSON \u escape.
//
// With expectFound (`! qf scan`), it instead fails unless every word is found: the
// control that shows the scan can see what the server does store in plaintext.
func scanForPlaintext(ts *testscript.TestScript, s *server, words []string, expectFound bool) {
	type needle struct {
		word string
		b    []byte
	}
	var needles []needle
	for _, w := range words {
		needles = append(needles, needle{w, []byte(w)})
		if esc := jsonEscaped(w, "%04x"); esc != w {
			needles = append(needles, needle{w, []byte(esc)}, needle{w, []byte(jsonEscaped(w, "%04X"))})
		}
	}
	files := []string{s.logPath}
	var sizes = map[string]int64{}
	ts.Check(filepath.WalkDir(s.dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	}))
	sawDB, sawObject := false, false
	found := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		ts.Check(err)
		rel, _ := filepath.Rel(filepath.Dir(s.dataDir), f)
		sizes[rel] = int64(len(b))
		if strings.HasSuffix(f, ".sqlite") && len(b) > 0 {
			sawDB = true
		}
		if strings.Contains(filepath.ToSlash(rel), "/s3/buckets/") && len(b) > 0 {
			sawObject = true
		}
		for _, n := range needles {
			if bytes.Contains(b, n.b) {
				if !expectFound {
					ts.Fatalf("plaintext %q found in %s", n.word, rel)
				}
				found[n.word] = rel
			}
		}
	}
	if !sawDB || !sawObject {
		ts.Fatalf("no SQLite database or no stored object under %s (%v): the scan would prove nothing", s.dataDir, sizes)
	}
	if expectFound {
		for _, w := range words {
			if found[w] == "" {
				ts.Fatalf("control: %q not found in any of %d files (%v); the scan cannot see what is stored", w, len(files), sizes)
			}
		}
		ts.Logf("control: found %v", found)
		return
	}
	ts.Logf("scanned %d files for %d words: none found (%v)", len(files), len(words), sizes)
}

// testImage is a small photo-like picture for the report's evidence.
func testImage() image.Image {
	img := image.NewRGBA(image.Rect(0, 0, 32, 24))
	for y := 0; y < 24; y++ {
		for x := 0; x < 32; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 8), uint8(y * 10), 128, 255})
		}
	}
	return img
}

// jsonEscaped is w with every non-ASCII rune as a JSON \uXXXX escape, the hex digits
// formatted by hex (%04x or %04X).
func jsonEscaped(w, hex string) string {
	var b strings.Builder
	for _, r := range w {
		if r < 0x80 {
			b.WriteRune(r)
			continue
		}
		if r > 0xFFFF {
			r1, r2 := utf16Surrogates(r)
			fmt.Fprintf(&b, `\u`+hex+`\u`+hex, r1, r2)
			continue
		}
		fmt.Fprintf(&b, `\u`+hex, r)
	}
	return b.String()
}

func utf16Surrogates(r rune) (rune, rune) {
	r -= 0x10000
	return 0xD800 + (r>>10)&0x3FF, 0xDC00 + r&0x3FF
}

// cmdCapture sets an environment variable from the last command's stdout.
func cmdCapture(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: capture VAR REGEXP")
	}
	re, err := regexp.Compile("(?m)" + args[1])
	ts.Check(err)
	m := re.FindStringSubmatch(ts.ReadFile("stdout"))
	if len(m) < 2 {
		ts.Fatalf("capture %s: %q matches nothing in stdout", args[0], args[1])
	}
	ts.Setenv(args[0], m[1])
}
