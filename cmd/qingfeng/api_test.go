package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"strings"
	"testing"

	"github.com/qingfeng-zj/qingfeng/accounts"
)

// testJPEG is a real JPEG with an EXIF segment carrying GPS-like text and a device serial
// and a comment, as phones produce.
func testJPEG(t testing.TB) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for y := 0; y < 48; y++ {
		for x := 0; x < 64; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 5), 90, 255})
		}
	}
	var plain bytes.Buffer
	if err := jpeg.Encode(&plain, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	b := plain.Bytes()
	segment := func(marker byte, payload string) []byte {
		n := len(payload) + 2
		return append([]byte{0xFF, marker, byte(n >> 8), byte(n)}, payload...)
	}
	var out []byte
	out = append(out, b[:2]...) // SOI
	out = append(out, segment(0xE1, "Exif\x00\x00GPS 30.2741N 120.1551E SN-QF-DEVICE-7788")...)
	out = append(out, segment(0xFE, "shot by 张三 at home")...)
	out = append(out, b[2:]...)
	return out
}

func testPNG(t testing.TB) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 8, 8))
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// hugePNG claims 100,000 × 100,000 pixels in a header with a correct CRC.
func hugePNG() []byte {
	ihdr := []byte{0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0, 8, 0, 0, 0, 0}
	return append(append([]byte("\x89PNG\r\n\x1a\n"), pngChunk("IHDR", ihdr)...), pngChunk("IEND", nil)...)
}

func pngChunk(typ string, data []byte) []byte {
	n := len(data)
	out := []byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	out = append(out, typ...)
	out = append(out, data...)
	crc := crc32.ChecksumIEEE(append([]byte(typ), data...))
	return append(out, byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc))
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// TestWalkThrough is the README's walk-through: file a report with a photo, follow up
// with the receipt, log in as staff, list and read cases, download the evidence.
func TestWalkThrough(t *testing.T) {
	photo := testJPEG(t)
	body, ct := multipartBody(t, [][2]string{
		{"category", "arbitrary_fees"}, {"subject.kind", "organization"},
		{"subject.organization.credit_code", "51330782MJ0000018J"}, {"subject.organization.name", "义乌市某商会"},
		{"description", "商会强制会员企业缴纳“赞助费”。"}, {"location.division", "330782"}, {"anonymous", "true"},
	}, []filePart{{"file", "IMG_0001.jpg", photo}})
	r := do(t, req{method: "POST", path: "/v1/reports", body: body, contentType: ct})
	wantStatus(t, r, 201)
	var f filed
	r.json(t, &f)
	if !strings.HasPrefix(f.CaseNumber, "QF-330782-") || len(strings.ReplaceAll(f.ReceiptCode, " ", "")) != 16 {
		t.Fatalf("case %q receipt %q", f.CaseNumber, f.ReceiptCode)
	}
	if f.Unit.Name != "义乌市民政局" {
		t.Errorf("routed to %q, want 义乌市民政局 (registering authority from the credit code)", f.Unit.Name)
	}
	if len(f.Evidence) != 1 || !f.Evidence[0].MetadataRemoved || f.Evidence[0].ContentType != "image/jpeg" || f.Evidence[0].SHA256Received != sha(photo) {
		t.Fatalf("evidence %+v", f.Evidence)
	}

	// Follow up with the receipt, as typed by a person (spaces and all).
	r = postJSON(t, "/v1/followup/session", "", map[string]string{"receipt_code": f.ReceiptCode})
	wantStatus(t, r, 200)
	var sess struct {
		Token string `json:"token"`
	}
	r.json(t, &sess)
	r = do(t, req{method: "GET", path: "/v1/followup/case", token: sess.Token})
	wantStatus(t, r, 200)
	if !strings.Contains(string(r.Body), f.CaseNumber) {
		t.Fatalf("follow-up case: %s", r.Body)
	}
	wantStatus(t, postJSON(t, "/v1/followup/messages", sess.Token, map[string]string{"body": "我还有一份收费通知的照片。"}), 201)

	// The reporter adds evidence with the follow-up token.
	body, ct = multipartBody(t, nil, []filePart{{"file", "notice.png", testPNG(t)}})
	wantStatus(t, do(t, req{method: "POST", path: "/v1/reports/" + f.CaseNumber + "/evidence", body: body, contentType: ct, token: sess.Token}), 201)

	// Staff of the owning unit list, read, reply and download.
	staff, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	r = do(t, req{method: "GET", path: "/v1/cases", token: staff})
	wantStatus(t, r, 200)
	if !strings.Contains(string(r.Body), f.CaseNumber) {
		t.Fatalf("list lacks %s: %s", f.CaseNumber, r.Body)
	}
	r = do(t, req{method: "GET", path: "/v1/cases/" + f.CaseNumber, token: staff})
	wantStatus(t, r, 200)
	var cv struct {
		Description string `json:"description"`
		Evidence    []struct {
			ID string `json:"id"`
		} `json:"evidence"`
		Messages []struct {
			From string `json:"from"`
		} `json:"messages"`
	}
	r.json(t, &cv)
	if len(cv.Evidence) != 2 || len(cv.Messages) != 1 || cv.Messages[0].From != "reporter" {
		t.Fatalf("case view: %s", r.Body)
	}
	wantStatus(t, postJSON(t, "/v1/cases/"+f.CaseNumber+"/messages", staff, map[string]string{"body": "已收到，我们将核实。"}), 201)
	r = do(t, req{method: "GET", path: "/v1/cases/" + f.CaseNumber + "/evidence/" + cv.Evidence[0].ID, token: staff})
	wantStatus(t, r, 200)
	if sha(r.Body) != f.Evidence[0].SHA256Stored {
		t.Errorf("downloaded bytes hash %s, recorded stored hash %s", sha(r.Body), f.Evidence[0].SHA256Stored)
	}
	for _, secret := range []string{"SN-QF-DEVICE-7788", "120.1551E", "张三"} {
		if bytes.Contains(r.Body, []byte(secret)) {
			t.Errorf("downloaded evidence still carries %q", secret)
		}
	}
	if _, err := jpeg.Decode(bytes.NewReader(r.Body)); err != nil {
		t.Errorf("cleaned JPEG does not decode: %v", err)
	}

	// The reporter sees the reply.
	r = do(t, req{method: "GET", path: "/v1/followup/case", token: sess.Token})
	if !strings.Contains(string(r.Body), "已收到") {
		t.Errorf("reporter does not see the reply: %s", r.Body)
	}
	testFollowUpLogout(t, f.ReceiptCode, f.CaseNumber, sess.Token)
}

