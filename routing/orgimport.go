package routing

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	qingfeng "github.com/qingfeng-zj/qingfeng"
)

// Organization fields as named in import files and in field errors. The order is the
// order of the CSV template and of error reports.
const (
	FieldCreditCode            = "credit_code"
	FieldName                  = "name"
	FieldStatus                = "status"
	FieldRegistrationAuthority = "registration_authority"
	FieldSupervisoryUnit       = "supervisory_unit"
	FieldIndustry              = "industry"
	FieldGrade                 = "grade"
	FieldDivision              = "division"
	// FieldRow is the key of an error about a row as a whole (wrong number of CSV
	// fields, a JSON value that is not an object).
	FieldRow = "row"
)

// orgFields are the import columns with their Chinese headers (as in 民政 exports).
var orgFields = []struct{ key, zh string }{
	{FieldCreditCode, "统一社会信用代码"},
	{FieldName, "名称"},
	{FieldStatus, "状态"},
	{FieldRegistrationAuthority, "登记管理机关"},
	{FieldSupervisoryUnit, "业务主管单位"},
	{FieldIndustry, "行业"},
	{FieldGrade, "评估等级"},
	{FieldDivision, "住所区划"},
}

// OrgFieldOrder returns the place of an organization field in reports: the column order
// of the CSV template, with FieldRow first and unknown keys last. Use it to sort the keys
// of a field-error map.
func OrgFieldOrder(field string) int {
	if field == FieldRow {
		return -1
	}
	for i, f := range orgFields {
		if f.key == field {
			return i
		}
	}
	return len(orgFields)
}

// Limits on free-text fields.
const (
	maxOrgNameRunes     = 200
	maxOrgIndustryRunes = 100
)

func fieldError(code, zh, en string) qingfeng.FieldError {
	return qingfeng.FieldError{Code: code, Message: zh, English: en}
}

// NormalizeOrganization validates an imported organization and returns it normalized,
// or the errors keyed by field (FieldCreditCode, ...), ready for qingfeng.Invalid. It
// keeps the first error of each field.
//
// The credit code must be a well-formed 民政 code registered in Zhejiang; Type and
// RegDivision are derived from it (a retired registering division becomes its
// successor). A code whose check characters are wrong is accepted: some genuine early
// codes fail the check (see CreditCode.CheckValid), and callers may warn about it.
// Status accepts a code or its Chinese label. When units is not nil,
// registration_authority must name a 民政 unit and supervisory_unit any unit in it, by id
// or by exact name; both are stored as ids. Grade is 1A–5A (also written AAAA, with
// full-width letters, or with a trailing 级), division a Zhejiang division code.
// UpdatedAt is left as it is.
func NormalizeOrganization(in Organization, units *Units) (Organization, map[string]qingfeng.FieldError) {
	errs := map[string]qingfeng.FieldError{}
	bad := func(field, code, zh, en string) {
		if _, dup := errs[field]; !dup {
			errs[field] = fieldError(code, zh, en)
		}
	}
	out := Organization{UpdatedAt: in.UpdatedAt}

	switch code := strings.TrimSpace(in.CreditCode); {
	case code == "":
		bad(FieldCreditCode, "required", "统一社会信用代码必填", "the unified social credit code is required")
	default:
		cc, err := ParseCreditCode(code)
		var qe *qingfeng.Error
		switch {
		case errors.As(err, &qe):
			bad(FieldCreditCode, "malformed", qe.Message, qe.English)
		case err != nil:
			bad(FieldCreditCode, "malformed", "统一社会信用代码无效", "invalid unified social credit code")
		case !cc.IsCivilAffairs():
			bad(FieldCreditCode, "not_civil_affairs",
				fmt.Sprintf("%s不是民政部门登记的社会组织代码（第1位应为5）", cc.Code),
				fmt.Sprintf("%s is not the code of a social organization registered by civil affairs (it should start with 5)", cc.Code))
		case cc.OrgType() == "":
			bad(FieldCreditCode, "unknown_type",
				fmt.Sprintf("统一社会信用代码第2位“%c”不是民政登记的机构类别（1社会团体、2社会服务机构、3基金会、9其他）", cc.Type),
				fmt.Sprintf("character 2 of the credit code (%c) is not a civil-affairs organization type (1, 2, 3 or 9)", cc.Type))
		default:
			d, ok := cc.RegisteringDivision()
			if !ok {
				bad(FieldCreditCode, "outside_zhejiang",
					fmt.Sprintf("登记管理机关不在浙江省（统一社会信用代码第3至8位为%s）", cc.Division),
					fmt.Sprintf("registered outside Zhejiang (division %s in the credit code)", cc.Division))
				break
			}
			out.CreditCode, out.Type, out.RegDivision = cc.Code, cc.OrgType(), d.Code
		}
	}

	out.Name = strings.TrimSpace(in.Name)
	switch n := utf8.RuneCountInString(out.Name); {
	case n == 0:
		bad(FieldName, "required", "名称必填", "the name is required")
	case n > maxOrgNameRunes:
		bad(FieldName, "too_long", fmt.Sprintf("名称不能超过%d字", maxOrgNameRunes),
			fmt.Sprintf("the name has more than %d characters", maxOrgNameRunes))
	}

	if s := strings.TrimSpace(string(in.Status)); s == "" {
		bad(FieldStatus, "required", "状态必填", "the status is required")
	} else if st, ok := ParseOrgStatus(s); ok {
		out.Status = st
	} else {
		bad(FieldStatus, "invalid",
			fmt.Sprintf("状态“%s”无效，应为正常、撤销、注销、活动异常名录或严重违法失信名单", s),
			fmt.Sprintf("unknown status %q (normal, revoked, deregistered, abnormal or dishonest)", s))
	}

	if ref := strings.TrimSpace(in.RegistrationAuthority); ref != "" {
		out.RegistrationAuthority = ref
		if units != nil {
			u, ok := findUnit(units, ref)
			switch {
			case !ok:
				bad(FieldRegistrationAuthority, "unknown_unit", fmt.Sprintf("登记管理机关“%s”不在单位名录中", ref),
					fmt.Sprintf("registration authority %q is not in the unit registry", ref))
			case u.Kind != KindCivilAffairs:
				bad(FieldRegistrationAuthority, "not_civil_affairs", fmt.Sprintf("“%s”不是民政部门，不能作为登记管理机关", u.Name),
					fmt.Sprintf("%s is not a civil-affairs unit and cannot be a registration authority", u.ID))
			default:
				out.RegistrationAuthority = u.ID
			}
		}
	}

	if ref := strings.TrimSpace(in.SupervisoryUnit); ref != "" {
		out.SupervisoryUnit = ref
		if units != nil {
			if u, ok := findUnit(units, ref); ok {
				out.SupervisoryUnit = u.ID
			} else {
				bad(FieldSupervisoryUnit, "unknown_unit", fmt.Sprintf("业务主管单位“%s”不在单位名录中", ref),
					fmt.Sprintf("supervisory unit %q is not in the unit registry", ref))
			}
		}
	}

	out.Industry = strings.TrimSpace(in.Industry)
	if utf8.RuneCountInString(out.Industry) > maxOrgIndustryRunes {
		bad(FieldIndustry, "too_long", fmt.Sprintf("行业不能超过%d字", maxOrgIndustryRunes),
			fmt.Sprintf("the industry has more than %d characters", maxOrgIndustryRunes))
	}

	if g := strings.TrimSpace(in.Grade); g != "" {
		if ng, ok := normalizeGrade(g); ok {
			out.Grade = ng
		} else {
			bad(FieldGrade, "invalid", fmt.Sprintf("评估等级“%s”无效，应为1A至5A", g),
				fmt.Sprintf("invalid assessment grade %q (1A to 5A)", g))
		}
	}

	if dv := strings.TrimSpace(strings.Map(halfWidth, in.Division)); dv != "" {
		if d, ok := LookupDivision(dv); ok {
			out.Division = d.Code
		} else {
			bad(FieldDivision, "invalid", fmt.Sprintf("住所区划“%s”不是浙江省的行政区划代码", dv),
				fmt.Sprintf("%q is not a Zhejiang division code", dv))
		}
	}

	if len(errs) > 0 {
		return Organization{}, errs
	}
	return out, nil
}

