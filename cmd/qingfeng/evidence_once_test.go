package main

import (
	"bytes"
	"context"
	"encoding/json"
	"mime/multipart"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/intake"
)

// jpegVariant is testJPEG with a comment segment of its own: other received bytes
// (another sha256_received), the same picture.
func jpegVariant(t *testing.T, tag string) []byte {
	t.Helper()
	b := testJPEG(t)
	n := len(tag) + 2
	return append(append(append([]byte{}, b[:2]...), 0xFF, 0xFE, byte(n>>8), byte(n)), append([]byte(tag), b[2:]...)...)
}

type addedEvidence struct {
	CaseNumber string `json:"case_number"`
	Evidence   []struct {
		ID             string `json:"id"`
		SHA256Received string `json:"sha256_received"`
		UploadedBy     string `json:"uploaded_by"`
		AlreadyStored  *bool  `json:"already_stored"`
	} `json:"evidence"`
}

// TestEvidenceStoredOnce: a file uploaded again to its case by the same uploader — a
// retry after a lost answer, a double tap, an app retrying 32 times at once, the
// follow-up page's form sent twice — is stored once: one entry, the objects of one
// upload, reporter activity +1, and every answer names that entry (already_stored on
// the repeats). A batch of a repeated and a new file stores the new one; another photo,
// the same photo on another case, and a liaison's copy of the reporter's photo (which
// must not tell the liaison the reporter sent it) are stored.
func TestEvidenceStoredOnce(t *testing.T) {
	ctx := context.Background()
	f := fileReport(t, anonymousReport())
	other := fileReport(t, anonymousReport())
	upload := func(token, number string, files ...[]byte) (int, addedEvidence) {
		t.Helper()
		var parts []filePart
		for _, b := range files {
			parts = append(parts, filePart{"file", "photo.jpg", b})
		}
		body, ct := multipartBody(t, nil, parts)
		r := do(t, req{method: "POST", path: "/v1/reports/" + number + "/evidence", body: body, contentType: ct, token: token})
		var a addedEvidence
		if r.Status == 201 {
			r.json(t, &a)
		}
		return r.Status, a
	}
	type state struct {
		entries  int
		activity int64
		bytes    int64
		objects  int
		evidence []intake.Evidence
	}
	stateOf := func(number string) state {
		t.Helper()
		c, err := srv.Intake.Cases.CaseByNumber(ctx, number)
		if err != nil {
			t.Fatal(err)
		}
		return state{len(c.Evidence), c.ReporterActivityN, c.EvidenceBytes, objectCount(t), c.Evidence}
	}
	stored := func(a addedEvidence, i int) bool {
		return a.Evidence[i].AlreadyStored == nil // absent unless true
	}
	photo := jpegVariant(t, "photo-1")

	s0 := stateOf(f.CaseNumber)
	st, first := upload(f.FollowUpToken, f.CaseNumber, photo)
	if st != 201 || len(first.Evidence) != 1 || !stored(first, 0) {
		t.Fatalf("first upload: %d %+v", st, first)
	}
	s1 := stateOf(f.CaseNumber)
	perUpload := s1.objects - s0.objects // the cleaned file, and the sealed original if kept
	if s1.entries != s0.entries+1 || s1.activity != s0.activity+1 || perUpload < 1 {
		t.Fatalf("first upload: entries %d → %d, activity %d → %d, objects +%d", s0.entries, s1.entries, s0.activity, s1.activity, perUpload)
	}

	t.Run("uploaded again", func(t *testing.T) {
		st, again := upload(f.FollowUpToken, f.CaseNumber, photo)
		if st != 201 || len(again.Evidence) != 1 || stored(again, 0) || !*again.Evidence[0].AlreadyStored || again.Evidence[0].ID != first.Evidence[0].ID {
			t.Fatalf("the same photo again: %d %+v, want the first entry %s, already stored", st, again, first.Evidence[0].ID)
		}
		if s := stateOf(f.CaseNumber); s.entries != s1.entries || s.activity != s1.activity || s.bytes != s1.bytes || s.objects != s1.objects {
			t.Errorf("the same photo again: entries %d → %d, activity %d → %d, bytes %d → %d, objects %d → %d",
				s1.entries, s.entries, s1.activity, s.activity, s1.bytes, s.bytes, s1.objects, s.objects)
		}
	})

	t.Run("32 at once", func(t *testing.T) {
		burst := jpegVariant(t, "burst")
		before := stateOf(f.CaseNumber)
		statuses := make([]int, 32)
		answers := make([]addedEvidence, 32)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range 32 {
			wg.Go(func() {
				<-start
				statuses[i], answers[i] = upload(f.FollowUpToken, f.CaseNumber, burst)
			})
		}
		close(start)
		wg.Wait()
		fresh := 0
		for i, st := range statuses {
			if st != 201 || len(answers[i].Evidence) != 1 {
				t.Fatalf("upload %d of 32: %d %+v", i, st, answers[i])
			}
			if stored(answers[i], 0) {
				fresh++
			}
			if answers[i].Evidence[0].ID != answers[0].Evidence[0].ID {
				t.Errorf("upload %d answered %s, upload 0 %s", i, answers[i].Evidence[0].ID, answers[0].Evidence[0].ID)
			}
		}
		after := stateOf(f.CaseNumber)
		if fresh != 1 || after.entries != before.entries+1 || after.activity != before.activity+1 || after.objects != before.objects+perUpload {
			t.Errorf("32 at once: %d stored fresh; entries %d → %d, activity %d → %d, objects %d → %d (one upload stores %d)",
				fresh, before.entries, after.entries, before.activity, after.activity, before.objects, after.objects, perUpload)
		}
	})

	t.Run("a repeated and a new file in one batch", func(t *testing.T) {
		before := stateOf(f.CaseNumber)
		st, a := upload(f.FollowUpToken, f.CaseNumber, photo, testPNG(t), testPNG(t))
		if st != 201 || len(a.Evidence) != 3 || stored(a, 0) || !stored(a, 1) || stored(a, 2) ||
			a.Evidence[0].ID != first.Evidence[0].ID || a.Evidence[2].ID != a.Evidence[1].ID {
			t.Fatalf("batch: %d %+v; want the first entry, a new one, and it again", st, a)
		}
		after := stateOf(f.CaseNumber)
		if after.entries != before.entries+1 || after.activity != before.activity+1 {
			t.Errorf("batch: entries %d → %d, activity %d → %d; want one new", before.entries, after.entries, before.activity, after.activity)
		}
		// The PNG's objects only (its original, if kept, may differ in size from the JPEG's).
		if d := after.objects - before.objects; d < 1 || d > perUpload {
			t.Errorf("batch: objects +%d, want those of one upload (%d)", d, perUpload)
		}
	})

	t.Run("a repeat takes no room", func(t *testing.T) {
		// 5 MiB a case, 2 MiB a file: after one file of ~2 MiB, it again and another
		// of ~2 MiB fit only if the repeat is not counted.
		c := fileReport(t, anonymousReport())
		pdf := func(i byte) []byte { return append([]byte("%PDF-1.7\n"), append(make([]byte, (2<<20)-100), i)...) }
		if st, _ := upload(c.FollowUpToken, c.CaseNumber, pdf(0)); st != 201 {
			t.Fatalf("first file: %d", st)
		}
		before := stateOf(c.CaseNumber)
		st, a := upload(c.FollowUpToken, c.CaseNumber, pdf(0), pdf(1))
		if st != 201 || len(a.Evidence) != 2 || stored(a, 0) || !stored(a, 1) {
			t.Fatalf("the file again and a new one: %d %+v", st, a)
		}
		after := stateOf(c.CaseNumber)
		if after.entries != before.entries+1 || after.objects != before.objects+perUpload || after.bytes >= 5<<20 {
			t.Errorf("entries %d → %d, objects %d → %d, bytes %d", before.entries, after.entries, before.objects, after.objects, after.bytes)
		}
		// Now full: a third file is refused and leaves nothing.
		if st, _ := upload(c.FollowUpToken, c.CaseNumber, pdf(2)); st != 413 {
			t.Errorf("a third file: %d, want 413", st)
		}
		if objectCount(t) != after.objects {
			t.Errorf("a refused upload left objects")
		}
		// The retry of the upload that filled the case: answered with its entry.
		st, again := upload(c.FollowUpToken, c.CaseNumber, pdf(1))
		if st != 201 || len(again.Evidence) != 1 || stored(again, 0) || again.Evidence[0].ID != a.Evidence[1].ID {
			t.Errorf("the last file again on a full case: %d %+v, want its entry %s", st, again, a.Evidence[1].ID)
		}
		if s := stateOf(c.CaseNumber); s.entries != after.entries || s.objects != after.objects {
			t.Errorf("the last file again: entries %d → %d, objects %d → %d", after.entries, s.entries, after.objects, s.objects)
		}
	})

	t.Run("the same photo on another case", func(t *testing.T) {
		before := stateOf(other.CaseNumber)
		st, a := upload(other.FollowUpToken, other.CaseNumber, photo)
		if st != 201 || len(a.Evidence) != 1 || !stored(a, 0) || a.Evidence[0].ID == first.Evidence[0].ID {
			t.Fatalf("another case: %d %+v", st, a)
		}
		if after := stateOf(other.CaseNumber); after.entries != before.entries+1 || after.objects != before.objects+perUpload {
			t.Errorf("another case: entries %d → %d, objects %d → %d", before.entries, after.entries, before.objects, after.objects)
		}
	})

	t.Run("a liaison's copy is the liaison's", func(t *testing.T) {
		liaison, _ := staffLogin(t, accounts.RoleLiaison, "", "330782")
		before := stateOf(f.CaseNumber)
		st, a := upload(liaison, f.CaseNumber, photo)
		if st != 201 || len(a.Evidence) != 1 || !stored(a, 0) || a.Evidence[0].ID == first.Evidence[0].ID || a.Evidence[0].UploadedBy != "liaison" {
			t.Fatalf("the liaison's upload of the reporter's photo: %d %+v; want a new entry that names no one else", st, a)
		}
		if after := stateOf(f.CaseNumber); after.entries != before.entries+1 || after.activity != before.activity {
			t.Errorf("the liaison's upload: entries %d → %d, activity %d → %d", before.entries, after.entries, before.activity, after.activity)
		}
		st, again := upload(liaison, f.CaseNumber, photo)
		if st != 201 || stored(again, 0) || again.Evidence[0].ID != a.Evidence[0].ID {
			t.Errorf("the liaison's retry: %d %+v, want their entry %s", st, again, a.Evidence[0].ID)
		}
	})

	t.Run("the follow-up page's form sent twice", func(t *testing.T) {
		wc := webClient(t)
		login := getPage(t, wc, "/followup")
		lc, _ := formTokens(t, login.body)
		page := postPageForm(t, wc, "/followup", url.Values{"_csrf": {lc}, "receipt_code": {f.ReceiptCode}})
		form := regexpFind(t, `(?s)(<form method="post" action="/followup/evidence".*?</form>)`, page.body)
		csrf := csrfInput.FindStringSubmatch(form)
		if csrf == nil {
			t.Fatalf("the upload form carries no token: %s", form)
		}
		formPhoto := jpegVariant(t, "form")
		before := stateOf(f.CaseNumber)
		for i := range 2 {
			var buf bytes.Buffer
			w := multipart.NewWriter(&buf)
			w.WriteField("_csrf", csrf[1])
			pw, _ := w.CreateFormFile("files", "photo.jpg")
			pw.Write(formPhoto)
			w.Close()
			resp, err := wc.Post(baseURL+"/followup/evidence", w.FormDataContentType(), &buf)
			if err != nil {
				t.Fatal(err)
			}
			p := readPage(t, resp)
			if p.status != 200 {
				t.Errorf("the upload form: %d at %s", p.status, p.url)
			}
			// The second time the page says the file was there already.
			if again := strings.Contains(p.body, "其中 1 个您此前已经上传过"); again != (i == 1) {
				t.Errorf("upload %d: the page says the file was uploaded before: %v", i+1, again)
			}
		}
		after := stateOf(f.CaseNumber)
		if after.entries != before.entries+1 || after.activity != before.activity+1 || after.objects != before.objects+perUpload {
			t.Errorf("a double submit: entries %d → %d, activity %d → %d, objects %d → %d (one upload stores %d)",
				before.entries, after.entries, before.activity, after.activity, before.objects, after.objects, perUpload)
		}
	})

	// What the reporter reads lists each file once.
	r := do(t, req{method: "GET", path: "/v1/followup/case", token: f.FollowUpToken})
	wantStatus(t, r, 200)
	var view struct {
		Evidence []struct {
			SHA256Received string `json:"sha256_received"`
			UploadedBy     string `json:"uploaded_by"`
		} `json:"evidence"`
	}
	if err := json.Unmarshal(r.Body, &view); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range view.Evidence {
		k := e.UploadedBy + " " + e.SHA256Received
		if seen[k] {
			t.Errorf("the follow-up view lists %s twice", k)
		}
		seen[k] = true
	}
}