func TestFileReportBadInput(t *testing.T) {
	valid := anonymousReport()
	with := func(mut func(m map[string]any)) map[string]any {
		m := map[string]any{}
		for k, v := range valid {
			m[k] = v
		}
		mut(m)
		return m
	}
	tests := []struct {
		name        string
		body        any
		contentType string
		status      int
		code        string
		field       string
	}{
		{"empty body", "", "application/json", 400, "invalid_input", ""},
		{"malformed JSON", `{"category":`, "application/json", 400, "invalid_input", ""},
		{"trailing data", `{"description":"x"} {}`, "application/json", 400, "invalid_input", ""},
		{"operator injection in a string", with(func(m map[string]any) { m["category"] = map[string]any{"$gt": ""} }), "application/json", 400, "invalid_input", "category"},
		{"operator injection in division", with(func(m map[string]any) { m["location"] = map[string]any{"division": map[string]any{"$ne": nil}} }), "application/json", 400, "invalid_input", "location.division"},
		{"wrong type", with(func(m map[string]any) { m["anonymous"] = "yes" }), "application/json", 400, "invalid_input", "anonymous"},
		{"unknown field", with(func(m map[string]any) { m["reporter_ip"] = "1.2.3.4" }), "application/json", 400, "invalid_input", "reporter_ip"},
		{"unknown category", with(func(m map[string]any) { m["category"] = "littering" }), "application/json", 400, "invalid_input", "category"},
		{"missing description", with(func(m map[string]any) { delete(m, "description") }), "application/json", 400, "invalid_input", "description"},
		{"description over 5000 characters", with(func(m map[string]any) { m["description"] = strings.Repeat("举", 5001) }), "application/json", 400, "invalid_input", "description"},
		{"division not a division code", with(func(m map[string]any) { m["location"] = map[string]any{"division": "999999"} }), "application/json", 400, "invalid_input", "location.division"},
		{"division of 5 digits", with(func(m map[string]any) { m["location"] = map[string]any{"division": "31010"} }), "application/json", 400, "invalid_input", "location.division"},
		{"Zhejiang division that does not exist", with(func(m map[string]any) { m["location"] = map[string]any{"division": "330799"} }), "application/json", 400, "invalid_input", "location.division"},
		{"malformed credit code", with(func(m map[string]any) {
			m["subject"] = map[string]any{"kind": "organization", "organization": map[string]any{"credit_code": "51330782MJ00000I8J"}}
		}), "application/json", 400, "invalid_input", "subject.organization.credit_code"},
		{"real name without identity", with(func(m map[string]any) { m["anonymous"] = false }), "application/json", 400, "invalid_input", "identity"},
		{"anonymous with identity", with(func(m map[string]any) { m["identity"] = map[string]any{"name": "李四", "mobile": "13800138000"} }), "application/json", 400, "invalid_input", "anonymous"},
		{"bad mobile", with(func(m map[string]any) {
			m["anonymous"] = false
			m["identity"] = map[string]any{"name": "李四", "mobile": "12345"}
		}), "application/json", 400, "invalid_input", "identity.mobile"},
		{"bad resident ID check digit", with(func(m map[string]any) {
			m["anonymous"] = false
			m["identity"] = map[string]any{"name": "李四", "mobile": "13800138000", "resident_id": "110105194912310021"}
		}), "application/json", 400, "invalid_input", "identity.resident_id"},
		{"sealed identity not an age file", with(func(m map[string]any) {
			m["anonymous"] = false
			m["sealed_identity"] = "aGVsbG8gd29ybGQ="
		}), "application/json", 400, "invalid_input", ""},
		{"oversized body", with(func(m map[string]any) { m["description"] = strings.Repeat("x", 70<<10) }), "application/json", 413, "too_large", ""},
		{"wrong content type", `category=other`, "application/x-www-form-urlencoded", 415, "unsupported", ""},
		{"text/plain JSON", `{}`, "text/plain", 415, "unsupported", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := caseCount(t)
			r := do(t, req{method: "POST", path: "/v1/reports", body: bytes.NewReader(jsonBytes(t, tt.body)), contentType: tt.contentType})
			wantStatus(t, r, tt.status)
			if code := r.errorCode(t); code != tt.code {
				t.Errorf("code %q, want %q", code, tt.code)
			}
			if tt.field != "" && !strings.Contains(string(r.Body), `"`+tt.field+`"`) {
				t.Errorf("error does not name field %q: %s", tt.field, r.Body)
			}
			if after := caseCount(t); after != before {
				t.Errorf("a refused report changed the store: %d cases before, %d after", before, after)
			}
		})
	}
}

