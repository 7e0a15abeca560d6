package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/storage/sqlite"
)

// creditAlphabet and the weights are GB 32100-2015's and GB 11714's, written out again
// here so that the tests check the routing package rather than borrow from it.
const creditAlphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"

// creditCode makes a valid 民政 credit code: department 5, type typ (1 社会团体,
// 2 社会服务机构, 3 基金会), registered in division, with organization code MJ + serial.
func creditCode(typ byte, division string, serial int) string {
	body := fmt.Sprintf("MJ%06d", serial%1000000) // GB 11714 body, 8 characters
	sum := 0
	for i, w := range []int{3, 7, 9, 10, 5, 8, 4, 2} {
		c, v := body[i], 0
		if c >= 'A' {
			v = int(c-'A') + 10
		} else {
			v = int(c - '0')
		}
		sum += v * w
	}
	var check byte
	switch c := 11 - sum%11; c {
	case 10:
		check = 'X'
	case 11:
		check = '0'
	default:
		check = byte('0' + c)
	}
	first17 := "5" + string(typ) + division + body + string(check)
	sum = 0
	for i, w := range []int{1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28} {
		sum += strings.IndexByte(creditAlphabet, first17[i]) * w
	}
	return first17 + string(creditAlphabet[(31-sum%31)%31])
}

func TestCreditCodeGenerator(t *testing.T) {
	for i := range 200 {
		code := creditCode("123"[i%3], "330782", i)
		cc, err := routing.ParseCreditCode(code)
		if err != nil || !cc.CheckValid {
			t.Fatalf("%s: %v, check valid %v", code, err, cc.CheckValid)
		}
	}
}

// importDB opens a fresh embedded database (storage/sqlite) in a data directory of its
// own and returns it with the directory, where the CLI under test opens the same file
// a second time, as it does beside a running server.
func importDB(t testing.TB) (*sqlite.DB, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, sqlite.FileName), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, dir
}

type rejection struct {
	row    int
	fields []string // field:code, in column order
}

// importString runs importOrganizations with the default units and collects the
// rejections.
func importString(t *testing.T, db *sqlite.DB, format, in string) (routing.ImportStats, []rejection, error) {
	t.Helper()
	units, err := routing.StoredUnits(context.Background(), sqlite.NewUnitStore(db))
	if err != nil {
		t.Fatal(err)
	}
	var rej []rejection
	st, err := routing.ImportOrganizations(context.Background(), sqlite.NewOrgStore(db), strings.NewReader(in), format, routing.ImportOptions{
		Units: units, BatchSize: 2, // several batches in small inputs
		Reject: func(row int, errs map[string]qingfeng.FieldError) error {
			r := rejection{row: row}
			for _, f := range routing.SortFields(errs) {
				r.fields = append(r.fields, f+":"+errs[f].Code)
				if errs[f].Message == "" {
					t.Errorf("row %d %s: no message", row, f)
				}
			}
			rej = append(rej, r)
			return nil
		}})
	return st, rej, err
}

func wantRejections(t *testing.T, got []rejection, want ...rejection) {
	t.Helper()
	if !slices.EqualFunc(got, want, func(a, b rejection) bool { return a.row == b.row && slices.Equal(a.fields, b.fields) }) {
		t.Errorf("rejections %v, want %v", got, want)
	}
}

func storedOrg(t *testing.T, db *sqlite.DB, code string) routing.Organization {
	t.Helper()
	o, err := sqlite.NewOrgStore(db).Organization(context.Background(), code)
	if err != nil {
		t.Fatalf("organization %s: %v", code, err)
	}
	return o
}