// findUnit looks a unit up by id, then by exact name: 民政 exports name the authority
// (义乌市民政局) rather than giving an id.
func findUnit(units *Units, ref string) (RegistryUnit, bool) {
	if u, ok := units.Get(ref); ok {
		return u, true
	}
	return units.FindByName(ref)
}

// normalizeGrade turns 4A, ４Ａ, AAAA, 4A级 and 4a into 4A.
func normalizeGrade(g string) (string, bool) {
	g = strings.ToUpper(strings.Map(halfWidth, g))
	g = strings.TrimSpace(strings.TrimSuffix(g, "级"))
	if len(g) == 2 && g[0] >= '1' && g[0] <= '5' && g[1] == 'A' {
		return g, true
	}
	if n := len(g); n >= 1 && n <= 5 && strings.Count(g, "A") == n {
		return fmt.Sprintf("%dA", n), true
	}
	return "", false
}

// OrgRowFunc receives one row of an import file: its 1-based number, the organization as
// read (not yet normalized: pass it to NormalizeOrganization) and the errors found while
// reading it, keyed by field, or nil. Returning an error stops the reading with that
// error.
type OrgRowFunc func(row int, o Organization, errs map[string]qingfeng.FieldError) error

// ReadOrganizationsCSV reads organizations from CSV and calls fn for each data row.
//
// The first record is a header naming the columns, in any order, by their keys
// (credit_code, name, status, registration_authority, supervisory_unit, industry, grade,
// division) or their Chinese headers (统一社会信用代码, 名称, 状态, 登记管理机关, 业务主管单位,
// 行业, 评估等级, 住所区划). A UTF-8 byte-order mark (as Excel writes) is skipped. A header
// with an unknown or repeated column, or without credit_code, name or status, is an
// error before any row is read.
//
// Row numbers count data records from 1: the header is not counted, blank lines are
// skipped, and a quoted field spanning several lines is still one row. A record with the
// wrong number of fields is reported to fn as a FieldRow error; a CSV syntax error (a
// stray quote) stops the reading and is returned with its line number.
func ReadOrganizationsCSV(r io.Reader, fn OrgRowFunc) error {
	cr := csv.NewReader(skipBOM(r))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return errors.New("read organizations CSV: the file is empty (a header row is required)")
	}
	if err != nil {
		return fmt.Errorf("read organizations CSV header: %w", err)
	}
	cols := make([]string, len(header)) // column index → field key
	seen := map[string]bool{}
	var unknown, repeated []string
	for i, h := range header {
		key := orgFieldKey(h)
		switch {
		case key == "":
			unknown = append(unknown, fmt.Sprintf("%q", strings.TrimSpace(h)))
		case seen[key]:
			repeated = append(repeated, fmt.Sprintf("%q", strings.TrimSpace(h)))
		}
		seen[key] = true
		cols[i] = key
	}
	if len(unknown) > 0 {
		return fmt.Errorf("read organizations CSV header: unknown column(s) %s; known columns: %s",
			strings.Join(unknown, ", "), knownColumns())
	}
	if len(repeated) > 0 {
		return fmt.Errorf("read organizations CSV header: column(s) %s given twice", strings.Join(repeated, ", "))
	}
	var missing []string
	for _, k := range []string{FieldCreditCode, FieldName, FieldStatus} {
		if !seen[k] {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("read organizations CSV header: missing column(s) %s", strings.Join(missing, ", "))
	}

	for row := 1; ; row++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read organizations CSV row %d: %w", row, err)
		}
		if len(rec) != len(cols) {
			if err := fn(row, Organization{}, map[string]qingfeng.FieldError{FieldRow: fieldError("field_count",
				fmt.Sprintf("应有%d列，实有%d列", len(cols), len(rec)),
				fmt.Sprintf("%d fields, the header has %d", len(rec), len(cols)))}); err != nil {
				return err
			}
			continue
		}
		var o Organization
		for i, v := range rec {
			setOrgField(&o, cols[i], v)
		}
		if err := fn(row, o, nil); err != nil {
			return err
		}
	}
}

