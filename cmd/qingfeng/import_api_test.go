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
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/audit"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/storage/sqlite"
)

// The import routes run against the shared server (main_test.go), whose data directory
// the embedded database holds: the situation the routes exist for.

// importAnswer is the route's answer, as the CLI reads it.
type importAnswer = remoteImportResult

// lines renders the rejected rows as the CLI prints them on stderr.
func (a importAnswer) lines() []string {
	var out []string
	for _, r := range a.RejectedRows {
		for _, e := range r.Errors {
			out = append(out, fmt.Sprintf("row %d: %s: %s", r.Row, e.Field, e.Message))
		}
	}
	return out
}

func importAPI(t *testing.T, what, token, contentType string, body io.Reader) response {
	t.Helper()
	return do(t, req{method: "POST", path: "/v1/admin/import/" + what, body: body, contentType: contentType, token: token})
}

func importOK(t *testing.T, what, token, contentType, body string) importAnswer {
	t.Helper()
	r := importAPI(t, what, token, contentType, strings.NewReader(body))
	wantStatus(t, r, 200)
	var a importAnswer
	r.json(t, &a)
	return a
}

// importSerial makes credit codes no other test uses.
var importSerial = rand.IntN(400000) + 500000

func newImportCode(division string) string {
	importSerial++
	return creditCode('1', division, importSerial)
}

// explainOrg is the unit a draft arbitrary-fees report about the organization code
// would be routed to now.
func explainOrg(t *testing.T, token, code string) string {
	t.Helper()
	body := anonymousReport()
	body["subject"] = map[string]any{"kind": "organization", "organization": map[string]any{"credit_code": code, "name": "某协会"}}
	r := postJSON(t, "/v1/routing/explain", token, body)
	wantStatus(t, r, 200)
	var out struct {
		Decision struct {
			UnitID string `json:"unit_id"`
		} `json:"decision"`
	}
	r.json(t, &out)
	return out.Decision.UnitID
}

func sharedOrg(code string) (routing.Organization, bool) { return srv.engine.Orgs.Get(code) }

func storedSharedOrg(t *testing.T, code string) bool {
	t.Helper()
	_, err := sqlite.NewOrgStore(srv.st.sqlite).Organization(context.Background(), code)
	return err == nil
}

