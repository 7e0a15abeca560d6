package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/jpeg"
	"regexp"
	"strings"
	"testing"

	"github.com/qingfeng-zj/qingfeng/accounts"
)

// errorFields is the error body with its field codes.
func errorFields(t *testing.T, r response) (string, map[string]string) {
	t.Helper()
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Fields  map[string]struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"fields"`
		} `json:"error"`
	}
	r.json(t, &e)
	if e.Error.Message == "" {
		t.Errorf("error without a message: %s", r.Body)
	}
	out := map[string]string{}
	for k, f := range e.Error.Fields {
		if f.Message == "" {
			t.Errorf("field %s without a message: %s", k, r.Body)
		}
		out[k] = f.Code
	}
	return e.Error.Code, out
}

// reportJSON is anonymousReport as text with extra members spliced in before the end,
// so that duplicates and case variants can be written as an attacker would.
func reportJSON(t *testing.T, extra string) string {
	t.Helper()
	b := jsonBytes(t, anonymousReport())
	s := strings.TrimSuffix(strings.TrimSpace(string(b)), "}")
	if extra != "" {
		s += "," + extra
	}
	return s + "}"
}

// TestReportStrictDecoding: a body that encoding/json would have taken with a twist
// (a case variant or a later duplicate overriding the category and so the routing,
// bytes replaced by U+FFFD, NUL stored) is refused naming the field, and nothing is
// stored.
func TestReportStrictDecoding(t *testing.T) {
	tests := []struct {
		name, body, field, code string
	}{
		{"upper-case key overrides category", reportJSON(t, `"CATEGORY":"official_discipline"`), "CATEGORY", "unknown_field"},
		{"title-case key", reportJSON(t, `"Category":"official_discipline"`), "Category", "unknown_field"},
		{"Kelvin sign in a key", reportJSON(t, "\"\u212anown\":1"), "\u212anown", "unknown_field"},
		{"full-width key", reportJSON(t, `"ｃａｔｅｇｏｒｙ":"other"`), "ｃａｔｅｇｏｒｙ", "unknown_field"},
		{"zero-width space in a key", reportJSON(t, "\"category\u200b\":\"other\""), "category\u200b", "unknown_field"},
		{"nested case variant", reportJSON(t, `"identity":{"Name":"张三"}`), "identity.Name", "unknown_field"},
		{"duplicate category", reportJSON(t, `"category":"official_discipline"`), "category", "duplicate_field"},
		{"duplicate via an escape", reportJSON(t, `"c\u0061tegory":"official_discipline"`), "category", "duplicate_field"},
		{"nested duplicate", strings.Replace(reportJSON(t, ""), `"division":"330782"`, `"division":"330782","division":"330326"`, 1), "location.division", "duplicate_field"},
		{"invalid UTF-8", strings.Replace(reportJSON(t, ""), "收取费用", "收取\xff费用", 1), "(body)", "invalid_utf8"},
		{"lone surrogate", strings.Replace(reportJSON(t, ""), "收取费用", `收取\ud800费用`, 1), "description", "invalid_utf8"},
		{"escaped NUL", strings.Replace(reportJSON(t, ""), "收取费用", `收取\u0000费用`, 1), "description", "nul_character"},
		{"NUL in a nested value", strings.Replace(reportJSON(t, ""), "义乌市稠城街道", `义乌市\u0000稠城街道`, 1), "location.address", "nul_character"},
		{"null description", strings.Replace(reportJSON(t, ""), `"anonymous":true`, `"anonymous":null`, 1), "anonymous", "null_not_allowed"},
		{"unknown field", reportJSON(t, `"ip":"1.2.3.4"`), "ip", "unknown_field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, objects := caseCount(t), objectCount(t)
			r := do(t, req{method: "POST", path: "/v1/reports", body: strings.NewReader(tt.body), contentType: "application/json"})
			wantStatus(t, r, 400)
			code, fields := errorFields(t, r)
			if code != "invalid_input" || fields[tt.field] != tt.code {
				t.Errorf("got %s %v, want %s: %s", code, fields, tt.field, tt.code)
			}
			if after := caseCount(t); after != before {
				t.Errorf("cases: %d before, %d after", before, after)
			}
			if objectCount(t) != objects {
				t.Errorf("a refused report stored an object")
			}
		})
	}
	// The report without the twist is accepted: the refusals above are the twists'.
	wantStatus(t, postJSON(t, "/v1/reports", "", reportJSON(t, "")), 201)
}

func TestMultipartStrictFields(t *testing.T) {
	fields := [][2]string{{"category", "other"}, {"subject.kind", "person"}, {"subject.person.name", "王五"},
		{"description", "测试"}, {"location.division", "330326"}, {"anonymous", "true"}}
	with := func(extra ...[2]string) [][2]string { return append(fields[:len(fields):len(fields)], extra...) }
	report := string(jsonBytes(t, anonymousReport()))
	tests := []struct {
		name   string
		fields [][2]string
		field  string
		code   string
	}{
		{"duplicate text field", with([2]string{"category", "official_discipline"}), "category", "duplicate_field"},
		{"duplicate nested field", with([2]string{"location.division", "330782"}), "location.division", "duplicate_field"},
		{"duplicate report field", [][2]string{{"report", report}, {"report", report}}, "report", "duplicate_field"},
		{"case variant of a field", with([2]string{"Category", "official_discipline"}), "Category", "unknown_field"},
		{"NUL in a field", with([2]string{"subject.person.position", "科长\x00"}), "subject.person.position", "nul_character"},
		{"invalid UTF-8 in a field", with([2]string{"subject.person.position", "科\xff长"}), "subject.person.position", "invalid_utf8"},
		{"report field decoded strictly", [][2]string{{"report", reportJSON(t, `"CATEGORY":"other"`)}}, "CATEGORY", "unknown_field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, objects := caseCount(t), objectCount(t)
			body, ct := multipartBody(t, tt.fields, []filePart{{"file", "a.jpg", testJPEG(t)}})
			r := do(t, req{method: "POST", path: "/v1/reports", body: body, contentType: ct})
			wantStatus(t, r, 400)
			code, got := errorFields(t, r)
			if code != "invalid_input" || got[tt.field] != tt.code {
				t.Errorf("got %s %v, want %s: %s", code, got, tt.field, tt.code)
			}
			if caseCount(t) != before || objectCount(t) != objects {
				t.Errorf("a refused multipart report stored something")
			}
		})
	}
	body, ct := multipartBody(t, fields, []filePart{{"file", "a.jpg", testJPEG(t)}})
	wantStatus(t, do(t, req{method: "POST", path: "/v1/reports", body: body, contentType: ct}), 201)
}

// TestReportSourceByAuthentication: the source is decided by who is authenticated.
func TestReportSourceByAuthentication(t *testing.T) {
	liaison, _ := staffLogin(t, accounts.RoleLiaison, "", "330782")
	staff, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	tests := []struct {
		name, token, source string
		multipart           bool
		status              int
		want                string // stored source, or the field code refused
	}{
		{"anonymous, no source", "", "", false, 201, "app"},
		{"anonymous, app", "", "app", false, 201, "app"},
		{"anonymous, wechat", "", "wechat", false, 201, "wechat"},
		{"anonymous, web", "", "web", false, 201, "web"},
		{"anonymous claims liaison", "", "liaison", false, 400, "liaison_requires_login"},
		{"anonymous claims liaison in a form", "", "liaison", true, 400, "liaison_requires_login"},
		{"anonymous claims LIAISON", "", "LIAISON", false, 400, "unknown_value"},
		{"anonymous claims liaison with a space", "", "liaison ", false, 400, "unknown_value"},
		{"anonymous claims system", "", "system", false, 400, "unknown_value"},
		{"liaison, no source", liaison, "", false, 201, "liaison"},
		{"liaison, liaison", liaison, "liaison", false, 201, "liaison"},
		{"liaison in a form", liaison, "", true, 201, "liaison"},
		{"liaison claims app", liaison, "app", false, 400, "source_mismatch"},
		{"liaison claims wechat in a form", liaison, "wechat", true, 400, "source_mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := anonymousReport()
			if tt.source != "" {
				rep["source"] = tt.source
			}
			before := caseCount(t)
			var r response
			if tt.multipart {
				body, ct := multipartBody(t, [][2]string{{"report", string(jsonBytes(t, rep))}}, nil)
				r = do(t, req{method: "POST", path: "/v1/reports", body: body, contentType: ct, token: tt.token})
			} else {
				r = do(t, req{method: "POST", path: "/v1/reports", body: bytes.NewReader(jsonBytes(t, rep)), contentType: "application/json", token: tt.token})
			}
			wantStatus(t, r, tt.status)
			if tt.status != 201 {
				if _, fields := errorFields(t, r); fields["source"] != tt.want {
					t.Errorf("fields %v, want source: %s", fields, tt.want)
				}
				if caseCount(t) != before {
					t.Errorf("a refused report was stored")
				}
				return
			}
			var f filed
			r.json(t, &f)
			cr := do(t, req{method: "GET", path: "/v1/cases/" + f.CaseNumber, token: staff})
			wantStatus(t, cr, 200)
			var cs struct {
				Source string `json:"source"`
			}
			if err := json.Unmarshal(cr.Body, &cs); err != nil || cs.Source != tt.want {
				t.Errorf("stored source %q, want %q (%v)", cs.Source, tt.want, err)
			}
		})
	}
}

// TestLiaisonFilesInOwnDivision: a liaison may file only where they can then read what
// they filed.
func TestLiaisonFilesInOwnDivision(t *testing.T) {
	yiwu, _ := staffLogin(t, accounts.RoleLiaison, "", "330782")
	jinhua, _ := staffLogin(t, accounts.RoleLiaison, "", "330700") // the city above Yiwu
	tests := []struct {
		name, token, division string
		multipart             bool
		status                int
	}{
		{"own division", yiwu, "330782", false, 201},
		{"own division in a form", yiwu, "330782", true, 201},
		{"city liaison, a county of the city", jinhua, "330782", false, 201},
		{"another county", yiwu, "330326", false, 403},
		{"another county in a form", yiwu, "330326", true, 403},
		{"another county with spaces", yiwu, " 330326 ", false, 403},
		{"the city above", yiwu, "330700", false, 403},
		{"the province", yiwu, "330000", false, 403},
		{"a prefix of the own code", yiwu, "3307", false, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := anonymousReport()
			rep["location"] = map[string]any{"division": tt.division, "address": "某地"}
			before, objects := caseCount(t), objectCount(t)
			var r response
			if tt.multipart {
				body, ct := multipartBody(t, [][2]string{{"report", string(jsonBytes(t, rep))}}, []filePart{{"file", "a.jpg", testJPEG(t)}})
				r = do(t, req{method: "POST", path: "/v1/reports", body: body, contentType: ct, token: tt.token})
			} else {
				r = do(t, req{method: "POST", path: "/v1/reports", body: bytes.NewReader(jsonBytes(t, rep)), contentType: "application/json", token: tt.token})
			}
			wantStatus(t, r, tt.status)
			if tt.status != 201 {
				if _, fields := errorFields(t, r); fields["location.division"] != "outside_liaison_division" {
					t.Errorf("fields %v", fields)
				}
				if caseCount(t) != before || objectCount(t) != objects {
					t.Errorf("a refused filing stored something")
				}
				return
			}
			var f filed
			r.json(t, &f)
			wantStatus(t, do(t, req{method: "GET", path: "/v1/cases/" + f.CaseNumber, token: tt.token}), 200)
		})
	}
}

// TestMetadataRemovedReportsWhatHappened: through the API, metadata_removed is true
// only when the stored bytes differ from the received ones.
func TestMetadataRemovedReportsWhatHappened(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 32, 24))
	var plain bytes.Buffer
	if err := jpeg.Encode(&plain, img, nil); err != nil {
		t.Fatal(err)
	}
	pdf := append([]byte("%PDF-1.7\n"), []byte("1 0 obj << /Author (张三) >> endobj\n%%EOF\n")...)
	tests := []struct {
		name string
		data []byte
		want bool
	}{
		{"JPEG with EXIF", testJPEG(t), true},
		{"JPEG without metadata", plain.Bytes(), false},
		{"PNG without metadata", testPNG(t), false},
		{"PDF (cannot be cleaned)", pdf, false},
	}
	fields := [][2]string{{"category", "other"}, {"subject.kind", "person"}, {"subject.person.name", "王五"},
		{"description", "测试"}, {"location.division", "330326"}, {"anonymous", "true"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, ct := multipartBody(t, fields, []filePart{{"file", "f", tt.data}})
			r := do(t, req{method: "POST", path: "/v1/reports", body: body, contentType: ct})
			wantStatus(t, r, 201)
			var f filed
			r.json(t, &f)
			if len(f.Evidence) != 1 {
				t.Fatalf("evidence %+v", f.Evidence)
			}
			ev := f.Evidence[0]
			if ev.MetadataRemoved != tt.want || (ev.SHA256Received != ev.SHA256Stored) != tt.want || ev.SHA256Received != sha(tt.data) {
				t.Errorf("metadata_removed %v, hashes %s → %s", ev.MetadataRemoved, ev.SHA256Received, ev.SHA256Stored)
			}
		})
	}
}

// TestCaseTotalLimitWording: a file over what the case has left is refused naming the
// case's total (QF_MAX_CASE_BYTES, 5 MiB here) and the room left, not as if the room
// were the per-file limit (2 MiB here), whose own message stays as it was.
func TestCaseTotalLimitWording(t *testing.T) {
	c := fileReport(t, anonymousReport())
	pdf := func(n int) []byte { return append([]byte("%PDF-1.7\n"), make([]byte, n-9)...) }
	upload := func(data []byte) response {
		body, ct := multipartBody(t, nil, []filePart{{"file", "a.pdf", data}})
		return do(t, req{method: "POST", path: "/v1/reports/" + c.CaseNumber + "/evidence", body: body, contentType: ct, token: c.FollowUpToken})
	}
	message := func(r response) string {
		t.Helper()
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		r.json(t, &e)
		if e.Error.Code != "too_large" {
			t.Errorf("code %q: %s", e.Error.Code, r.Body)
		}
		return e.Error.Message
	}
	r := upload(pdf(3 << 20))
	wantStatus(t, r, 413)
	if m := message(r); !strings.Contains(m, "文件超过大小上限（2 MB）") || strings.Contains(m, "每案") {
		t.Errorf("per-file limit message: %s", m)
	}
	for i := 0; i < 2; i++ {
		// Two different files: the same one again would be stored once.
		wantStatus(t, upload(append(pdf(2<<20-101), byte(i))), 201)
	}
	// 1 MiB + 200 bytes left: a 1.5 MiB file is within the per-file limit but not the case's.
	r = upload(pdf(3 << 19))
	wantStatus(t, r, 413)
	if m := message(r); !strings.Contains(m, "每案合计 5 MB") || !strings.Contains(m, "还可上传 1.0 MB") || strings.Contains(m, "文件超过大小上限") {
		t.Errorf("case total message: %s", m)
	}
	wantStatus(t, upload(pdf(1<<20+200)), 201)
	r = upload(pdf(1000))
	wantStatus(t, r, 413)
	if m := message(r); !strings.Contains(m, "已达上限（每案合计 5 MB）") {
		t.Errorf("full case message: %s", m)
	}
}

// wireTimePattern finds RFC 3339 date-times; the one wire rule is the +08:00 offset.
var wireTimePattern = regexp.MustCompile(`\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})`)

// checkWireTimes fails for any date-time in a response body that is not at +08:00
// (Asia/Shanghai): every response of every end-to-end test goes through it.
func checkWireTimes(t *testing.T, what string, body []byte) {
	t.Helper()
	for _, m := range wireTimePattern.FindAll(body, -1) {
		if !bytes.HasSuffix(m, []byte("+08:00")) {
			t.Errorf("%s: time %s on the wire is not at +08:00", what, m)
		}
	}
}
