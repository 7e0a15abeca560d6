package intake

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/qingfeng-zj/qingfeng"
)

// MaxDescriptionRunes is the longest description a report may carry.
const MaxDescriptionRunes = 5000

// Draft is a report as a client submitted it, before validation. Handlers decode JSON
// and multipart forms into it; nothing here is trusted.
type Draft struct {
	Category    string
	Subject     Subject
	Description string
	Location    Location
	OccurredOn  string
	Anonymous   bool
	Identity    *Identity // plaintext real-name identity, sealed by the service
	Sealed      []byte    // an identity already sealed on the device (age file)
	Source      string
}

// Reference checks a draft needs from reference data (divisions, credit codes). The
// routing package provides them; intake does not import it to keep the graph one-way.
type Reference interface {
	// ValidDivision reports whether code is a known Zhejiang division and returns the
	// county-level code it belongs to (for case numbers and sealing).
	ValidDivision(code string) (countyLevel string, ok bool)
	// OutsideZhejiang reports whether code is a well-formed division code of another
	// province, and the Zhejiang division that holds such a report (the province, whose
	// intake office triages it by hand). A report is never refused for where it happened.
	OutsideZhejiang(code string) (holder string, ok bool)
	// CheckCreditCode returns ok=false for a malformed code and checkValid=false for a
	// well-formed code whose check characters do not match.
	CheckCreditCode(code string) (normalized string, ok, checkValid bool)
}

func fieldErr(code, zh, en string) qingfeng.FieldError {
	return qingfeng.FieldError{Code: code, Message: zh, English: en}
}

// trimText is qingfeng.TrimText.
var trimText = qingfeng.TrimText