// auditDetails are the details of every audit entry of action by actor.
func auditDetails(t *testing.T, action, actor string) []map[string]string {
	t.Helper()
	var out []map[string]string
	for after := int64(0); ; {
		list, err := srv.Audit.List(context.Background(), audit.Query{After: after, Limit: audit.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 0 {
			return out
		}
		for _, e := range list {
			if e.Action == action && e.Actor == actor {
				out = append(out, e.Detail)
			}
		}
		after = list[len(list)-1].Seq
	}
}

// TestImportRouteRegistryAtOnce: an organization imported through the route is used by
// routing at the next request, without waiting for the periodic reload; importing the
// file again updates it; the import is audited.
func TestImportRouteRegistryAtOnce(t *testing.T) {
	admin, adminUser := staffLogin(t, accounts.RoleAdmin, "", "")
	code := newImportCode("330782")
	before := explainOrg(t, admin, code)
	if before == "330700-mz" {
		t.Fatalf("the unknown organization is already routed to the city bureau")
	}
	csv := "统一社会信用代码,名称,状态,登记管理机关\n" + code + ",义乌市某新建行业协会,正常,金华市民政局\n"
	a := importOK(t, "orgs", admin, "text/csv", csv)
	if a.Read != 1 || a.Inserted != 1 || a.Updated != 0 || a.Rejected != 0 || len(a.RejectedRows) != 0 {
		t.Errorf("first import %+v", a)
	}
	if got := explainOrg(t, admin, code); got != "330700-mz" {
		t.Errorf("explain after the import: %s, want the registration authority 330700-mz (before: %s)", got, before)
	}

	// Again, now with the county bureau: an update, used at once.
	csv = strings.Replace(csv, "金华市民政局", "义乌市民政局", 1)
	a = importOK(t, "orgs", admin, "Text/CSV; charset=UTF-8", csv)
	if a.Read != 1 || a.Inserted != 0 || a.Updated != 1 {
		t.Errorf("re-import %+v", a)
	}
	if got := explainOrg(t, admin, code); got != "330782-mz" {
		t.Errorf("explain after the re-import: %s, want 330782-mz", got)
	}
	if o, ok := sharedOrg(code); !ok || o.RegistrationAuthority != "330782-mz" {
		t.Errorf("registry holds %+v, %v", o, ok)
	}

	details := auditDetails(t, "registry.import.orgs", adminUser.ID)
	if len(details) != 2 || details[0]["inserted"] != "1" || details[1]["updated"] != "1" || details[1]["format"] != "csv" {
		t.Errorf("audit details %v", details)
	}
}

// TestImportRouteRejectsLikeTheCLI: the rejected rows, their numbers and reasons are
// those the CLI reports for the same file; the other rows are imported.
func TestImportRouteRejectsLikeTheCLI(t *testing.T) {
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	a1, a2, a3 := newImportCode("330782"), newImportCode("330782"), newImportCode("330000")
	csv := "credit_code,name,status,registration_authority\n" +
		a1 + ",甲协会,正常,\n" +
		a2 + ",,正常,\n" + // row 2: no name
		a3 + ",丙基金会,存续,\n" + // row 3: unknown status
		a1 + ",甲协会重复,正常,\n" + // row 4: the code of row 1
		"\"" + newImportCode("330782") + "\",丁,正常\n" + // row 5: three fields of four
		"91330000MA2XXXXX0X,某公司,正常,\n" + // row 6: not a 民政 code
		newImportCode("330782") + ",戊协会,正常,某不存在的局\n" // row 7: unknown authority

	a := importOK(t, "orgs", admin, "text/csv", csv)
	if a.Read != 7 || a.Inserted != 1 || a.Rejected != 6 || len(a.RejectedRows) != 6 || a.RejectedRowsOmitted != 0 {
		t.Errorf("answer %+v", a)
	}
	var rows []int
	for _, r := range a.RejectedRows {
		rows = append(rows, r.Row)
		for _, e := range r.Errors {
			if e.Message == "" || e.Code == "" || !hasHan(e.Message) {
				t.Errorf("row %d %s: code %q, message %q (want Chinese)", r.Row, e.Field, e.Code, e.Message)
			}
		}
	}
	if !slices.Equal(rows, []int{2, 3, 4, 5, 6, 7}) {
		t.Errorf("rejected rows %v", rows)
	}
	if !storedSharedOrg(t, a1) || storedSharedOrg(t, a2) || storedSharedOrg(t, a3) {
		t.Error("wrong rows stored")
	}

	// The CLI, on a database of its own, says the same of the same file.
	_, name := importDB(t)
	code, _, stderr := importCLI(t, name, "", "orgs", writeFile(t, "orgs.csv", csv))
	if code != 1 {
		t.Fatalf("cli exit %d", code)
	}
	var cli []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if strings.HasPrefix(l, "row ") {
			cli = append(cli, l)
		}
	}
	if got := a.lines(); !slices.Equal(got, cli) {
		t.Errorf("the route and the CLI differ:\nroute %q\ncli   %q", got, cli)
	}

	// English on request, same rows.
	r := do(t, req{method: "POST", path: "/v1/admin/import/orgs", body: strings.NewReader(csv), contentType: "text/csv", token: admin,
		header: map[string]string{"Accept-Language": "en"}})
	wantStatus(t, r, 200)
	var en importAnswer
	r.json(t, &en)
	if len(en.RejectedRows) != 6 || hasHan(en.RejectedRows[0].Errors[0].Message) || en.Updated != 1 {
		t.Errorf("English answer %s", r.Body)
	}
}

func hasHan(s string) bool {
	for _, r := range s {
		if r >= 0x4e00 && r <= 0x9fff {
			return true
		}
	}
	return false
}

// TestImportRouteRefusals: who may import, and which bodies are refused — each refusal
// changing nothing, not even the valid rows before a fault.
func TestImportRouteRefusals(t *testing.T) {
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	staff, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	liaison, _ := staffLogin(t, accounts.RoleLiaison, "", "330782")
	code := newImportCode("330782")
	good := "credit_code,name,status\n" + code + ",义乌市某拒绝测试协会,正常\n"

	big := func(n int) string { // n bytes of valid CSV rows, the first row code
		var b strings.Builder
		b.WriteString("credit_code,name,status\n")
		b.WriteString(code + ",某协会,正常\n")
		for b.Len() < n {
			fmt.Fprintf(&b, "%s,某协会%d,正常\n", newImportCode("330782"), b.Len())
		}
		return b.String()
	}
	limit := int(srv.Config.MaxImportBytes)
	multi := func(field, name, ctype, data string) (io.Reader, string) {
		var buf bytes.Buffer
		bnd := "----qfimport"
		fmt.Fprintf(&buf, "--%s\r\nContent-Disposition: form-data; name=%q; filename=%q\r\nContent-Type: %s\r\n\r\n%s\r\n--%s--\r\n", bnd, field, name, ctype, data, bnd)
		return &buf, "multipart/form-data; boundary=" + bnd
	}
	for _, tt := range []struct {
		name, what, token, ctype string
		body                     func() io.Reader
		status                   int
		code                     string
	}{
		{"no token", "orgs", "", "text/csv", func() io.Reader { return strings.NewReader(good) }, 401, "unauthorized"},
		{"staff", "orgs", staff, "text/csv", func() io.Reader { return strings.NewReader(good) }, 403, "forbidden"},
		{"liaison", "units", liaison, "application/json", func() io.Reader { return strings.NewReader(`[]`) }, 403, "forbidden"},
		{"text/plain", "orgs", admin, "text/plain", func() io.Reader { return strings.NewReader(good) }, 415, "unsupported"},
		{"no content type", "orgs", admin, "", func() io.Reader { return strings.NewReader(good) }, 415, "unsupported"},
		{"units as CSV", "units", admin, "text/csv", func() io.Reader { return strings.NewReader("id,name\n") }, 415, "unsupported"},
		{"multipart part of unknown type", "orgs", admin, "", nil, 415, "unsupported"},
		{"multipart without file", "orgs", admin, "", nil, 400, "invalid_input"},
		{"unknown column", "orgs", admin, "text/csv", func() io.Reader {
			return strings.NewReader("credit_code,name,status,email\n" + code + ",某协会,正常,a@b.cn\n")
		}, 400, "invalid_input"},
		{"unknown Chinese column", "orgs", admin, "text/csv", func() io.Reader {
			return strings.NewReader(strings.Replace(good, "status", "邮箱", 1))
		}, 400, "invalid_input"},
		{"malformed JSON after a valid object", "orgs", admin, "application/json", func() io.Reader {
			return strings.NewReader(`[{"credit_code":"` + code + `","name":"某协会","status":"正常"}, {"name": `)
		}, 400, "invalid_input"},
		{"stray quote after a valid row", "orgs", admin, "text/csv", func() io.Reader {
			return strings.NewReader(good + newImportCode("330782") + `,某"协会,正常` + "\n")
		}, 400, "invalid_input"},
		{"empty", "orgs", admin, "application/x-ndjson", func() io.Reader { return strings.NewReader("") }, 400, "invalid_input"},
		{"units: malformed JSON", "units", admin, "application/json", func() io.Reader { return strings.NewReader(`[{"id":"330782-zg-qfx","name":"x","kind":"zg"},`) }, 400, "invalid_input"},
		{"over the limit, buffered", "orgs", admin, "text/csv", func() io.Reader { return strings.NewReader(big(limit + 1)) }, 413, "too_large"},
		{"over the limit, streamed", "orgs", admin, "text/csv", func() io.Reader { return strings.NewReader(big(3 << 20)) }, 413, "too_large"},
		{"over the limit, chunked", "orgs", admin, "text/csv", func() io.Reader { return io.MultiReader(strings.NewReader(big(limit + 4096))) }, 413, "too_large"},
		{"over the limit, multipart", "orgs", admin, "", nil, 413, "too_large"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			ctype := tt.ctype
			switch tt.name {
			case "multipart part of unknown type":
				body, ctype = multi("file", "orgs.xlsx", "application/octet-stream", good)
			case "multipart without file":
				body, ctype = multi("document", "orgs.csv", "text/csv", good)
			case "over the limit, multipart":
				body, ctype = multi("file", "orgs.csv", "text/csv", big(limit+1))
			default:
				body = tt.body()
			}
			r := importAPI(t, tt.what, tt.token, ctype, body)
			if r.Status != tt.status || r.errorCode(t) != tt.code {
				t.Fatalf("status %d, want %d %s: %.300s", r.Status, tt.status, tt.code, r.Body)
			}
			if storedSharedOrg(t, code) {
				t.Fatalf("a refused import stored %s", code)
			}
			if _, ok := sharedOrg(code); ok {
				t.Fatalf("a refused import put %s into the registry", code)
			}
		})
	}
	if u, ok := srv.engine.Units.Get("330782-zg-qfx"); ok {
		t.Errorf("a refused units import left %+v", u)
	}
	// And then the same file is accepted.
	if a := importOK(t, "orgs", admin, "text/csv", good); a.Inserted != 1 {
		t.Errorf("%+v", a)
	}
}