// ReadOrganizationsJSON reads organizations from a JSON array of objects or from JSON
// Lines (one object per line; any whitespace between objects will do) and calls fn for
// each. It streams: one object is in memory at a time. Keys are those of the CSV header
// (credit_code, name, ...); values are strings, or null for none (division also takes a
// number). Row numbers count objects from 1. An unknown key or a value of the wrong type
// is reported to fn as an error of that field; malformed JSON stops the reading.
func ReadOrganizationsJSON(r io.Reader, fn OrgRowFunc) error {
	br := bufio.NewReader(skipBOM(r))
	dec := json.NewDecoder(br)
	first, err := firstNonSpace(br)
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read organizations JSON: %w", err)
	}
	array := first == '['
	if array {
		if _, err := dec.Token(); err != nil {
			return fmt.Errorf("read organizations JSON: %w", err)
		}
	}
	for row := 1; ; row++ {
		if array && !dec.More() {
			if _, err := dec.Token(); err != nil { // the closing ]
				return fmt.Errorf("read organizations JSON: %w", err)
			}
			if _, err := dec.Token(); !errors.Is(err, io.EOF) {
				return fmt.Errorf("read organizations JSON: data after the closing ]")
			}
			return nil
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if !array && errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read organizations JSON object %d (byte %d): %w", row, dec.InputOffset(), err)
		}
		o, errs := decodeOrgObject(raw)
		if err := fn(row, o, errs); err != nil {
			return err
		}
	}
}

// decodeOrgObject maps one JSON object to an Organization, collecting per-field errors
// instead of stopping at the first.
func decodeOrgObject(raw json.RawMessage) (Organization, map[string]qingfeng.FieldError) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return Organization{}, map[string]qingfeng.FieldError{FieldRow: fieldError("not_object",
			"每一行应为一个JSON对象", "each row must be a JSON object")}
	}
	var o Organization
	errs := map[string]qingfeng.FieldError{}
	for k, v := range obj {
		key := orgFieldKey(k)
		if key == "" || !strings.EqualFold(key, k) {
			// JSON files use the snake_case keys only; Chinese keys are a CSV-header
			// convenience for spreadsheets.
			errs[k] = fieldError("unknown_field", "不支持的字段", "unknown field")
			continue
		}
		var s string
		switch {
		case bytes.Equal(v, []byte("null")):
		case len(v) > 0 && v[0] == '"':
			if err := json.Unmarshal(v, &s); err != nil {
				errs[key] = fieldError("wrong_type", "应为字符串", "must be a string")
				continue
			}
		case key == FieldDivision && len(v) > 0 && v[0] >= '0' && v[0] <= '9':
			s = string(v) // 330782 written as a number
		default:
			errs[key] = fieldError("wrong_type", "应为字符串", "must be a string")
			continue
		}
		setOrgField(&o, key, s)
	}
	if len(errs) > 0 {
		return o, errs
	}
	return o, nil
}

// orgFieldKey maps a column header or JSON key to its field key, "" if unknown.
func orgFieldKey(h string) string {
	h = strings.TrimSpace(h)
	for _, f := range orgFields {
		if strings.EqualFold(h, f.key) || h == f.zh {
			return f.key
		}
	}
	return ""
}

func knownColumns() string {
	var s []string
	for _, f := range orgFields {
		s = append(s, f.key+" ("+f.zh+")")
	}
	return strings.Join(s, ", ")
}