func jsonBytes(t *testing.T, v any) []byte {
	if s, ok := v.(string); ok {
		return []byte(s)
	}
	var buf bytes.Buffer
	enc := jsonEncoder(&buf)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(buf.Bytes())
}

func TestEnglishErrors(t *testing.T) {
	r := do(t, req{method: "POST", path: "/v1/reports", body: strings.NewReader(`{}`), contentType: "application/json", header: map[string]string{"Accept-Language": "en-US,en;q=0.9"}})
	wantStatus(t, r, 400)
	if !strings.Contains(string(r.Body), "invalid fields") {
		t.Errorf("want an English message: %s", r.Body)
	}
	r = do(t, req{method: "POST", path: "/v1/reports", body: strings.NewReader(`{}`), contentType: "application/json"})
	if !strings.Contains(string(r.Body), "提交的内容有误") {
		t.Errorf("want a Chinese message by default: %s", r.Body)
	}
}

func TestCreditCodeCheckFailureIsAWarning(t *testing.T) {
	body := anonymousReport()
	body["subject"] = map[string]any{"kind": "organization", "organization": map[string]any{"credit_code": "51330782MJ0000018K"}}
	f := fileReport(t, body)
	if len(f.Warnings) != 1 || f.Warnings[0].Code != "credit_code_check_failed" {
		t.Fatalf("warnings %+v", f.Warnings)
	}
}