// TestImportRouteMultipartAndUnits: the file as a multipart part (format from its
// name), and units whose import is in the registry at once, so that organizations
// imported next may name them.
func TestImportRouteMultipartAndUnits(t *testing.T) {
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	id := fmt.Sprintf("330782-zg-qf%d", importSerial)
	units := `{"id":"` + id + `","name":"义乌市某导入测试局","kind":"zg","division":"330782","aliases":["某导入测试局"]}` + "\n" +
		`{"id":"bad unit","name":"x","kind":"zg"}` + "\n" +
		`{"id":"330782-zg-qfy","name":"y","kind":"zg","parent":"330782-zg-none"}` + "\n"
	a := importOK(t, "units", admin, "application/x-ndjson", units)
	if a.Read != 3 || a.Inserted != 1 || a.Rejected != 2 || len(a.RejectedRows) != 2 || a.RejectedRows[0].Row != 2 || a.RejectedRows[1].Row != 3 ||
		a.RejectedRows[1].Errors[0].Field != "parent" {
		t.Errorf("units %+v", a)
	}
	if u, ok := srv.engine.Units.Get(id); !ok || u.Name != "义乌市某导入测试局" {
		t.Fatalf("the imported unit is not in the registry: %+v %v", u, ok)
	}
	r := do(t, req{method: "GET", path: "/v1/routing/units/" + id, token: admin})
	wantStatus(t, r, 200)

	code := newImportCode("330782")
	body, ctype := multipartBody(t, nil, []filePart{{field: "file", name: "orgs.jsonl",
		data: []byte(`{"credit_code":"` + code + `","name":"某多部件协会","status":"正常","supervisory_unit":"义乌市某导入测试局"}` + "\n")}})
	r = importAPI(t, "orgs", admin, ctype, body)
	wantStatus(t, r, 200)
	var oa importAnswer
	r.json(t, &oa)
	if oa.Inserted != 1 || oa.Rejected != 0 {
		t.Errorf("multipart %s", r.Body)
	}
	if o, ok := sharedOrg(code); !ok || o.SupervisoryUnit != id {
		t.Errorf("registry holds %+v, %v", o, ok)
	}
	// Two file parts: refused, nothing stored.
	var buf bytes.Buffer
	other := newImportCode("330782")
	part := `{"credit_code":"` + other + `","name":"某协会","status":"正常"}`
	fmt.Fprintf(&buf, "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.json\"\r\n\r\n%s\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.json\"\r\n\r\n%s\r\n--b--\r\n", part, part)
	r = importAPI(t, "orgs", admin, "multipart/form-data; boundary=b", &buf)
	if r.Status != 400 || storedSharedOrg(t, other) {
		t.Errorf("two files: %d %s", r.Status, r.Body)
	}
}