func setOrgField(o *Organization, key, v string) {
	switch key {
	case FieldCreditCode:
		o.CreditCode = v
	case FieldName:
		o.Name = v
	case FieldStatus:
		o.Status = OrgStatus(v)
	case FieldRegistrationAuthority:
		o.RegistrationAuthority = v
	case FieldSupervisoryUnit:
		o.SupervisoryUnit = v
	case FieldIndustry:
		o.Industry = v
	case FieldGrade:
		o.Grade = v
	case FieldDivision:
		o.Division = v
	}
}

// skipBOM drops a leading UTF-8 byte-order mark.
func skipBOM(r io.Reader) io.Reader {
	br := bufio.NewReader(r)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		_, _ = br.Discard(3)
	}
	return br
}

// firstNonSpace peeks at the first byte that is not JSON whitespace, leaving it unread.
func firstNonSpace(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return b, br.UnreadByte()
	}
}

// UnitRowFunc receives one unit of a units import file, as ReadUnitsJSON read it.
type UnitRowFunc func(row int, u RegistryUnit, errs map[string]qingfeng.FieldError) error

// unitRow is a unit as written in an import file: active defaults to true when absent.
type unitRow struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Kind        UnitKind `json:"kind"`
	Division    string   `json:"division"`
	Level       Level    `json:"level"`
	Parent      string   `json:"parent"`
	StationedAt string   `json:"stationed_at"`
	Active      *bool    `json:"active"`
	Aliases     []string `json:"aliases"`
}

// ReadUnitsJSON reads registry units from a JSON array (or JSON Lines) of objects with
// the keys of RegistryUnit (id, name, kind, division, level, parent, stationed_at,
// active, aliases; active defaults to true) and calls fn for each, numbered from 1. An unknown
// key or a wrong type is reported to fn; malformed JSON stops the reading.
func ReadUnitsJSON(r io.Reader, fn UnitRowFunc) error {
	br := bufio.NewReader(skipBOM(r))
	first, err := firstNonSpace(br)
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read units JSON: %w", err)
	}
	dec := json.NewDecoder(br)
	array := first == '['
	if array {
		if _, err := dec.Token(); err != nil {
			return fmt.Errorf("read units JSON: %w", err)
		}
	}
	for row := 1; ; row++ {
		if array && !dec.More() {
			if _, err := dec.Token(); err != nil {
				return fmt.Errorf("read units JSON: %w", err)
			}
			return nil
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if !array && errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read units JSON object %d: %w", row, err)
		}
		var ur unitRow
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		var errs map[string]qingfeng.FieldError
		if err := d.Decode(&ur); err != nil {
			errs = map[string]qingfeng.FieldError{FieldRow: fieldError("invalid_json",
				"无法解析："+err.Error(), "cannot decode: "+err.Error())}
		}
		u := RegistryUnit{Unit: Unit{ID: ur.ID, Name: ur.Name, Kind: ur.Kind, Division: ur.Division, Level: ur.Level},
			Parent: ur.Parent, StationedAt: ur.StationedAt, Active: ur.Active == nil || *ur.Active, Aliases: ur.Aliases}
		if err := fn(row, u, errs); err != nil {
			return err
		}
	}
}

