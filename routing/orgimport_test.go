package routing

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	qingfeng "github.com/qingfeng-zj/qingfeng"
)

func defaultRegistry(t testing.TB) *Units {
	t.Helper()
	u, err := NewUnits(DefaultUnits())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestNormalizeOrganization(t *testing.T) {
	units := defaultRegistry(t)
	yiwu := makeCode("51330782MJ000001") // 社会团体 registered in 义乌市
	wrongCheck := yiwu[:17] + string(creditAlphabet[(strings.IndexByte(creditAlphabet, yiwu[17])+1)%31])
	valid := Organization{CreditCode: yiwu, Name: "义乌市某行业协会", Status: "正常"}
	with := func(f func(*Organization)) Organization {
		o := valid
		f(&o)
		return o
	}
	tests := []struct {
		name    string
		in      Organization
		units   *Units
		want    Organization // checked when wantErr is empty
		wantErr map[string]string
	}{
		{name: "minimal", in: valid,
			want: Organization{CreditCode: yiwu, Name: "义乌市某行业协会", Type: "社会团体", RegDivision: "330782", Status: OrgNormal}},
		{name: "everything, normalized", in: Organization{
			CreditCode: "  " + strings.ToLower(yiwu) + " ", Name: " 义乌市某行业协会 ", Status: " dishonest ",
			RegistrationAuthority: "义乌市民政局", SupervisoryUnit: "330782-scjg", Industry: " 商贸 ", Grade: "ＡＡＡＡ级", Division: "330782001"},
			want: Organization{CreditCode: yiwu, Name: "义乌市某行业协会", Type: "社会团体", RegDivision: "330782", Status: OrgDishonest,
				RegistrationAuthority: "330782-mz", SupervisoryUnit: "330782-scjg", Industry: "商贸", Grade: "4A", Division: "330782001"}},
		{name: "full-width code", in: with(func(o *Organization) { o.CreditCode = toFullWidth(yiwu) }),
			want: Organization{CreditCode: yiwu, Name: "义乌市某行业协会", Type: "社会团体", RegDivision: "330782", Status: OrgNormal}},
		{name: "wrong check character is accepted", in: with(func(o *Organization) { o.CreditCode = wrongCheck }),
			want: Organization{CreditCode: wrongCheck, Name: "义乌市某行业协会", Type: "社会团体", RegDivision: "330782", Status: OrgNormal}},
		{name: "foundation registered by the province", in: with(func(o *Organization) { o.CreditCode = aixin; o.Grade = "5a" }),
			want: Organization{CreditCode: aixin, Name: "义乌市某行业协会", Type: "基金会", RegDivision: "330000", Status: OrgNormal, Grade: "5A"}},
		{name: "retired registering division becomes its successor", in: with(func(o *Organization) {
			o.CreditCode = makeCode("52330621MJ000002") // 绍兴县, now 柯桥区
		}), want: Organization{CreditCode: makeCode("52330621MJ000002"), Name: "义乌市某行业协会", Type: "民办非企业单位/社会服务机构",
			RegDivision: "330603", Status: OrgNormal}},
		{name: "retired address division becomes its successor", in: with(func(o *Organization) { o.Division = "330103" }),
			want: Organization{CreditCode: yiwu, Name: "义乌市某行业协会", Type: "社会团体", RegDivision: "330782", Status: OrgNormal, Division: "330105"}},
		{name: "units nil: references are not checked", in: with(func(o *Organization) { o.RegistrationAuthority = "whatever" }), units: nil,
			want: Organization{CreditCode: yiwu, Name: "义乌市某行业协会", Type: "社会团体", RegDivision: "330782", Status: OrgNormal, RegistrationAuthority: "whatever"}},

		{name: "code missing", in: with(func(o *Organization) { o.CreditCode = " " }), wantErr: map[string]string{FieldCreditCode: "required"}},
		{name: "code malformed", in: with(func(o *Organization) { o.CreditCode = "51330782MJ00001" }), wantErr: map[string]string{FieldCreditCode: "malformed"}},
		{name: "not 民政", in: with(func(o *Organization) { o.CreditCode = makeCode("91330782MA000001") }), wantErr: map[string]string{FieldCreditCode: "not_civil_affairs"}},
		{name: "unknown 民政 type", in: with(func(o *Organization) { o.CreditCode = makeCode("54330782MJ000001") }), wantErr: map[string]string{FieldCreditCode: "unknown_type"}},
		{name: "registered outside Zhejiang", in: with(func(o *Organization) { o.CreditCode = makeCode("51110000MJ000001") }), wantErr: map[string]string{FieldCreditCode: "outside_zhejiang"}},
		{name: "registered by 民政部", in: with(func(o *Organization) { o.CreditCode = makeCode("51100000MJ000001") }), wantErr: map[string]string{FieldCreditCode: "outside_zhejiang"}},
		{name: "name missing", in: with(func(o *Organization) { o.Name = "" }), wantErr: map[string]string{FieldName: "required"}},
		{name: "name too long", in: with(func(o *Organization) { o.Name = strings.Repeat("协", 201) }), wantErr: map[string]string{FieldName: "too_long"}},
		{name: "status missing", in: with(func(o *Organization) { o.Status = "" }), wantErr: map[string]string{FieldStatus: "required"}},
		{name: "status unknown", in: with(func(o *Organization) { o.Status = "存续" }), wantErr: map[string]string{FieldStatus: "invalid"}},
		{name: "authority unknown", in: with(func(o *Organization) { o.RegistrationAuthority = "330782-xx" }), wantErr: map[string]string{FieldRegistrationAuthority: "unknown_unit"}},
		{name: "authority not 民政", in: with(func(o *Organization) { o.RegistrationAuthority = "330782-jw" }), wantErr: map[string]string{FieldRegistrationAuthority: "not_civil_affairs"}},
		{name: "supervisory unit unknown", in: with(func(o *Organization) { o.SupervisoryUnit = "义乌市不存在局" }), wantErr: map[string]string{FieldSupervisoryUnit: "unknown_unit"}},
		{name: "industry too long", in: with(func(o *Organization) { o.Industry = strings.Repeat("业", 101) }), wantErr: map[string]string{FieldIndustry: "too_long"}},
		{name: "grade 6A", in: with(func(o *Organization) { o.Grade = "6A" }), wantErr: map[string]string{FieldGrade: "invalid"}},
		{name: "grade AAAAAA", in: with(func(o *Organization) { o.Grade = "AAAAAA" }), wantErr: map[string]string{FieldGrade: "invalid"}},
		{name: "grade B", in: with(func(o *Organization) { o.Grade = "B" }), wantErr: map[string]string{FieldGrade: "invalid"}},
		{name: "division outside Zhejiang", in: with(func(o *Organization) { o.Division = "110101" }), wantErr: map[string]string{FieldDivision: "invalid"}},
		{name: "all at once", in: Organization{CreditCode: "x", Status: "?", Grade: "0A", Division: "1"},
			wantErr: map[string]string{FieldCreditCode: "malformed", FieldName: "required", FieldStatus: "invalid", FieldGrade: "invalid", FieldDivision: "invalid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := units
			if strings.HasPrefix(tt.name, "units nil") {
				u = nil
			}
			got, errs := NormalizeOrganization(tt.in, u)
			if tt.wantErr == nil {
				if errs != nil {
					t.Fatalf("errors %v", errs)
				}
				if got != tt.want {
					t.Errorf("got  %+v\nwant %+v", got, tt.want)
				}
				return
			}
			codes := map[string]string{}
			for f, e := range errs {
				codes[f] = e.Code
				if e.Message == "" || e.English == "" {
					t.Errorf("%s: missing message: %+v", f, e)
				}
			}
			if !maps.Equal(codes, tt.wantErr) {
				t.Errorf("errors %v, want %v", errs, tt.wantErr)
			}
			if got != (Organization{}) {
				t.Errorf("an invalid organization came back non-zero: %+v", got)
			}
		})
	}
}

func toFullWidth(s string) string {
	return strings.Map(func(r rune) rune {
		if r > ' ' && r <= '~' {
			return r + 0xFEE0
		}
		return r
	}, s)
}

func TestNormalizeGrade(t *testing.T) {
	for in, want := range map[string]string{"1A": "1A", "3a": "3A", "４Ａ": "4A", "A": "1A", "AAA": "3A", "AAAAA级": "5A", "5A级": "5A", "ＡＡ": "2A"} {
		if got, ok := normalizeGrade(in); !ok || got != want {
			t.Errorf("normalizeGrade(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"0A", "6A", "AAAAAA", "4B", "4", "级", "44A"} {
		if got, ok := normalizeGrade(in); ok {
			t.Errorf("normalizeGrade(%q) = %q, accepted", in, got)
		}
	}
}

type readRow struct {
	row  int
	org  Organization
	errs []string // sorted "field:code"
}

func collect(t *testing.T, read func(OrgRowFunc) error) ([]readRow, error) {
	t.Helper()
	var rows []readRow
	err := read(func(row int, o Organization, errs map[string]qingfeng.FieldError) error {
		r := readRow{row: row, org: o}
		for f, e := range errs {
			r.errs = append(r.errs, f+":"+e.Code)
		}
		slices.Sort(r.errs)
		rows = append(rows, r)
		return nil
	})
	return rows, err
}

func TestReadOrganizationsCSV(t *testing.T) {
	in := "\ufeff名称,统一社会信用代码,状态,登记管理机关,业务主管单位,行业,评估等级,住所区划\r\n" +
		"\"义乌市某行业协会\",51330782MJ0000018J,正常,义乌市民政局,,商贸,4A,330782\r\n" +
		"\r\n" +
		"\"多行\n名称\",53330000501874064B,normal,,,,,\r\n" +
		"只有两列,x\r\n"
	rows, err := collect(t, func(fn OrgRowFunc) error { return ReadOrganizationsCSV(strings.NewReader(in), fn) })
	if err != nil {
		t.Fatal(err)
	}
	want := []readRow{
		{row: 1, org: Organization{CreditCode: "51330782MJ0000018J", Name: "义乌市某行业协会", Status: "正常", RegistrationAuthority: "义乌市民政局", Industry: "商贸", Grade: "4A", Division: "330782"}},
		{row: 2, org: Organization{CreditCode: aixin, Name: "多行\n名称", Status: "normal"}},
		{row: 3, errs: []string{"row:field_count"}},
	}
	if !slices.EqualFunc(rows, want, func(a, b readRow) bool { return a.row == b.row && a.org == b.org && slices.Equal(a.errs, b.errs) }) {
		t.Errorf("rows\n%+v\nwant\n%+v", rows, want)
	}

	t.Run("English headers, any case and order, optional columns left out", func(t *testing.T) {
		rows, err := collect(t, func(fn OrgRowFunc) error {
			return ReadOrganizationsCSV(strings.NewReader("Status, credit_code ,NAME\nabnormal,"+aixin+",基金会\n"), fn)
		})
		if err != nil || len(rows) != 1 || rows[0].org != (Organization{CreditCode: aixin, Name: "基金会", Status: "abnormal"}) {
			t.Errorf("rows %+v, err %v", rows, err)
		}
	})

	for _, tt := range []struct{ name, in, wantErr string }{
		{"unknown columns are named", "credit_code,name,status,电话,email\n", `unknown column(s) "电话", "email"`},
		{"repeated column", "credit_code,name,status,名称\n", `"名称" given twice`},
		{"missing required column", "credit_code,name\n", "missing column(s) status"},
		{"empty file", "", "empty"},
		{"stray quote", "credit_code,name,status\n" + aixin + ",a\"b,normal\n", "row 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			err := ReadOrganizationsCSV(strings.NewReader(tt.in), func(int, Organization, map[string]qingfeng.FieldError) error {
				called = true
				return nil
			})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if called && tt.name != "stray quote" {
				t.Error("fn was called for a file with a bad header")
			}
		})
	}

	t.Run("fn's error stops the reading", func(t *testing.T) {
		stop := errors.New("stop")
		n := 0
		err := ReadOrganizationsCSV(strings.NewReader("credit_code,name,status\na,b,c\nd,e,f\n"), func(int, Organization, map[string]qingfeng.FieldError) error {
			n++
			return stop
		})
		if !errors.Is(err, stop) || n != 1 {
			t.Errorf("err %v after %d rows", err, n)
		}
	})
}