// TestImportRouteWhileServing: a large import runs while 32 requests route against the
// registry (filings and previews); all of them succeed, every organization of the file
// is routed by its registry entry as soon as the answer comes, and a second import at
// the same time is either served or told one is running — never both half-applied.
func TestImportRouteWhileServing(t *testing.T) {
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	const rows = 3000
	codes := make([]string, rows)
	var b strings.Builder
	b.WriteString("credit_code,name,status,registration_authority\n")
	for i := range codes {
		codes[i] = newImportCode("330782")
		fmt.Fprintf(&b, "%s,义乌市某并发导入协会%d,正常,330700-mz\n", codes[i], i)
	}
	file := b.String()

	var wg sync.WaitGroup
	statuses := make(chan int, 64)
	answers := make(chan importAnswer, 2)
	for range 2 {
		wg.Go(func() {
			start := time.Now()
			hr, _ := http.NewRequest("POST", baseURL+"/v1/admin/import/orgs", strings.NewReader(file))
			hr.Header.Set("Content-Type", "text/csv")
			hr.Header.Set("Authorization", "Bearer "+admin)
			resp, err := http.DefaultClient.Do(hr)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			if resp.StatusCode == 200 {
				d := time.Since(start)
				t.Logf("import of %d rows (%d bytes) served in %v, %.0f rows/s, beside 32 other requests", rows, len(file), d.Round(time.Millisecond), rows/d.Seconds())
			}
			loadSpec(t).CheckResponse(t, "POST", "/v1/admin/import/orgs", resp.StatusCode, resp.Header.Get("Content-Type"), data)
			statuses <- resp.StatusCode
			if resp.StatusCode == 200 {
				var a importAnswer
				if err := json.Unmarshal(data, &a); err != nil {
					t.Error(err)
				}
				answers <- a
			}
		})
	}
	for i := range 32 {
		wg.Go(func() {
			if i%2 == 0 {
				r := postJSON(t, "/v1/reports", "", anonymousReport())
				statuses <- r.Status
				return
			}
			body := anonymousReport()
			body["subject"] = map[string]any{"kind": "organization", "organization": map[string]any{"credit_code": codes[i*90], "name": "某协会"}}
			r := postJSON(t, "/v1/routing/explain", admin, body)
			statuses <- r.Status
		})
	}
	wg.Wait()
	close(statuses)
	close(answers)
	served := 0
	for s := range statuses {
		switch s {
		case 200, 201:
		case 409: // the second import while the first ran
		default:
			t.Errorf("status %d during the import", s)
		}
	}
	for a := range answers {
		served++
		if a.Read != rows || a.Inserted+a.Updated != rows || a.Rejected != 0 {
			t.Errorf("answer %+v", a)
		}
	}
	if served == 0 {
		t.Fatal("no import was served")
	}
	for _, i := range []int{0, rows / 2, rows - 1} {
		if got := explainOrg(t, admin, codes[i]); got != "330700-mz" {
			t.Errorf("row %d routed to %s after the import, want 330700-mz", i+1, got)
		}
	}
	n, err := sqlite.NewOrgStore(srv.st.sqlite).CountOrganizations(context.Background())
	if err != nil || n < rows {
		t.Errorf("%d organizations stored: %v", n, err)
	}
}