// NormalizeUnit checks one registry unit on its own: id, name and a known kind are
// required, division (when given) must be a Zhejiang division, and the level is taken
// from the division when missing. Aliases are trimmed, and repeats (as NormalizeName
// writes them, the name included) dropped. Whether parent and stationed_at exist depends on the
// rest of the registry: check with NewUnits or UnitRefsMissing.
func NormalizeUnit(in RegistryUnit) (RegistryUnit, map[string]qingfeng.FieldError) {
	errs := map[string]qingfeng.FieldError{}
	u := in
	u.ID, u.Name, u.Division = strings.TrimSpace(in.ID), strings.TrimSpace(in.Name), strings.TrimSpace(in.Division)
	u.Parent, u.StationedAt = strings.TrimSpace(in.Parent), strings.TrimSpace(in.StationedAt)
	if u.ID == "" {
		errs["id"] = fieldError("required", "单位编号必填", "the unit id is required")
	} else if len(u.ID) > 64 || strings.ContainsAny(u.ID, "$.") || strings.ContainsFunc(u.ID, invisible) {
		errs["id"] = fieldError("invalid", "单位编号不能含空白、不可见字符、$或.，且不超过64字符", "the unit id has at most 64 characters and no spaces, invisible characters, $ or .")
	}
	if NormalizeName(u.Name) == "" { // nothing, or only invisible characters
		errs["name"] = fieldError("required", "单位名称必填", "the unit name is required")
	} else if utf8.RuneCountInString(u.Name) > maxOrgNameRunes {
		errs["name"] = fieldError("too_long", fmt.Sprintf("单位名称不能超过%d字", maxOrgNameRunes),
			fmt.Sprintf("the unit name has more than %d characters", maxOrgNameRunes))
	}
	if !ValidKind(u.Kind) {
		errs["kind"] = fieldError("invalid", fmt.Sprintf("单位类别“%s”无效，应为%s之一", u.Kind, strings.Join(kindCodes(), "、")),
			fmt.Sprintf("unknown unit kind %q (one of %s)", u.Kind, strings.Join(kindCodes(), ", ")))
	}
	if u.Division != "" {
		if d, ok := LookupDivision(u.Division); ok {
			u.Division = d.Code
			if u.Level == "" {
				u.Level = d.Level
			}
		} else {
			errs["division"] = fieldError("invalid", fmt.Sprintf("“%s”不是浙江省的行政区划代码", u.Division),
				fmt.Sprintf("%q is not a Zhejiang division code", u.Division))
		}
	}
	if u.Level != "" && u.Level.Label() == "" {
		errs["level"] = fieldError("invalid", fmt.Sprintf("层级“%s”无效", u.Level), fmt.Sprintf("unknown level %q", u.Level))
	}
	u.Aliases = nil
	seen := map[string]bool{NormalizeName(u.Name): true}
	for _, a := range in.Aliases {
		a = strings.TrimSpace(a)
		n := NormalizeName(a)
		switch {
		case utf8.RuneCountInString(a) > MaxAliasRunes:
			errs["aliases"] = fieldError("too_long", fmt.Sprintf("别名不能超过%d字", MaxAliasRunes), fmt.Sprintf("an alias has more than %d characters", MaxAliasRunes))
		case n != "" && !seen[n]:
			seen[n] = true
			u.Aliases = append(u.Aliases, a)
		}
	}
	if len(u.Aliases) > MaxAliases {
		errs["aliases"] = fieldError("too_many", fmt.Sprintf("一个单位最多%d个别名", MaxAliases), fmt.Sprintf("a unit has at most %d aliases", MaxAliases))
	}
	if u.Parent != "" && u.Parent == u.ID {
		errs["parent"] = fieldError("self", "上级单位不能是自身", "a unit cannot be its own parent")
	}
	for kind, days := range u.Deadlines {
		if !slices.Contains(DeadlineKinds, kind) || days < 1 || days > 90 {
			errs["deadlines."+kind] = fieldError("invalid", "期限种类应为 acceptance、transfer、feedback 或 rectification，天数为1–90个工作日",
				"deadline kinds are acceptance, transfer, feedback, rectification; 1–90 working days")
		}
	}
	if len(errs) > 0 {
		return RegistryUnit{}, errs
	}
	return u, nil
}

// invisible reports a space, control or format character (zero-width space, BOM, word
// joiner): in an id it would make two ids that look the same.
func invisible(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}

func kindCodes() []string {
	var out []string
	for _, k := range []UnitKind{KindDiscipline, KindStationed, KindCivilAffairs, KindSupervisor, KindMarket,
		KindPolice, KindFinance, KindAudit, KindTax, KindIntakeOffice, KindOther} {
		out = append(out, string(k))
	}
	slices.Sort(out)
	return out
}

// UnitRefsMissing reports the references of u (parent, stationed_at) for which exists
// is false, as field errors.
func UnitRefsMissing(u RegistryUnit, exists func(id string) bool) map[string]qingfeng.FieldError {
	var errs map[string]qingfeng.FieldError
	add := func(field, id, zh string) {
		if errs == nil {
			errs = map[string]qingfeng.FieldError{}
		}
		errs[field] = fieldError("unknown_unit", fmt.Sprintf("%s“%s”不在单位名录中", zh, id),
			fmt.Sprintf("%s %q is not in the registry", field, id))
	}
	if u.Parent != "" && !exists(u.Parent) {
		add("parent", u.Parent, "上级单位")
	}
	if u.StationedAt != "" && !exists(u.StationedAt) {
		add("stationed_at", u.StationedAt, "派驻单位")
	}
	return errs
}

// parentCycle reports a parent chain from u that comes back to u (A under B under A):
// a case escalated or returned along it would go round in circles. parentOf gives the
// parent each unit will have; max bounds the walk.
func parentCycle(u RegistryUnit, parentOf func(id string) string, max int) map[string]qingfeng.FieldError {
	for id, n := u.Parent, 0; id != "" && n <= max; id, n = parentOf(id), n+1 {
		if id == u.ID {
			return map[string]qingfeng.FieldError{"parent": fieldError("cycle",
				fmt.Sprintf("上级单位“%s”是本单位的下级，上下级不能形成循环", u.Parent),
				fmt.Sprintf("parent %q is below this unit: the parents would form a cycle", u.Parent))}
		}
	}
	return nil
}

// namesTaken reports u's name, or one of its aliases, that reg takes surely for another
// unit (Resolve), as AddUnitAlias refuses such an alias.
func namesTaken(reg *Units, u RegistryUnit) map[string]qingfeng.FieldError {
	taken := func(field, name string) map[string]qingfeng.FieldError {
		if m := reg.Resolve(name, ""); m.Sure && m.Unit.ID != u.ID {
			return map[string]qingfeng.FieldError{field: fieldError("taken",
				fmt.Sprintf("“%s”已指单位“%s”（%s），两个单位不能同名", name, m.Unit.Name, m.Unit.ID),
				fmt.Sprintf("%q already means unit %s", name, m.Unit.ID))}
		}
		return nil
	}
	if errs := taken("name", u.Name); errs != nil {
		return errs
	}
	for _, a := range u.Aliases {
		if errs := taken("aliases", a); errs != nil {
			return errs
		}
	}
	return nil
}