func TestMultipartBadInput(t *testing.T) {
	fields := [][2]string{{"category", "other"}, {"subject.kind", "person"}, {"subject.person.name", "王五"},
		{"description", "测试"}, {"location.division", "330326"}, {"anonymous", "true"}}
	truncated := testJPEG(t)
	truncated = truncated[:len(truncated)/2]
	tests := []struct {
		name   string
		fields [][2]string
		files  []filePart
		status int
		code   string
	}{
		{"truncated JPEG", fields, []filePart{{"file", "a.jpg", truncated}}, 400, "invalid_input"},
		{"PNG claiming 100000x100000", fields, []filePart{{"file", "big.png", hugePNG()}}, 400, "invalid_input"},
		{"text file posing as JPEG", fields, []filePart{{"file", "x.jpg", []byte("just some text, not an image at all")}}, 415, "unsupported"},
		{"file over the per-file limit", fields, []filePart{{"file", "big.pdf", append([]byte("%PDF-1.7\n"), make([]byte, 3<<20)...)}}, 413, "too_large"},
		{"second file bad, first good", fields, []filePart{{"file", "ok.jpg", testJPEG(t)}, {"file", "bad.jpg", truncated}}, 400, "invalid_input"},
		{"unknown form field", append(fields, [2]string{"ip", "1.2.3.4"}), nil, 400, "invalid_input"},
		{"wrong type in a form field", append(fields[:5:5], [2]string{"anonymous", "maybe"}), nil, 400, "invalid_input"},
		{"invalid fields before a file", fields[1:], []filePart{{"file", "ok.jpg", testJPEG(t)}}, 400, "invalid_input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, objects := caseCount(t), objectCount(t)
			body, ct := multipartBody(t, tt.fields, tt.files)
			r := do(t, req{method: "POST", path: "/v1/reports", body: body, contentType: ct})
			wantStatus(t, r, tt.status)
			if code := r.errorCode(t); code != tt.code {
				t.Errorf("code %q, want %q", code, tt.code)
			}
			if after := caseCount(t); after != before {
				t.Errorf("cases: %d before, %d after", before, after)
			}
			if after := objectCount(t); after != objects {
				t.Errorf("objects: %d before, %d after: a refused upload left an orphan", objects, after)
			}
		})
	}
	t.Run("multipart without boundary", func(t *testing.T) {
		r := do(t, req{method: "POST", path: "/v1/reports", body: strings.NewReader("x"), contentType: "multipart/form-data"})
		wantStatus(t, r, 415)
	})
	t.Run("path traversal in a file name is ignored", func(t *testing.T) {
		body, ct := multipartBody(t, fields, []filePart{{"file", "../../../etc/passwd", testJPEG(t)}})
		r := do(t, req{method: "POST", path: "/v1/reports", body: body, contentType: ct})
		wantStatus(t, r, 201)
		for _, f := range dataFiles(t) {
			if strings.Contains(f, "passwd") {
				t.Errorf("a client file name reached the file system: %s", f)
			}
		}
		if strings.Contains(string(r.Body), "passwd") {
			t.Errorf("the client file name is echoed: %s", r.Body)
		}
	})
	t.Run("field after a file", func(t *testing.T) {
		var buf bytes.Buffer
		body, ct := multipartBody(t, fields, []filePart{{"file", "a.jpg", testJPEG(t)}})
		io.Copy(&buf, body)
		// Re-open the closing boundary to add a field after the file.
		boundary := ct[strings.Index(ct, "boundary=")+9:]
		s := strings.TrimSuffix(buf.String(), "--"+boundary+"--\r\n")
		s += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"source\"\r\n\r\napp\r\n--" + boundary + "--\r\n"
		before := objectCount(t)
		r := do(t, req{method: "POST", path: "/v1/reports", body: strings.NewReader(s), contentType: ct})
		wantStatus(t, r, 400)
		if objectCount(t) != before {
			t.Errorf("orphaned object after a refused request")
		}
	})
}