// TestImportCommandWhileServerRuns: on the embedded default with a server running,
// `qingfeng import` says what to do, and with --server it imports through the route,
// reporting as a local import does.
func TestImportCommandWhileServerRuns(t *testing.T) {
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	code := newImportCode("330782")
	file := writeFile(t, "orgs.csv", "credit_code,name,status\n"+code+",义乌市某命令行协会,正常\n"+newImportCode("330782")+",,正常\n")
	cfg := testConfig(t, dataDir, nil)
	run := func(t *testing.T, env map[string]string, args ...string) (int, string, string) {
		for k, v := range env {
			t.Setenv(k, v)
		}
		var out, errb bytes.Buffer
		c := runImport(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), args, strings.NewReader(""), &out, &errb)
		return c, out.String(), errb.String()
	}

	t.Run("the running server's data dir: into the shared database", func(t *testing.T) {
		// The embedded database is one SQLite file that the CLI opens beside the server;
		// the server picks the organization up at its next registry reload.
		other := newImportCode("330782")
		shared := writeFile(t, "shared.csv", "credit_code,name,status\n"+other+",义乌市某共享库协会,正常\n,,正常\n")
		c, out, errs := run(t, nil, "orgs", shared)
		if c != 1 || !strings.Contains(out, "orgs: read 2, inserted 1, updated 0, rejected 1") {
			t.Errorf("exit %d\nstdout %s\nstderr %s", c, out, errs)
		}
		if !storedSharedOrg(t, other) {
			t.Error("not stored in the shared database")
		}
		if err := srv.loadOrgs(context.Background(), srv.engine.Orgs); err != nil { // what the refresh job does
			t.Fatal(err)
		}
		if _, ok := sharedOrg(other); !ok {
			t.Error("not in the running registry after its reload")
		}
	})
	t.Run("--server with --token-file", func(t *testing.T) {
		tok := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(tok, []byte(admin+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		c, out, errs := run(t, map[string]string{"QF_TOKEN": ""}, "orgs", "--server", baseURL, "--token-file", tok, file)
		if c != 1 || !strings.Contains(out, "orgs: read 2, inserted 1, updated 0, rejected 1") || !strings.Contains(errs, "row 2: name: 名称必填") {
			t.Errorf("exit %d\nstdout %s\nstderr %s", c, out, errs)
		}
		if _, ok := sharedOrg(code); !ok {
			t.Error("not in the running registry")
		}
	})
	t.Run("--server with $QF_TOKEN, from stdin", func(t *testing.T) {
		t.Setenv("QF_TOKEN", admin)
		var out, errb bytes.Buffer
		c := runImport(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), []string{"orgs", "--server", baseURL, "--format", "jsonl", "-"},
			strings.NewReader(`{"credit_code":"`+code+`","name":"义乌市某命令行协会","status":"正常"}`), &out, &errb)
		if c != 0 || !strings.Contains(out.String(), "updated 1") {
			t.Errorf("exit %d\nstdout %s\nstderr %s", c, out.String(), errb.String())
		}
	})
	t.Run("--server, a staff token: 403 explained", func(t *testing.T) {
		staff, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
		c, _, errs := run(t, map[string]string{"QF_TOKEN": staff}, "orgs", "--server", baseURL, file)
		if c != 1 || !strings.Contains(errs, "HTTP 403") {
			t.Errorf("exit %d, stderr %s", c, errs)
		}
	})
	t.Run("--server without a token", func(t *testing.T) {
		c, _, errs := run(t, map[string]string{"QF_TOKEN": ""}, "orgs", "--server", baseURL, file)
		if c != 1 || !strings.Contains(errs, "no access token") {
			t.Errorf("exit %d, stderr %s", c, errs)
		}
	})
	for _, args := range [][]string{
		{"orgs", "--token-file", file, file},
		{"units", "--no-defaults", "--server", baseURL, file},
	} {
		t.Run(fmt.Sprintf("usage %q", args), func(t *testing.T) {
			if c, _, errs := run(t, nil, args...); c != 2 || !strings.Contains(errs, "usage:") {
				t.Errorf("exit %d, stderr %s", c, errs)
			}
		})
	}
}