// ImportBatch is how many rows are normalized and stored at a time.
const ImportBatch = 1000

// StoredUnits is the registry imported organizations are checked against: the stored
// units, or the defaults that the server loads on its first start when there are none.
func StoredUnits(ctx context.Context, store interface {
	Units(context.Context) ([]RegistryUnit, error)
}) (*Units, error) {
	list, err := store.Units(ctx)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		list = DefaultUnits()
	}
	u, err := NewUnits(list)
	if err != nil {
		return nil, fmt.Errorf("the stored unit registry is inconsistent: %w", err)
	}
	return u, nil
}

// OrgImportStore is what ImportOrganizations needs of storage (mongo.OrgStore).
type OrgImportStore interface {
	UpsertOrganizations(ctx context.Context, orgs []Organization) (inserted, updated int, err error)
}

// UnitImportStore is what ImportUnits needs of storage (mongo.UnitStore).
type UnitImportStore interface {
	Units(ctx context.Context) ([]RegistryUnit, error)
	SeedUnits(ctx context.Context, units []RegistryUnit) (int, error)
	UpsertUnits(ctx context.Context, units []RegistryUnit) (inserted, updated int, err error)
}

// ImportOptions tune ImportOrganizations and ImportUnits.
type ImportOptions struct {
	// Units checks organizations' registration authority and supervisory unit; nil
	// leaves them unchecked.
	Units *Units
	// BatchSize is how many rows are stored at a time; 0 means ImportBatch.
	BatchSize int
	// Progress, if not nil, is told how far the import is after each batch: the bytes
	// read of r and the rows read.
	Progress func(bytesRead int64, rows int)
	// Stored, if not nil, receives each batch of organizations once it is stored (the
	// slice is reused afterwards): the running server puts them into its registry.
	Stored func(orgs []Organization)
	// Reject, if not nil, receives each rejected row's errors, in row order. An error
	// stops the import.
	Reject func(row int, errs map[string]qingfeng.FieldError) error
	// OnlyNew makes ImportUnits reject a unit whose id is stored already (compared as
	// NormalizeName writes ids, so 330782-MZ is 330782-mz): the console's form for a
	// new unit, which must never overwrite one.
	OnlyNew bool
	// SeedDefaults makes importUnits load DefaultUnits into an empty registry
	// first, as the server's first start would: a few units imported into an empty
	// registry would otherwise stop the defaults from ever being loaded.
	SeedDefaults bool
}

func (o ImportOptions) progress(n int64, rows int) {
	if o.Progress != nil {
		o.Progress(n, rows)
	}
}

// ImportStats counts an import's rows.
type ImportStats struct {
	Read, Inserted, Updated, Rejected int
	// CheckWarnings counts imported organizations whose credit code fails its check
	// characters: accepted, since some genuine early codes do.
	CheckWarnings int
	// Seeded is how many default units were loaded first.
	Seeded int
}

func (s ImportStats) String() string {
	out := fmt.Sprintf("read %d, inserted %d, updated %d, rejected %d", s.Read, s.Inserted, s.Updated, s.Rejected)
	if s.CheckWarnings > 0 {
		out += fmt.Sprintf(", %d credit codes failing their check character (imported)", s.CheckWarnings)
	}
	if s.Seeded > 0 {
		out += fmt.Sprintf("; %d default units loaded first", s.Seeded)
	}
	return out
}

// ImportOrganizations reads organizations in format (csv, json or jsonl) from r,
// normalizes each (NormalizeOrganization) and upserts the valid ones in
// batches. A credit code seen earlier in the same input is rejected. Rejected rows go
// to opts.Reject; the returned error is for a failure that stopped the import (a
// malformed file, the database), after which the batches already stored stay stored.
func ImportOrganizations(ctx context.Context, store OrgImportStore, r io.Reader, format string, opts ImportOptions) (ImportStats, error) {
	var st ImportStats
	read, err := orgReader(format)
	if err != nil {
		return st, err
	}
	size := cmp.Or(opts.BatchSize, ImportBatch)
	cr := &countingReader{r: r}
	batch := make([]Organization, 0, size)
	seen := map[string]int{} // credit code → row
	storeFailed := false
	flush := func() error {
		if len(batch) > 0 {
			ins, upd, err := store.UpsertOrganizations(ctx, batch)
			st.Inserted, st.Updated = st.Inserted+ins, st.Updated+upd
			if err != nil {
				batch = batch[:0]
				storeFailed = true
				return err
			}
			if opts.Stored != nil {
				opts.Stored(batch)
			}
			batch = batch[:0]
		}
		opts.progress(cr.n, st.Read)
		return nil
	}
	reject := func(row int, errs map[string]qingfeng.FieldError) error {
		st.Rejected++
		if opts.Reject == nil {
			return nil
		}
		return opts.Reject(row, errs)
	}
	err = read(cr, func(row int, in Organization, errs map[string]qingfeng.FieldError) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		st.Read++
		if _, whole := errs[FieldRow]; whole {
			return reject(row, errs)
		}
		o, nerrs := NormalizeOrganization(in, opts.Units)
		for f, e := range errs { // what the reader found wins over what normalizing made of it
			if nerrs == nil {
				nerrs = map[string]qingfeng.FieldError{}
			}
			nerrs[f] = e
		}
		if nerrs == nil {
			if first, dup := seen[o.CreditCode]; dup {
				nerrs = map[string]qingfeng.FieldError{FieldCreditCode: {Code: "duplicate",
					Message: fmt.Sprintf("与第%d行的统一社会信用代码相同", first),
					English: fmt.Sprintf("the same credit code as row %d", first)}}
			}
		}
		if nerrs != nil {
			return reject(row, nerrs)
		}
		seen[o.CreditCode] = row
		if cc, err := ParseCreditCode(o.CreditCode); err == nil && !cc.CheckValid {
			st.CheckWarnings++
		}
		batch = append(batch, o)
		if len(batch) == size {
			return flush()
		}
		return nil
	})
	if err != nil {
		// A malformed file: the valid rows before the fault are imported, like those of
		// the batches already stored.
		if len(batch) > 0 && ctx.Err() == nil && !storeFailed {
			err = errors.Join(err, flush())
		}
		return st, err
	}
	return st, flush()
}