func TestReadOrganizationsJSON(t *testing.T) {
	want := []readRow{
		{row: 1, org: Organization{CreditCode: aixin, Name: "浙江省爱心事业基金会", Status: "正常", Grade: "5A", Division: "330000"}},
		{row: 2, org: Organization{CreditCode: "51330782MJ0000018J", Name: "协会", Status: "normal", Division: "330782"}},
		{row: 3, org: Organization{Name: "x"}, errs: []string{"phone:unknown_field", "status:wrong_type"}},
		{row: 4, errs: []string{"row:not_object"}},
	}
	objs := []string{
		`{"credit_code":"` + aixin + `","name":"浙江省爱心事业基金会","status":"正常","grade":"5A","division":"330000","industry":null}`,
		`{"credit_code":"51330782MJ0000018J","name":"协会","status":"normal","division":330782}`,
		`{"name":"x","status":1,"phone":"123"}`,
		`"just a string"`,
	}
	eq := func(a, b readRow) bool { return a.row == b.row && a.org == b.org && slices.Equal(a.errs, b.errs) }
	for name, in := range map[string]string{
		"array":          "\ufeff [\n" + strings.Join(objs, ",\n") + "\n]\n",
		"JSON Lines":     strings.Join(objs, "\n") + "\n",
		"no final break": strings.Join(objs, "\r\n"),
	} {
		t.Run(name, func(t *testing.T) {
			rows, err := collect(t, func(fn OrgRowFunc) error { return ReadOrganizationsJSON(strings.NewReader(in), fn) })
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(rows, want, eq) {
				t.Errorf("rows\n%+v\nwant\n%+v", rows, want)
			}
		})
	}
	for name, in := range map[string]string{"empty": "", "blank": " \n", "empty array": "[]"} {
		t.Run(name, func(t *testing.T) {
			rows, err := collect(t, func(fn OrgRowFunc) error { return ReadOrganizationsJSON(strings.NewReader(in), fn) })
			if err != nil || len(rows) != 0 {
				t.Errorf("rows %v, err %v", rows, err)
			}
		})
	}
	for name, in := range map[string]string{
		"unterminated array": `[{"name":"a"}`,
		"data after array":   `[{"name":"a"}] {"name":"b"}`,
		"broken object":      `{"name":"a"}` + "\n" + `{"name":`,
		"missing comma":      `[{"name":"a"} {"name":"b"}]`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := collect(t, func(fn OrgRowFunc) error { return ReadOrganizationsJSON(strings.NewReader(in), fn) })
			if err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestReadUnitsJSON(t *testing.T) {
	in := `[{"id":"330782-zg-jyj","name":"义乌市教育局","kind":"zg","division":"330782","parent":"330700-zg-jyj"},
	        {"id":"x","name":"停用","kind":"qt","active":false},
	        {"id":"y","name":"n","kind":"qt","colour":"red"}]`
	var got []RegistryUnit
	var rowErrs []int
	err := ReadUnitsJSON(strings.NewReader(in), func(row int, u RegistryUnit, errs map[string]qingfeng.FieldError) error {
		if errs != nil {
			rowErrs = append(rowErrs, row)
			return nil
		}
		got = append(got, u)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].Active || got[1].Active || got[0].Parent != "330700-zg-jyj" || !slices.Equal(rowErrs, []int{3}) {
		t.Errorf("units %+v, row errors %v", got, rowErrs)
	}
}

func TestNormalizeUnit(t *testing.T) {
	u, errs := NormalizeUnit(RegistryUnit{Unit: Unit{ID: " 330782-zg-jyj ", Name: "义乌市教育局", Kind: KindSupervisor, Division: "330782"}, Active: true})
	if errs != nil || u.ID != "330782-zg-jyj" || u.Level != LevelCounty {
		t.Errorf("got %+v, %v", u, errs)
	}
	_, errs = NormalizeUnit(RegistryUnit{Unit: Unit{ID: "a b", Kind: "zz", Division: "110000", Level: "planet"}, Parent: "a b"})
	for _, f := range []string{"id", "name", "kind", "division", "level", "parent"} {
		if _, ok := errs[f]; !ok {
			t.Errorf("no error for %s: %v", f, errs)
		}
	}
	// What looks like an id or a name but is not one.
	_, errs = NormalizeUnit(RegistryUnit{Unit: Unit{ID: "330782-zg\u200b", Name: "\u200b\u2060\ufeff", Kind: KindOther}})
	if errs["id"].Code != "invalid" || errs["name"].Code != "required" {
		t.Errorf("invisible characters: %v", errs)
	}
	missing := UnitRefsMissing(RegistryUnit{Parent: "p", StationedAt: "s"}, func(id string) bool { return id == "p" })
	if len(missing) != 1 || missing["stationed_at"].Code != "unknown_unit" {
		t.Errorf("UnitRefsMissing = %v", missing)
	}
}

func TestOrgFieldOrder(t *testing.T) {
	fields := []string{"zzz", FieldDivision, FieldCreditCode, FieldRow, FieldGrade}
	slices.SortStableFunc(fields, func(a, b string) int { return OrgFieldOrder(a) - OrgFieldOrder(b) })
	if want := []string{FieldRow, FieldCreditCode, FieldGrade, FieldDivision, "zzz"}; !slices.Equal(fields, want) {
		t.Errorf("got %v, want %v", fields, want)
	}
}