// validate checks d and returns the normalized draft, warnings, and a field-named error.
func (d Draft) validate(ref Reference, now time.Time) (Draft, []Warning, error) {
	bad := map[string]qingfeng.FieldError{}
	var warns []Warning
	required := func(f string) { bad[f] = fieldErr("required", "必填", "required") }

	d.Category = strings.TrimSpace(d.Category)
	if d.Category == "" {
		required("category")
	} else if !Category(d.Category).Valid() {
		bad["category"] = fieldErr("unknown_category", "举报类别不存在", "unknown category")
	}

	d.Description = trimText(d.Description)
	switch n := utf8.RuneCountInString(d.Description); {
	case !utf8.ValidString(d.Description):
		bad["description"] = fieldErr("invalid_text", "包含无效字符", "not valid UTF-8")
	case n == 0:
		required("description")
	case n > MaxDescriptionRunes:
		bad["description"] = fieldErr("too_long", "举报内容不能超过5000字", "at most 5,000 characters")
	}

	switch d.Subject.Kind {
	case SubjectOrganization:
		o := d.Subject.Organization
		if o == nil || (strings.TrimSpace(o.CreditCode) == "" && trimText(o.Name) == "") {
			bad["subject.organization"] = fieldErr("required", "请填写被举报组织的统一社会信用代码或名称", "give the organization's credit code or name")
			break
		}
		o.Name = trimText(o.Name)
		if limitRunes(o.Name, 200) {
			bad["subject.organization.name"] = fieldErr("too_long", "不能超过200字", "at most 200 characters")
		}
		if cc := strings.TrimSpace(o.CreditCode); cc != "" {
			norm, ok, checkValid := ref.CheckCreditCode(cc)
			switch {
			case !ok:
				bad["subject.organization.credit_code"] = fieldErr("invalid_credit_code", "统一社会信用代码格式不正确（应为18位）", "not a well-formed unified social credit code")
			case !checkValid:
				warns = append(warns, Warning{Field: "subject.organization.credit_code", Code: "credit_code_check_failed",
					Message: "统一社会信用代码校验位不符，已按原样登记，请核实"})
			}
			o.CreditCode = norm
		}
		d.Subject.Person = nil
	case SubjectPerson:
		p := d.Subject.Person
		if p == nil || trimText(p.Name) == "" {
			bad["subject.person.name"] = fieldErr("required", "请填写被举报人姓名", "give the person's name")
			break
		}
		p.Name, p.Position, p.Employer = trimText(p.Name), trimText(p.Position), trimText(p.Employer)
		if limitRunes(p.Name, 100) || limitRunes(p.Position, 200) || limitRunes(p.Employer, 200) {
			bad["subject.person"] = fieldErr("too_long", "姓名、职务或单位过长", "name, position or employer too long")
		}
		d.Subject.Organization = nil
	case "":
		required("subject.kind")
	default:
		bad["subject.kind"] = fieldErr("unknown_kind", "被举报对象类型只能是 organization 或 person", "must be organization or person")
	}

	d.Location.Division, d.Location.ReportedDivision = strings.TrimSpace(d.Location.Division), ""
	if d.Location.Division == "" {
		required("location.division")
	} else if _, ok := ref.ValidDivision(d.Location.Division); !ok {
		if holder, outside := ref.OutsideZhejiang(d.Location.Division); outside {
			d.Location.ReportedDivision, d.Location.Division = d.Location.Division, holder
			warns = append(warns, Warning{Field: "location.division", Code: "outside_zhejiang",
				Message: "举报地点不在浙江省：举报照常登记，按被举报对象确定承办单位，无法确定时由省级信访室人工分办"})
		} else {
			bad["location.division"] = fieldErr("unknown_division", "不是有效的行政区划代码（浙江省内须为现行代码）", "not a valid division code (a Zhejiang code must be a current one)")
		}
	}
	d.Location.Address = strings.TrimSpace(d.Location.Address)
	if limitRunes(d.Location.Address, 300) {
		bad["location.address"] = fieldErr("too_long", "地址不能超过300字", "at most 300 characters")
	}
	if (d.Location.Lat == nil) != (d.Location.Lng == nil) {
		bad["location.lat"] = fieldErr("incomplete", "经纬度须同时填写", "give both lat and lng")
	} else if d.Location.Lat != nil && (*d.Location.Lat < -90 || *d.Location.Lat > 90 || *d.Location.Lng < -180 || *d.Location.Lng > 180) {
		bad["location.lat"] = fieldErr("out_of_range", "经纬度超出范围", "coordinates out of range")
	}

	d.OccurredOn = strings.TrimSpace(d.OccurredOn)
	if d.OccurredOn != "" {
		t, err := time.Parse("2006-01-02", d.OccurredOn)
		if err != nil {
			t, err = time.Parse("2006-01", d.OccurredOn)
		}
		if err != nil {
			bad["occurred_on"] = fieldErr("invalid_date", "日期格式应为 YYYY-MM-DD 或 YYYY-MM", "use YYYY-MM-DD or YYYY-MM")
		} else if t.After(now.Add(24 * time.Hour)) {
			bad["occurred_on"] = fieldErr("future_date", "发生时间不能晚于今天", "cannot be in the future")
		}
	}

	switch {
	case d.Anonymous && (d.Identity != nil || len(d.Sealed) > 0):
		bad["anonymous"] = fieldErr("conflict", "匿名举报不能同时填写身份信息", "an anonymous report carries no identity")
	case !d.Anonymous && d.Identity != nil && len(d.Sealed) > 0:
		bad["identity"] = fieldErr("conflict", "身份信息与已加密身份只能二选一", "give either identity or sealed_identity")
	case !d.Anonymous && d.Identity == nil && len(d.Sealed) == 0:
		bad["identity"] = fieldErr("required", "实名举报须填写身份信息，或选择匿名", "give an identity or choose anonymous")
	case d.Identity != nil:
		id := d.Identity
		id.Name = strings.TrimSpace(id.Name)
		if id.Name == "" {
			bad["identity.name"] = fieldErr("required", "必填", "required")
		} else if limitRunes(id.Name, 50) {
			bad["identity.name"] = fieldErr("too_long", "姓名过长", "too long")
		}
		if m, ok := NormalizeMobile(id.Mobile); ok {
			id.Mobile = m
		} else {
			bad["identity.mobile"] = fieldErr("invalid_mobile", "手机号码格式不正确", "not a mainland China mobile number")
		}
		if id.ResidentID = strings.ToUpper(strings.TrimSpace(id.ResidentID)); id.ResidentID != "" && !ValidResidentID(id.ResidentID) {
			bad["identity.resident_id"] = fieldErr("invalid_resident_id", "身份证号码校验不通过", "resident ID number fails its check")
		}
		switch id.PreferredContact = strings.TrimSpace(id.PreferredContact); id.PreferredContact {
		case "", "phone", "sms", "in_person", "mail":
		default:
			bad["identity.preferred_contact"] = fieldErr("unknown_value", "联系方式只能是 phone、sms、in_person 或 mail", "one of phone, sms, in_person, mail")
		}
	}
	if len(bad) > 0 {
		return d, nil, qingfeng.Invalid(bad)
	}
	return d, warns, nil
}

func limitRunes(s string, n int) bool { return utf8.RuneCountInString(s) > n }