// ImportUnits reads registry units (a JSON array or JSON Lines) from r and upserts the
// valid ones. A unit's parent and stationed_at must be stored or in the same input (and
// valid there); an id seen earlier in the input is rejected. Units files are small (a
// few thousand units at most), so the whole input is read before anything is stored.
func ImportUnits(ctx context.Context, store UnitImportStore, r io.Reader, format string, opts ImportOptions) (ImportStats, error) {
	if format != "json" && format != "jsonl" {
		return ImportStats{}, fmt.Errorf("units are imported from JSON, not %q", format)
	}
	var rows []unitImportRow
	cr := &countingReader{r: r}
	err := ReadUnitsJSON(cr, func(n int, u RegistryUnit, errs map[string]qingfeng.FieldError) error {
		rows = append(rows, unitImportRow{n: n, unit: u, errs: errs})
		return ctx.Err()
	})
	if err != nil {
		return ImportStats{Read: len(rows)}, err
	}
	return importUnitRows(ctx, store, rows, cr.n, opts)
}

// unitImportRow is one row of a units import: the unit as read, and the errors found
// reading it (nil if none).
type unitImportRow struct {
	n    int
	unit RegistryUnit
	errs map[string]qingfeng.FieldError
}

// importUnitRows is ImportUnits after the reading: each row normalized, checked
// against the stored registry and the other rows, and the valid ones upserted. The
// console's one-unit form is a one-row import through it (Admin.SaveUnit).
func importUnitRows(ctx context.Context, store UnitImportStore, rows []unitImportRow, bytesRead int64, opts ImportOptions) (ImportStats, error) {
	st := ImportStats{Read: len(rows)}
	for i := range rows {
		if rows[i].errs == nil {
			rows[i].unit, rows[i].errs = NormalizeUnit(rows[i].unit)
		}
	}

	stored, err := store.Units(ctx)
	if err != nil {
		return st, err
	}
	if len(stored) == 0 && opts.SeedDefaults {
		if st.Seeded, err = store.SeedUnits(ctx, DefaultUnits()); err != nil {
			return st, err
		}
		if stored, err = store.Units(ctx); err != nil {
			return st, err
		}
	}
	known := map[string]RegistryUnit{}
	folded := map[string]string{} // the ids as NormalizeName writes them → the id
	for _, u := range stored {
		known[u.ID] = u
		folded[NormalizeName(u.ID)] = u.ID
	}
	inFile := map[string]int{} // id → index in rows of its first valid occurrence
	for i := range rows {
		if rows[i].errs != nil {
			continue
		}
		id := rows[i].unit.ID
		if first, dup := inFile[id]; dup {
			rows[i].errs = map[string]qingfeng.FieldError{"id": {Code: "duplicate",
				Message: fmt.Sprintf("与第%d行的单位编号相同", rows[first].n), English: fmt.Sprintf("the same id as row %d", rows[first].n)}}
			continue
		}
		if have, ok := folded[NormalizeName(id)]; ok && opts.OnlyNew {
			rows[i].errs = map[string]qingfeng.FieldError{"id": {Code: "exists",
				Message: fmt.Sprintf("单位编号“%s”已存在，不能重复新建；如需修改请打开该单位", have),
				English: fmt.Sprintf("unit %s exists already; edit it instead", have)}}
			continue
		}
		inFile[id] = i
	}
	// References resolve against the stored units and the valid units of the file; a
	// unit whose parent is rejected is rejected too, hence the loop.
	valid := func(id string) bool {
		if _, ok := inFile[id]; ok {
			return true
		}
		_, ok := known[id]
		return ok
	}
	parentOf := func(id string) string {
		if i, ok := inFile[id]; ok {
			return rows[i].unit.Parent
		}
		return known[id].Parent
	}
	for changed := true; changed; {
		changed = false
		for i := range rows {
			if rows[i].errs != nil {
				continue
			}
			errs := UnitRefsMissing(rows[i].unit, valid)
			if errs == nil {
				errs = parentCycle(rows[i].unit, parentOf, len(known)+len(rows))
			}
			if errs != nil {
				rows[i].errs = errs
				if inFile[rows[i].unit.ID] == i {
					delete(inFile, rows[i].unit.ID)
				}
				changed = true
			}
		}
	}

	// A name or alias that already surely means another unit would leave routing sure
	// of neither: the unit a report names, and whom it must recuse, would be guessed.
	if reg, err := NewUnits(stored); err == nil {
		for i := range rows {
			if rows[i].errs == nil {
				rows[i].errs = namesTaken(reg, rows[i].unit)
			}
		}
	}
	// Nor may two new units of one file share a name (as NormalizeName writes it): the
	// later row is refused.
	named := map[string]int{} // a name or alias → the row that gave it
	for i := range rows {
		if rows[i].errs != nil {
			continue
		}
		u := rows[i].unit
		for j, n := range append([]string{u.Name}, u.Aliases...) {
			if first, ok := named[NormalizeName(n)]; ok {
				field := "name"
				if j > 0 {
					field = "aliases"
				}
				rows[i].errs = map[string]qingfeng.FieldError{field: fieldError("taken",
					fmt.Sprintf("“%s”与第%d行的单位同名，两个单位不能同名", n, first), fmt.Sprintf("%q is also the name of row %d's unit", n, first))}
				break
			}
		}
		if rows[i].errs == nil {
			for _, n := range append([]string{u.Name}, u.Aliases...) {
				named[NormalizeName(n)] = rows[i].n
			}
		}
	}

	var good []RegistryUnit
	merged := map[string]RegistryUnit{}
	for _, u := range stored {
		merged[u.ID] = u
	}
	for _, r := range rows {
		if r.errs != nil {
			st.Rejected++
			if opts.Reject != nil {
				if err := opts.Reject(r.n, r.errs); err != nil {
					return st, err
				}
			}
			continue
		}
		u := r.unit
		if old, ok := merged[u.ID]; ok {
			// Aliases are kept: one an admin added must not vanish because the file
			// does not list it (recusal depends on it). Remove them through the API.
			u.Aliases = mergeAliases(old.Aliases, u.Aliases)
			// Files carry no deadlines: a unit's own stay as they are.
			if u.Deadlines == nil {
				u.Deadlines = old.Deadlines
			}
		}
		good = append(good, u)
		merged[u.ID] = u
	}
	// The registry as it will be must load, or the server would refuse to start.
	if _, err := NewUnits(slices.Collect(maps.Values(merged))); err != nil {
		return st, qingfeng.Errorf(qingfeng.EINVALID, "导入后单位名录将不一致，未导入任何单位："+err.Error(),
			"the registry would be inconsistent, nothing imported: "+err.Error())
	}
	size := cmp.Or(opts.BatchSize, ImportBatch)
	for chunk := range slices.Chunk(good, size) {
		ins, upd, err := store.UpsertUnits(ctx, chunk)
		st.Inserted, st.Updated = st.Inserted+ins, st.Updated+upd
		if err != nil {
			return st, err
		}
		opts.progress(bytesRead, st.Read)
	}
	return st, nil
}