// slowOrgStore is the real organization store, held at its first batch until release
// is closed, so that a second import is certain to overlap the first.
type slowOrgStore struct {
	*sqlite.OrgStore
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func (s *slowOrgStore) UpsertOrganizations(ctx context.Context, orgs []routing.Organization) (int, int, error) {
	s.once.Do(func() { close(s.started) })
	<-s.release
	return s.OrgStore.UpsertOrganizations(ctx, orgs)
}

// TestImportOneAtATime: while an import runs, another (of either kind) is refused with
// a conflict and stores nothing; once the first is done, the next is served.
func TestImportOneAtATime(t *testing.T) {
	db, _ := importDB(t)
	ctx := context.Background()
	units := sqlite.NewUnitStore(db)
	if _, err := units.SeedUnits(ctx, routing.DefaultUnits()); err != nil {
		t.Fatal(err)
	}
	reg, err := routing.StoredUnits(ctx, units)
	if err != nil {
		t.Fatal(err)
	}
	slow := &slowOrgStore{OrgStore: sqlite.NewOrgStore(db), started: make(chan struct{}), release: make(chan struct{})}
	admin := &routing.Admin{Units: units, UnitImports: units, OrgImports: slow,
		Engine: routing.NewEngine(reg, routing.NewOrgs(), routing.RuleSet{})}
	first, second := newImportCode("330782"), newImportCode("330782")
	file := func(code string) *strings.Reader {
		return strings.NewReader("credit_code,name,status\n" + code + ",某协会,正常\n")
	}
	done := make(chan error, 1)
	go func() {
		_, err := admin.ImportOrganizations(ctx, file(first), "csv", nil)
		done <- err
	}()
	<-slow.started
	for _, try := range []func() error{
		func() error { _, err := admin.ImportOrganizations(ctx, file(second), "csv", nil); return err },
		func() error {
			_, err := admin.ImportUnits(ctx, strings.NewReader(`[{"id":"330782-zg-qfz","name":"z","kind":"zg"}]`), "json", nil)
			return err
		},
	} {
		if err := try(); qingfeng.ErrorCode(err) != qingfeng.ECONFLICT {
			t.Errorf("an import while another runs: %v", err)
		}
	}
	close(slow.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, ok := admin.Engine.Orgs.Get(first); !ok {
		t.Error("the first import is not in the registry")
	}
	if _, ok := admin.Engine.Orgs.Get(second); ok {
		t.Error("the refused import is in the registry")
	}
	if _, err := slow.Organization(ctx, second); err == nil {
		t.Error("the refused import stored its row")
	}
	if st, err := admin.ImportOrganizations(ctx, file(second), "csv", nil); err != nil || st.Inserted != 1 {
		t.Errorf("after the first: %+v, %v", st, err)
	}
}