func TestEvidenceUploadScope(t *testing.T) {
	f := fileReport(t, anonymousReport())
	other := fileReport(t, anonymousReport())
	upload := func(token, number string, data []byte) response {
		body, ct := multipartBody(t, nil, []filePart{{"file", "x.jpg", data}})
		return do(t, req{method: "POST", path: "/v1/reports/" + number + "/evidence", body: body, contentType: ct, token: token})
	}
	staffYiwu, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	staffElsewhere, _ := staffLogin(t, accounts.RoleStaff, "330326-mz", "")
	liaisonYiwu, _ := staffLogin(t, accounts.RoleLiaison, "", "330782")
	liaisonElsewhere, _ := staffLogin(t, accounts.RoleLiaison, "", "330326")
	admin, _ := staffLogin(t, accounts.RoleAdmin, "", "")
	img := testJPEG(t)
	tests := []struct {
		name   string
		token  string
		number string
		status int
	}{
		{"reporter token for own case", f.FollowUpToken, f.CaseNumber, 201},
		{"reporter token for another case", f.FollowUpToken, other.CaseNumber, 404},
		{"staff of the owning unit", staffYiwu, f.CaseNumber, 201},
		{"staff of another unit", staffElsewhere, f.CaseNumber, 404},
		{"liaison of the division", liaisonYiwu, f.CaseNumber, 201},
		{"liaison of another division", liaisonElsewhere, f.CaseNumber, 404},
		{"admin", admin, f.CaseNumber, 403},
		{"no token", "", f.CaseNumber, 401},
		{"garbage token", "not.a.jwt", f.CaseNumber, 401},
		{"malformed case number", staffYiwu, "QF-330782-2026-ABCDEF", 404},
		{"unknown case number", staffYiwu, "QF-330782-2026-999999", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantStatus(t, upload(tt.token, tt.number, img), tt.status)
		})
	}
	t.Run("no file", func(t *testing.T) {
		body, ct := multipartBody(t, nil, nil)
		r := do(t, req{method: "POST", path: "/v1/reports/" + f.CaseNumber + "/evidence", body: body, contentType: ct, token: f.FollowUpToken})
		wantStatus(t, r, 400)
	})
	t.Run("JSON instead of multipart", func(t *testing.T) {
		r := do(t, req{method: "POST", path: "/v1/reports/" + f.CaseNumber + "/evidence", body: strings.NewReader("{}"), contentType: "application/json", token: f.FollowUpToken})
		wantStatus(t, r, 415)
	})
	t.Run("per-case limit", func(t *testing.T) {
		c := fileReport(t, anonymousReport())
		// Four different files: a file sent again would be stored once (see
		// TestEvidenceStoredOnce) and not count against the limit.
		pdf := func(i byte) []byte { return append([]byte("%PDF-1.7\n"), append(make([]byte, (2<<20)-100), i)...) }
		for i := byte(0); i < 2; i++ {
			wantStatus(t, upload(c.FollowUpToken, c.CaseNumber, pdf(i)), 201)
		}
		before := objectCount(t)
		body, ct := multipartBody(t, nil, []filePart{{"file", "a.pdf", pdf(2)}, {"file", "b.pdf", pdf(3)}})
		r := do(t, req{method: "POST", path: "/v1/reports/" + c.CaseNumber + "/evidence", body: body, contentType: ct, token: c.FollowUpToken})
		wantStatus(t, r, 413)
		if objectCount(t) != before {
			t.Errorf("a refused upload left objects behind")
		}
	})
}

var _ = fmt.Sprintf

// testFollowUpLogout: DELETE /v1/followup/session ends every follow-up token of the
// case issued until then — the one logged out with and another device's, on every
// follow-up route — and the receipt opens a new session at once. The case and its
// conversation are untouched.
func testFollowUpLogout(t *testing.T, receipt, number, tok string) {
	t.Helper()
	open := func() string {
		r := postJSON(t, "/v1/followup/session", "", map[string]string{"receipt_code": receipt})
		wantStatus(t, r, 200)
		var sess struct {
			Token string `json:"token"`
		}
		r.json(t, &sess)
		return sess.Token
	}
	other := open()
	before, err := srv.Intake.Cases.CaseByNumber(t.Context(), number)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, do(t, req{method: "DELETE", path: "/v1/followup/session"}), 401)
	wantStatus(t, do(t, req{method: "DELETE", path: "/v1/followup/session", token: tok}), 204)
	for _, old := range []string{tok, other} {
		wantStatus(t, do(t, req{method: "GET", path: "/v1/followup/case", token: old}), 401)
		wantStatus(t, postJSON(t, "/v1/followup/messages", old, map[string]string{"body": "登出后"}), 401)
		wantStatus(t, do(t, req{method: "POST", path: "/v1/reports/" + number + "/evidence", token: old, body: strings.NewReader("x"), contentType: "image/jpeg"}), 401)
		wantStatus(t, do(t, req{method: "DELETE", path: "/v1/followup/session", token: old}), 401)
	}
	after, err := srv.Intake.Cases.CaseByNumber(t.Context(), number)
	if err != nil {
		t.Fatal(err)
	}
	if after.Version != before.Version || after.ReporterActivityN != before.ReporterActivityN || after.FollowUpEndedAt.IsZero() {
		t.Errorf("logout: version %d→%d, activity %d→%d, ended %v", before.Version, after.Version, before.ReporterActivityN, after.ReporterActivityN, after.FollowUpEndedAt)
	}
	wantStatus(t, do(t, req{method: "GET", path: "/v1/followup/case", token: open()}), 200)
	// A login at once after a logout, 40 times (often in the logout's millisecond): the
	// new session works, the one logged out does not.
	for i := range 40 {
		tok := open()
		wantStatus(t, do(t, req{method: "DELETE", path: "/v1/followup/session", token: tok}), 204)
		next := open()
		if r := do(t, req{method: "GET", path: "/v1/followup/case", token: next}); r.Status != 200 {
			t.Fatalf("round %d: a login right after a logout got a session refused with %d", i, r.Status)
		}
		wantStatus(t, do(t, req{method: "GET", path: "/v1/followup/case", token: tok}), 401)
	}
}