// sortedFields lists the fields of a row's errors in column order.
func sortedFields(errs map[string]qingfeng.FieldError) []string {
	fields := make([]string, 0, len(errs))
	for f := range errs {
		fields = append(fields, f)
	}
	slices.SortFunc(fields, func(a, b string) int {
		return cmp.Or(cmp.Compare(OrgFieldOrder(a), OrgFieldOrder(b)), cmp.Compare(a, b))
	})
	return fields
}

// countingReader counts the bytes read through it, for progress reports.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// CheckOrganizationsFile reads a whole organizations file in format (csv, json or
// jsonl) and returns the error that would stop ImportOrganizations part-way (a bad
// header, malformed JSON, a stray quote), storing nothing. Rows with bad values are
// not errors here: the import rejects them one by one. The upload route checks a file
// with it first, so that a malformed file changes nothing.
func CheckOrganizationsFile(r io.Reader, format string) error {
	read, err := orgReader(format)
	if err != nil {
		return err
	}
	return read(r, func(int, Organization, map[string]qingfeng.FieldError) error { return nil })
}

func orgReader(format string) (func(io.Reader, OrgRowFunc) error, error) {
	switch format {
	case "csv":
		return ReadOrganizationsCSV, nil
	case "json", "jsonl":
		return ReadOrganizationsJSON, nil
	}
	return nil, fmt.Errorf("unknown format %q", format)
}

// SortFields lists the fields of a row's errors in report order (OrgFieldOrder), as
// the CLI prints them and the import route lists them.
func SortFields(errs map[string]qingfeng.FieldError) []string {
	fields := slices.Collect(maps.Keys(errs))
	slices.SortFunc(fields, func(a, b string) int {
		return cmp.Or(cmp.Compare(OrgFieldOrder(a), OrgFieldOrder(b)), cmp.Compare(a, b))
	})
	return fields
}

// mergeAliases is have followed by the aliases of add it lacks, compared as routing
// compares names.
func mergeAliases(have, add []string) []string {
	out := slices.Clone(have)
	for _, a := range add {
		if !slices.ContainsFunc(out, func(h string) bool { return NormalizeName(h) == NormalizeName(a) }) {
			out = append(out, a)
		}
	}
	return out
}