func countOrgs(t *testing.T, db *sqlite.DB) int64 {
	t.Helper()
	n, err := sqlite.NewOrgStore(db).CountOrganizations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var (
	codeA = creditCode('1', "330782", 1) // 义乌市 社会团体
	codeB = creditCode('2', "330103", 2) // 下城区 (retired) 社会服务机构
	codeC = creditCode('3', "330000", 3) // the province, 基金会
)

func TestImportOrganizationsCSV(t *testing.T) {
	db, _ := importDB(t)
	in := "\ufeff统一社会信用代码,名称,状态,登记管理机关,业务主管单位,行业,评估等级,住所区划\r\n" +
		codeA + ",义乌市小商品行业协会,正常,义乌市民政局,330782-scjg,商贸,4A,330782001\r\n" +
		"91330782MA0000000X,某公司,正常,,,,,\r\n" + // row 2: not 民政
		codeB + ",杭州市某服务中心,活动异常名录,330105-mz,,,,\r\n" +
		codeC + ",,注销,330782-jw,,,6A,\r\n" + // row 4: three errors
		strings.ToLower(codeA) + ",重复,正常,,,,,\r\n" + // row 5: duplicate of row 1
		codeC + ",浙江省某基金会,注销,,,,AAAAA,\r\n"
	st, rej, err := importString(t, db, "csv", in)
	if err != nil {
		t.Fatal(err)
	}
	if want := (routing.ImportStats{Read: 6, Inserted: 3, Rejected: 3}); st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	wantRejections(t, rej,
		rejection{2, []string{"credit_code:not_civil_affairs"}},
		rejection{4, []string{"name:required", "registration_authority:not_civil_affairs", "grade:invalid"}},
		rejection{5, []string{"credit_code:duplicate"}},
	)
	if n := countOrgs(t, db); n != 3 {
		t.Errorf("%d organizations stored, want 3", n)
	}
	a := storedOrg(t, db, codeA)
	a.UpdatedAt = a.UpdatedAt.Truncate(0)
	if a.Name != "义乌市小商品行业协会" || a.Type != "社会团体" || a.RegDivision != "330782" || a.Status != routing.OrgNormal ||
		a.RegistrationAuthority != "330782-mz" || a.SupervisoryUnit != "330782-scjg" || a.Industry != "商贸" ||
		a.Grade != "4A" || a.Division != "330782001" || a.UpdatedAt.IsZero() {
		t.Errorf("stored %+v", a)
	}
	if b := storedOrg(t, db, codeB); b.RegDivision != "330105" || b.Type != "民办非企业单位/社会服务机构" || b.Status != routing.OrgAbnormal {
		t.Errorf("retired registering division: stored %+v", b)
	}
	if c := storedOrg(t, db, codeC); c.Grade != "5A" || c.Type != "基金会" {
		t.Errorf("stored %+v", c)
	}
}

func TestImportOrganizationsJSON(t *testing.T) {
	objs := []map[string]any{
		{"credit_code": codeA, "name": "义乌市小商品行业协会", "status": "normal", "division": 330782, "grade": "４Ａ"},
		{"credit_code": codeB, "name": "某服务中心", "status": "正常", "supervisory_unit": "义乌市公安局"},
		{"credit_code": codeC, "name": "基金会", "status": "正常", "phone": "0579"}, // row 3: unknown key
		{"credit_code": "5", "name": 7, "status": "正常"},                        // row 4
	}
	var lines []string
	for _, o := range objs {
		b, _ := json.Marshal(o)
		lines = append(lines, string(b))
	}
	for format, in := range map[string]string{
		"json":  "[\n" + strings.Join(lines, ",\n") + "\n]",
		"jsonl": strings.Join(lines, "\n") + "\n",
	} {
		t.Run(format, func(t *testing.T) {
			db, _ := importDB(t)
			st, rej, err := importString(t, db, format, in)
			if err != nil {
				t.Fatal(err)
			}
			if want := (routing.ImportStats{Read: 4, Inserted: 2, Rejected: 2}); st != want {
				t.Errorf("stats %+v, want %+v", st, want)
			}
			wantRejections(t, rej,
				rejection{3, []string{"phone:unknown_field"}},
				rejection{4, []string{"credit_code:malformed", "name:wrong_type"}},
			)
			if a := storedOrg(t, db, codeA); a.Division != "330782" || a.Grade != "4A" {
				t.Errorf("stored %+v", a)
			}
			if b := storedOrg(t, db, codeB); b.SupervisoryUnit != "330782-ga" {
				t.Errorf("supervisory unit by name: stored %+v", b)
			}
		})
	}
}

func TestImportOrganizationsReimportUpserts(t *testing.T) {
	db, _ := importDB(t)
	header := "credit_code,name,status,grade\n"
	first := header + codeA + ",甲协会,正常,3A\n" + codeB + ",乙中心,正常,\n" + codeC + ",丙基金会,正常,\n"
	if st, _, err := importString(t, db, "csv", first); err != nil || st.Inserted != 3 {
		t.Fatalf("first import: %+v, %v", st, err)
	}
	// Again, with changes, a new organization, and the grade column left out.
	second := "credit_code,name,status\n" + codeA + ",甲协会（更名）,撤销\n" + codeB + ",乙中心,严重违法失信名单\n" +
		codeC + ",丙基金会,正常\n" + creditCode('1', "330782", 4) + ",丁协会,正常\n"
	st, rej, err := importString(t, db, "csv", second)
	if err != nil || len(rej) != 0 {
		t.Fatalf("second import: %v, %v", rej, err)
	}
	if want := (routing.ImportStats{Read: 4, Inserted: 1, Updated: 3}); st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	if n := countOrgs(t, db); n != 4 {
		t.Errorf("%d organizations, want 4", n)
	}
	if a := storedOrg(t, db, codeA); a.Name != "甲协会（更名）" || a.Status != routing.OrgRevoked || a.Grade != "" {
		t.Errorf("re-imported %+v", a)
	}
}

func TestImportOrganizationsBadFiles(t *testing.T) {
	db, _ := importDB(t)
	for _, tt := range []struct{ name, format, in, wantErr string }{
		{"unknown column", "csv", "credit_code,name,status,电话\n" + codeA + ",甲,正常,123\n", `unknown column(s) "电话"`},
		{"malformed JSON", "json", `[{"credit_code":"` + codeA + `","name":"甲","status":"正常"},`, "JSON"},
		{"unknown format", "xml", "", "unknown format"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := importString(t, db, tt.format, tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
	// The rows read before the malformed JSON are imported.
	if n := countOrgs(t, db); n != 1 {
		t.Errorf("%d organizations stored, want 1", n)
	}
}

// importCLI runs `qingfeng import args...` on data directory dir (importDB).
func importCLI(t *testing.T, dir string, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cfg := testConfig(t, dir, nil)
	var out, errb bytes.Buffer
	code = runImport(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestImportCommand(t *testing.T) {
	good := writeFile(t, "orgs.csv", "credit_code,name,status\n"+codeA+",甲,正常\n"+codeB+",乙,正常\n")
	mixed := writeFile(t, "mixed.CSV", "名称,统一社会信用代码,状态\n甲,"+codeA+",正常\n,"+codeB+",正常\n丙,"+codeC+",存续\n")
	jsonl := writeFile(t, "orgs.jsonl", `{"credit_code":"`+codeC+`","name":"丙","status":"正常"}`+"\n")
	db, name := importDB(t)

	t.Run("all rows imported: 0", func(t *testing.T) {
		code, out, errs := importCLI(t, name, "", "orgs", good)
		if code != 0 || !strings.Contains(out, "orgs: read 2, inserted 2, updated 0, rejected 0") {
			t.Errorf("exit %d\nstdout %s\nstderr %s", code, out, errs)
		}
		if !strings.Contains(errs, "100%") {
			t.Errorf("no progress on stderr: %q", errs)
		}
	})
	t.Run("again: updated", func(t *testing.T) {
		code, out, _ := importCLI(t, name, "", "orgs", good)
		if code != 0 || !strings.Contains(out, "read 2, inserted 0, updated 2, rejected 0") {
			t.Errorf("exit %d, %s", code, out)
		}
		if n := countOrgs(t, db); n != 2 {
			t.Errorf("%d organizations", n)
		}
	})
	t.Run("some rows rejected: 1, listed on stderr", func(t *testing.T) {
		code, out, errs := importCLI(t, name, "", "orgs", mixed)
		if code != 1 || !strings.Contains(out, "read 3, inserted 0, updated 1, rejected 2") {
			t.Errorf("exit %d\nstdout %s", code, out)
		}
		for _, want := range []string{"row 2: name: 名称必填\n", "row 3: status: 状态“存续”无效"} {
			if !strings.Contains(errs, want) {
				t.Errorf("stderr lacks %q:\n%s", want, errs)
			}
		}
	})
	t.Run("--errors FILE, flags after the file", func(t *testing.T) {
		report := filepath.Join(t.TempDir(), "errors.csv")
		code, _, errs := importCLI(t, name, "", "orgs", mixed, "--errors", report)
		if code != 1 || strings.Contains(errs, "row 2:") || !strings.Contains(errs, "2 rows rejected, listed in") {
			t.Errorf("exit %d, stderr %s", code, errs)
		}
		b, err := os.ReadFile(report)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte("\ufeff")))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		want := [][]string{{"row", "field", "code", "message"}, {"2", "name", "required", "名称必填"},
			{"3", "status", "invalid", "状态“存续”无效，应为正常、撤销、注销、活动异常名录或严重违法失信名单"}}
		if !slices.EqualFunc(recs, want, slices.Equal) || !bytes.HasPrefix(b, []byte("\ufeff")) {
			t.Errorf("report %q", b)
		}
	})
	t.Run("JSON Lines from stdin", func(t *testing.T) {
		content, _ := os.ReadFile(jsonl)
		code, out, errs := importCLI(t, name, string(content), "orgs", "--format", "jsonl", "-")
		if code != 0 || !strings.Contains(out, "read 1, inserted 1") {
			t.Errorf("exit %d, %s %s", code, out, errs)
		}
	})
	t.Run("unknown column: 1, nothing imported", func(t *testing.T) {
		_, other := importDB(t)
		f := writeFile(t, "x.csv", "credit_code,name,status,email\n"+codeA+",甲,正常,a@b\n")
		code, _, errs := importCLI(t, other, "", "orgs", f)
		if code != 1 || !strings.Contains(errs, `unknown column(s) "email"`) {
			t.Errorf("exit %d, stderr %s", code, errs)
		}
	})
	t.Run("missing file: 1", func(t *testing.T) {
		if code, _, _ := importCLI(t, name, "", "orgs", filepath.Join(t.TempDir(), "none.csv")); code != 1 {
			t.Errorf("exit %d", code)
		}
	})
	for _, args := range [][]string{
		{},
		{"orgs"},
		{"people", good},
		{"orgs", good, good},
		{"orgs", writeFile(t, "orgs.xlsx", "")},
		{"orgs", "-"},
		{"orgs", "--format", "xml", good},
		{"units", good},
		{"orgs", "--bogus", good},
	} {
		t.Run(fmt.Sprintf("usage %q: 2", args), func(t *testing.T) {
			if code, _, errs := importCLI(t, name, "", args...); code != 2 || !strings.Contains(errs, "usage:") {
				t.Errorf("exit %d, stderr %s", code, errs)
			}
		})
	}
}

func TestImportUnits(t *testing.T) {
	db, name := importDB(t)
	units := `[
	  {"id": "330782-zg-jyj", "name": "义乌市教育局", "kind": "zg", "division": "330782", "parent": "330700-zg-jyj"},
	  {"id": "330700-zg-jyj", "name": "金华市教育局", "kind": "zg", "division": "330700"},
	  {"id": "330782-zg-wlj", "name": "义乌市文化和广电旅游体育局", "kind": "zg", "division": "330782", "parent": "330700-zg-wlj"},
	  {"id": "330782-zg-x", "name": "下级", "kind": "zg", "parent": "330782-zg-wlj"},
	  {"id": "bad", "name": "类别不明", "kind": "zz"},
	  {"id": "330782-zg-jyj", "name": "重复", "kind": "zg"}
	]`
	f := writeFile(t, "units.json", units)
	code, out, errs := importCLI(t, name, "", "units", f)
	if code != 1 || !strings.Contains(out, "units: read 6, inserted 2, updated 0, rejected 4") || !strings.Contains(out, "default units loaded first") {
		t.Errorf("exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
	for _, want := range []string{
		"row 3: parent: 上级单位“330700-zg-wlj”不在单位名录中",
		"row 4: parent: 上级单位“330782-zg-wlj”不在单位名录中", // its parent was rejected
		"row 5: kind:",
		"row 6: id: 与第1行的单位编号相同",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	stored, err := sqlite.NewUnitStore(db).Units(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := len(routing.DefaultUnits()) + 2; len(stored) != want {
		t.Errorf("%d units stored, want %d", len(stored), want)
	}
	reg, err := routing.NewUnits(stored)
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := reg.Get("330782-zg-jyj"); !ok || !u.Active || u.Level != routing.LevelCounty || u.Parent != "330700-zg-jyj" {
		t.Errorf("imported unit %+v, %v", u, ok)
	}

	// Organizations are now checked against the stored registry, new units included.
	orgs := writeFile(t, "orgs.csv", "credit_code,name,status,supervisory_unit\n"+codeA+",甲,正常,义乌市教育局\n"+codeB+",乙,正常,330782-zg-wlj\n")
	code, _, errs = importCLI(t, name, "", "orgs", orgs)
	if code != 1 || !strings.Contains(errs, "row 2: supervisory_unit: 业务主管单位“330782-zg-wlj”不在单位名录中") {
		t.Errorf("exit %d, stderr %s", code, errs)
	}
	if a := storedOrg(t, db, codeA); a.SupervisoryUnit != "330782-zg-jyj" {
		t.Errorf("stored %+v", a)
	}

	t.Run("aliases imported, and an admin's kept", func(t *testing.T) {
		ctx := context.Background()
		us := sqlite.NewUnitStore(db)
		if err := us.AddAlias(ctx, "330782-zg-jyj", "义乌市教委", routing.MaxAliases); err != nil {
			t.Fatal(err)
		}
		f := writeFile(t, "aliases.json", `[{"id":"330782-zg-jyj","name":"义乌市教育局","kind":"zg","division":"330782","parent":"330700-zg-jyj","aliases":["义乌教育局"," 義烏市教委 "]}]`)
		if code, out, errs := importCLI(t, name, "", "units", f); code != 0 {
			t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errs)
		}
		stored, err := us.Units(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range stored {
			if u.ID == "330782-zg-jyj" && !slices.Equal(u.Aliases, []string{"义乌市教委", "义乌教育局"}) {
				t.Errorf("aliases %q", u.Aliases)
			}
		}
	})

	t.Run("two rows of one name", func(t *testing.T) {
		f := writeFile(t, "twins.json", `[{"id":"330782-zg-tw1","name":"义乌市某新设局","kind":"zg","division":"330782"},
		  {"id":"330782-zg-tw2","name":"義烏市某新設局","kind":"zg","division":"330782"},
		  {"id":"330782-zg-tw3","name":"义乌市另一新设局","kind":"zg","division":"330782","aliases":["义乌市某新设局​"]}]`)
		code, out, errs := importCLI(t, name, "", "units", f)
		if code != 1 || !strings.Contains(out, "inserted 1") || !strings.Contains(errs, "row 2: name: “義烏市某新設局”与第1行的单位同名") ||
			!strings.Contains(errs, "row 3: aliases:") {
			t.Errorf("exit %d\nstdout %s\nstderr %s", code, out, errs)
		}
	})

	t.Run("a parent cycle refused, deadlines kept", func(t *testing.T) {
		ctx := context.Background()
		us := sqlite.NewUnitStore(db)
		stored, err := us.Units(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range stored {
			if u.ID == "330700-zg-jyj" {
				u.Deadlines = map[string]int{"acceptance": 10}
				if _, _, err := us.UpsertUnits(ctx, []routing.RegistryUnit{u}); err != nil {
					t.Fatal(err)
				}
			}
		}
		// 金华 under 义乌, which is under 金华: refused; 金华 renamed: its deadlines stay.
		f := writeFile(t, "cycle.json", `[{"id":"330700-zg-jyj","name":"金华市教育局","kind":"zg","division":"330700","parent":"330782-zg-jyj"},
		  {"id":"330700-zg-jyj2","name":"金华市教育局（新）","kind":"zg","division":"330700"}]`)
		code, _, errs := importCLI(t, name, "", "units", f)
		if code != 1 || !strings.Contains(errs, "row 1: parent:") || !strings.Contains(errs, "循环") {
			t.Errorf("cycle: exit %d, stderr %s", code, errs)
		}
		f = writeFile(t, "rename.json", `[{"id":"330700-zg-jyj","name":"金华市教育局（更名）","kind":"zg","division":"330700"}]`)
		if code, out, errs := importCLI(t, name, "", "units", f); code != 0 {
			t.Fatalf("rename: exit %d\nstdout %s\nstderr %s", code, out, errs)
		}
		stored, _ = us.Units(ctx)
		for _, u := range stored {
			if u.ID == "330700-zg-jyj" && (u.Parent != "" || u.Name != "金华市教育局（更名）" || u.Deadlines["acceptance"] != 10) {
				t.Errorf("after the rename: %+v", u)
			}
		}
	})

	t.Run("no defaults into an empty registry", func(t *testing.T) {
		_, other := importDB(t)
		code, out, errs := importCLI(t, other, "", "units", "--no-defaults", f)
		if code != 1 || strings.Contains(out, "default units") || !strings.Contains(out, "inserted 2") {
			t.Errorf("exit %d\nstdout %s\nstderr %s", code, out, errs)
		}
	})
}

// TestImportEmbeddedDefault runs the command with nothing configured: it starts the
// embedded database in the data directory, as `qingfeng` would.
func TestImportEmbeddedDefault(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir, nil)
	f := writeFile(t, "orgs.json", `[{"credit_code":"`+codeA+`","name":"甲","status":"正常"}]`)
	var out, errs bytes.Buffer
	if code := runImport(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), []string{"orgs", f}, nil, &out, &errs); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errs.String())
	}
	if _, err := os.Stat(filepath.Join(dir, sqlite.FileName)); err != nil {
		t.Errorf("no embedded database in the data directory: %v", err)
	}
}

func TestProgress(t *testing.T) {
	t.Run("terminal: one line redrawn in place", func(t *testing.T) {
		var b bytes.Buffer
		p := newProgress(&b, true, 1000)
		p.update(500, 50)
		p.println("row 3: name: 名称必填")
		p.update(1000, 100)
		p.finish()
		s := b.String()
		if !strings.HasPrefix(s, "\r[===============               ]  50%  50 rows") || !strings.Contains(s, "\rrow 3: name: 名称必填\n") ||
			!strings.Contains(s, "] 100%  100 rows") || !strings.HasSuffix(s, "\n") {
			t.Errorf("%q", s)
		}
	})
	t.Run("log: a line per tenth", func(t *testing.T) {
		var b bytes.Buffer
		p := newProgress(&b, false, 1000)
		for done := int64(0); done <= 1000; done += 50 {
			p.update(done, int(done/10))
		}
		p.finish()
		if lines := strings.Split(strings.TrimSpace(b.String()), "\n"); len(lines) != 10 || !strings.HasPrefix(lines[9], "100%") || strings.Contains(b.String(), "\r") {
			t.Errorf("%d lines: %q", len(lines), b.String())
		}
	})
	t.Run("nil draws nothing", func(t *testing.T) {
		var p *progress
		p.update(1, 1)
		p.println("x")
		p.finish()
	})
}
