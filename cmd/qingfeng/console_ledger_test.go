package main

// HTTP tests of the liaison's ledger pages beyond what console_test.go covers: photos
// sent with an entry's form, their thumbnails, hand-outs picked from the stock and
// reversals — each bad input refused with a clear error and nothing changed, in the
// store or in the object store.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/audit"
	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/routing"
)

// postLedger posts a ledger form as the page sends it: multipart, fields first, the
// photo input last (an empty part when no file was chosen).
func postLedger(t *testing.T, c *http.Client, code string, fields [][2]string, files []filePart) page {
	t.Helper()
	if files == nil {
		files = []filePart{{"photos", "", nil}}
	}
	body, ct := multipartBody(t, fields, files)
	resp, err := c.Post(baseURL+"/console/ledger/"+code, ct, body)
	if err != nil {
		t.Fatal(err)
	}
	return readPage(t, resp)
}

// ledgerState is everything a refused form must leave as it was: the entries with
// their verifications and reversals, the balance, the photo records (the objects they
// reference) and the objects in the store.
func ledgerState(t *testing.T, code string) string {
	t.Helper()
	ctx := context.Background()
	recs, err := srv.ledger.List(ctx, code, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := srv.ledger.Balance(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	refs, err := srv.st.referenced(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, r := range recs {
		fmt.Fprintf(&sb, "%s %s %v %v %v|", r.ID, r.Kind, r.Photos, r.Verification != nil, r.ReversedBy)
	}
	fmt.Fprintf(&sb, "funds %v stock %v reversed %v | refs %v | objects %d", b.Funds, b.Stock, b.Reversed,
		slices.Sorted(maps.Keys(refs)), objectCount(t))
	return sb.String()
}

// excerpt is the start of a page's main content, for a failure message.
func excerpt(body string) string {
	if i := strings.Index(body, "<main"); i >= 0 {
		body = body[i:]
	}
	if len(body) > 1200 {
		body = body[:1200]
	}
	return body
}

var ledgerThumb = regexp.MustCompile(`<img src="(/console/ledger/[^"]+/photos/[^"]+)"`)

// TestConsoleLedgerPhotos: goods recorded with a photo from the form show it as a
// thumbnail through the console's own route (metadata removed, inline, sandboxed),
// for the organization's liaisons only; a form sent as multipart without a photo
// records its entry and stores no object; bad input of ten kinds changes nothing.
func TestConsoleLedgerPhotos(t *testing.T) {
	const code = "52330782MJ0000141X"
	webOrg(code, "义乌市某公益服务中心（照片测试）")
	a, _, _ := consoleAccount(t, accounts.RoleLiaison, "", "330782", false)
	b, _, _ := consoleAccount(t, accounts.RoleLiaison, "", "330782", false)
	far, _, _ := consoleAccount(t, accounts.RoleLiaison, "", "330102", false)
	staff, _, _ := consoleAccount(t, accounts.RoleStaff, "330782-mz", "", false)
	ac, bc, fc, sc := consoleSignIn(t, a, ""), consoleSignIn(t, b, ""), consoleSignIn(t, far, ""), consoleSignIn(t, staff, "")
	csrf := consoleCSRF(t, ac)
	today := time.Now().In(time.FixedZone("CST", 8*3600)).Format(time.DateOnly)
	goods := func(tok string, qty string) [][2]string {
		return [][2]string{{"_csrf", tok}, {"_key", fmt.Sprintf("web-%d", time.Now().UnixNano())}, {"op", "goods"}, {"item", "棉被"},
			{"quantity", qty}, {"unit", "床"}, {"valuation_yuan", "800"}, {"receipt_number", "ZJ2026-000141"}, {"date", today}}
	}
	photo := []filePart{{"photos", "bed.jpg", testJPEG(t)}}

	// The ten kinds of bad input on the goods form with a photo.
	for _, tt := range []struct {
		name   string
		c      *http.Client
		fields [][2]string
		files  []filePart
		status int
		want   string
	}{
		{"full-width digits", ac, goods(csrf, "２０"), photo, 400, "全角"},
		{"an exponent", ac, goods(csrf, "1e3"), photo, 400, "数量须为整数"},
		{"negative", ac, goods(csrf, "-5"), photo, 400, "物资数量须大于 0"},
		{"a decimal", ac, goods(csrf, "2.5"), photo, 400, "数量须为整数"},
		{"an invisible character", ac, goods(csrf, "2\u200b0"), photo, 400, "数量须为整数"},
		{"oversize photo", ac, goods(csrf, "20"), []filePart{{"photos", "big.jpg", append(testJPEG(t), make([]byte, 3<<20)...)}}, 413, "照片"},
		{"not an image", ac, goods(csrf, "20"), []filePart{{"photos", "bed.jpg", []byte("just some text, not an image at all")}}, 415, "照片"},
		{"a good photo, then a bad one", ac, goods(csrf, "20"), append(slices.Clone(photo), filePart{"photos", "x.jpg", []byte("text")}), 415, "照片"},
		{"no CSRF token", ac, goods("", "20"), photo, 403, "页面已过期"},
		{"another session's token", ac, goods(consoleCSRF(t, bc), "20"), photo, 403, "页面已过期"},
		{"another division's liaison", fc, goods(consoleCSRF(t, fc), "20"), photo, 403, ""},
		{"staff", sc, goods(consoleCSRF(t, sc), "20"), photo, 403, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := ledgerState(t, code)
			p := postLedger(t, tt.c, code, tt.fields, tt.files)
			if p.status != tt.status || !strings.Contains(p.body, tt.want) {
				t.Errorf("%d, want %d with %q:\n%s", p.status, tt.status, tt.want, excerpt(p.body))
			}
			if after := ledgerState(t, code); after != before {
				t.Errorf("changed:\n%s\n%s", before, after)
			}
		})
	}
	t.Run("a field after the photo", func(t *testing.T) {
		before := ledgerState(t, code)
		var buf bytes.Buffer
		body, ct := multipartBody(t, goods(csrf, "20"), photo)
		io.Copy(&buf, body)
		boundary := ct[strings.Index(ct, "boundary=")+9:]
		s := strings.TrimSuffix(buf.String(), "--"+boundary+"--\r\n") +
			"--" + boundary + "\r\nContent-Disposition: form-data; name=\"quantity\"\r\n\r\n9999\r\n--" + boundary + "--\r\n"
		resp, err := ac.Post(baseURL+"/console/ledger/"+code, ct, strings.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		if p := readPage(t, resp); p.status != 400 {
			t.Errorf("status %d", p.status)
		}
		if after := ledgerState(t, code); after != before {
			t.Errorf("changed:\n%s\n%s", before, after)
		}
	})

	// The other forms with photos: money out beyond the funds, spending without its
	// four sign-offs.
	for name, fields := range map[string][][2]string{
		"a disbursement beyond the funds": {{"_csrf", csrf}, {"op", "disbursement"}, {"amount_yuan", "10"}, {"beneficiary", "王某"}, {"date", today}},
		"spending without the sign-offs": {{"_csrf", csrf}, {"op", "project_spending"}, {"project", "助学"}, {"amount_yuan", "10"}, {"date", today},
			{"handler", "张三"}},
	} {
		t.Run(name, func(t *testing.T) {
			before := ledgerState(t, code)
			if p := postLedger(t, ac, code, fields, photo); p.status != 409 && p.status != 400 {
				t.Errorf("%d:\n%s", p.status, excerpt(p.body))
			}
			if after := ledgerState(t, code); after != before {
				t.Errorf("changed:\n%s\n%s", before, after)
			}
		})
	}

	// Recorded with the photo: one entry citing it, its objects stored.
	objects := objectCount(t)
	p := postLedger(t, ac, code, goods(csrf, "20"), photo)
	if p.status != 200 || !strings.Contains(p.url, "done=goods") {
		t.Fatalf("goods with a photo: %d at %s", p.status, p.url)
	}
	recs, err := srv.ledger.List(context.Background(), code, "")
	if err != nil || len(recs) != 1 || len(recs[0].Photos) != 1 {
		t.Fatalf("entries %+v, %v", recs, err)
	}
	if objectCount(t) <= objects {
		t.Error("no object stored for the photo")
	}
	m := ledgerThumb.FindStringSubmatch(p.body)
	if m == nil || !strings.HasSuffix(m[1], recs[0].Photos[0]) {
		t.Fatalf("no thumbnail of %v on the page", recs[0].Photos)
	}
	seen := lastAuditSeq(t)
	img := getPage(t, bc, m[1])
	if img.status != 200 || img.header.Get("Content-Type") != "image/jpeg" || !strings.Contains(img.header.Get("Content-Security-Policy"), "sandbox") ||
		!strings.HasPrefix(img.header.Get("Content-Disposition"), "inline") {
		t.Fatalf("thumbnail: %d %v", img.status, img.header)
	}
	if strings.Contains(img.body, "GPS") || strings.Contains(img.body, "张三") {
		t.Error("the served photo keeps its metadata")
	}
	// The view is recorded: who saw which photo of which organization.
	views, err := srv.Audit.Store.List(context.Background(), audit.Query{After: seen, Limit: audit.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	viewed := 0
	for _, e := range views {
		if e.Action == "ledger.photo.view" && e.Actor == b.ID && e.Detail["org"] == code && e.Detail["photo"] == recs[0].Photos[0] {
			viewed++
		}
	}
	if viewed != 1 {
		t.Errorf("%d audit entries of the view, want 1: %+v", viewed, views)
	}
	// Only the organization's liaisons see it; other spellings find nothing; a
	// refused view is not recorded as one.
	seen = lastAuditSeq(t)
	for name, c := range map[string]*http.Client{"another division's liaison": fc, "staff": sc, "signed out": webClient(t)} {
		if p := getPage(t, c, m[1]); p.status == 200 && strings.Contains(p.header.Get("Content-Type"), "image") {
			t.Errorf("%s got the photo", name)
		}
	}
	if views, _ := srv.Audit.Store.List(context.Background(), audit.Query{After: seen, Limit: audit.MaxLimit}); slices.ContainsFunc(views, func(e audit.Entry) bool { return e.Action == "ledger.photo.view" && e.Detail["org"] == code }) {
		t.Error("a refused view was recorded as a view")
	}
	// (Paths are case-insensitive in this server's router, so case is no variant here;
	// the store's own suite checks the exact keys.)
	for _, bad := range []string{m[1] + "x", m[1][:strings.LastIndexByte(m[1], '/')],
		m[1][:strings.LastIndexByte(m[1], '/')] + "/\u200b" + m[1][strings.LastIndexByte(m[1], '/')+1:], strings.Replace(m[1], code, "52330782MJ0000077X", 1)} {
		if p := getPage(t, ac, bad); p.status != 404 && p.status != 403 {
			t.Errorf("%s: %d", bad, p.status)
		}
	}

	// Multipart without a photo: recorded, no object.
	objects = objectCount(t)
	p = postLedger(t, ac, code, [][2]string{{"_csrf", csrf}, {"_key", "web-nophoto"}, {"op", "income"}, {"income_type", "transfer"},
		{"amount_yuan", "50"}, {"date", today}}, nil)
	if p.status != 200 || !strings.Contains(p.url, "done=income") || objectCount(t) != objects {
		t.Errorf("income without a photo: %d at %s, objects %d → %d", p.status, p.url, objects, objectCount(t))
	}
	// A photo on a form that takes none changes nothing.
	before := ledgerState(t, code)
	p = postLedger(t, ac, code, [][2]string{{"_csrf", csrf}, {"op", "publish"}, {"month", "2020-01"}}, photo)
	if p.status != 400 || ledgerState(t, code) != before {
		t.Errorf("a photo with publish: %d", p.status)
	}
	// The same form twice (a double tap): one entry, the second upload removed.
	form := goods(csrf, "3")
	first := postLedger(t, ac, code, form, photo)
	mid := ledgerState(t, code)
	second := postLedger(t, ac, code, form, photo)
	if first.status != 200 || second.status != 200 || ledgerState(t, code) != mid {
		t.Errorf("double tap: %d, %d;\n%s\n%s", first.status, second.status, mid, ledgerState(t, code))
	}

	// 32 taps at once of one form with a photo: one entry with one photo; every other
	// upload is gone, from the store and from the object store.
	recsBefore, _ := srv.ledger.List(context.Background(), code, "")
	objects = objectCount(t)
	form = goods(csrf, "7")
	var wg sync.WaitGroup
	start := make(chan struct{})
	statuses := make([]int, 32)
	for i := range 32 {
		body, ct := multipartBody(t, form, photo)
		wg.Go(func() {
			<-start
			resp, err := ac.Post(baseURL+"/console/ledger/"+code, ct, body)
			if err != nil {
				t.Error(err)
				return
			}
			statuses[i] = readPage(t, resp).status
		})
	}
	close(start)
	wg.Wait()
	recs, _ = srv.ledger.List(context.Background(), code, "")
	if len(recs) != len(recsBefore)+1 || len(recs[len(recs)-1].Photos) != 1 {
		t.Fatalf("32 taps: %d entries after %d (statuses %v)", len(recs), len(recsBefore), statuses)
	}
	refs, err := srv.st.referenced(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ev, err := srv.ledger.Photo(context.Background(), code, recs[len(recs)-1].Photos[0])
	if err != nil || !refs[ev.ObjectKey] {
		t.Fatalf("the entry's photo: %+v, %v", ev, err)
	}
	for i, st := range statuses {
		if st != 200 {
			t.Errorf("tap %d: %d", i, st)
		}
	}
	want := objects + 1 // the photo, and its sealed original if one is kept
	if ev.OriginalKey != "" {
		want++
	}
	if got := objectCount(t); got != want {
		t.Errorf("objects: %d before, %d after 32 taps, want %d", objects, got, want)
	}
}

// TestConsoleLedgerHandoutAndReversal: a hand-out picks from the stock (a select with
// the quantities) and refuses more than is there, with the quantity that is; a
// reversal needs a reason, shows on both entries, and 32 at once of one entry make
// one reversal; bad input changes nothing.
func TestConsoleLedgerHandoutAndReversal(t *testing.T) {
	const code = "52330782MJ0000142X"
	webOrg(code, "义乌市某公益服务中心（发放测试）")
	const other = "52330102MJ0000143X"
	srv.engine.Orgs.Put(routing.Organization{CreditCode: other, Name: "杭州市上城区某服务中心", RegDivision: "330102", Division: "330102", Status: routing.OrgNormal})
	a, _, _ := consoleAccount(t, accounts.RoleLiaison, "", "330782", false)
	b, _, _ := consoleAccount(t, accounts.RoleLiaison, "", "330782", false)
	far, _, _ := consoleAccount(t, accounts.RoleLiaison, "", "330102", false)
	ac, bc, fc := consoleSignIn(t, a, ""), consoleSignIn(t, b, ""), consoleSignIn(t, far, "")
	csrf, bcsrf, fcsrf := consoleCSRF(t, ac), consoleCSRF(t, bc), consoleCSRF(t, fc)
	today := time.Now().In(time.FixedZone("CST", 8*3600)).Format(time.DateOnly)
	ctx := context.Background()

	// 20 bags of rice, verified by the second liaison.
	p := postLedger(t, ac, code, [][2]string{{"_csrf", csrf}, {"_key", "web-rice"}, {"op", "goods"}, {"item", "大米"}, {"quantity", "20"},
		{"unit", "袋"}, {"valuation_yuan", "500"}, {"date", today}}, nil)
	if p.status != 200 {
		t.Fatalf("goods: %d", p.status)
	}
	rice, err := srv.ledger.List(ctx, code, "")
	if err != nil || len(rice) != 1 {
		t.Fatal(rice, err)
	}
	if p := getPage(t, bc, "/console/ledger/"+code); !strings.Contains(p.body, "大米（库存 20 袋，其中 20 袋待核验）") {
		t.Errorf("the select does not say the goods await verification:\n%s", excerpt(p.body))
	}
	if p := postPageForm(t, bc, "/console/ledger/"+code, url.Values{"_csrf": {bcsrf}, "op": {"verify"}, "entry": {rice[0].ID}}); p.status != 200 {
		t.Fatalf("verify: %d", p.status)
	}
	p = getPage(t, ac, "/console/ledger/"+code)
	opt := regexp.MustCompile(`<option value="([^"]*)"[^>]*>(大米（库存 20 袋）)</option>`).FindStringSubmatch(p.body)
	if opt == nil {
		t.Fatalf("no stock line in the hand-out's select:\n%s", regexpFind(t, `(?s)(<select id="f-h-stock".{0,300})`, p.body))
	}
	stock := strings.ReplaceAll(opt[1], "&#9;", "\t")
	handout := func(tok, stock, qty, who string) [][2]string {
		return [][2]string{{"_csrf", tok}, {"_key", fmt.Sprintf("web-h%d", time.Now().UnixNano())}, {"op", "handout"}, {"stock", stock},
			{"quantity", qty}, {"beneficiary", who}, {"purpose", "冬季救助"}, {"date", today}}
	}
	photo := []filePart{{"photos", "handout.jpg", testJPEG(t)}}
	for _, tt := range []struct {
		name   string
		c      *http.Client
		fields [][2]string
		status int
		want   string
	}{
		{"more than in stock", ac, handout(csrf, stock, "21", "王某"), 409, "库存只有 20 袋"},
		{"full-width digits", ac, handout(csrf, stock, "５", "王某"), 400, "数量须为整数"},
		{"an exponent", ac, handout(csrf, stock, "1e1", "王某"), 400, "数量须为整数"},
		{"negative", ac, handout(csrf, stock, "-1", "王某"), 400, "物资数量须大于 0"},
		{"zero", ac, handout(csrf, stock, "0", "王某"), 400, "物资数量须大于 0"},
		{"goods not in stock", ac, handout(csrf, "黄金\t克", "1", "王某"), 409, "库存只有 0 克"},
		{"a trailing space", ac, handout(csrf, "大米\t袋 ", "1", "王某"), 400, "首尾不能有空白"},
		{"no item", ac, handout(csrf, "", "1", "王某"), 400, "请从库存中选择"},
		{"no beneficiary", ac, handout(csrf, stock, "1", ""), 400, "受益人姓名不能为空"},
		{"no CSRF token", ac, handout("", stock, "1", "王某"), 403, "页面已过期"},
		{"another session's token", ac, handout(bcsrf, stock, "1", "王某"), 403, "页面已过期"},
		{"another division's liaison", fc, handout(fcsrf, stock, "1", "王某"), 403, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := ledgerState(t, code)
			p := postLedger(t, tt.c, code, tt.fields, photo)
			if p.status != tt.status || !strings.Contains(p.body, tt.want) {
				t.Errorf("%d, want %d with %q:\n%s", p.status, tt.status, tt.want, excerpt(p.body))
			}
			if after := ledgerState(t, code); after != before {
				t.Errorf("changed:\n%s\n%s", before, after)
			}
		})
	}
	p = postLedger(t, ac, code, handout(csrf, stock, "5", "王某"), photo)
	if p.status != 200 || !strings.Contains(p.url, "done=handout") || !strings.Contains(regexpFind(t, `(?s)<dl class="facts" id="stock">(.*?)</dl>`, p.body), "15 袋") {
		t.Fatalf("hand-out of 5: %d at %s", p.status, p.url)
	}
	recs, _ := srv.ledger.List(ctx, code, "")
	out := recs[len(recs)-1]
	if out.From != donations.FromStock || out.Goods == nil || out.Goods.Quantity != 5 || len(out.Photos) != 1 || len(out.Beneficiary) == 0 {
		t.Fatalf("the hand-out: %+v", out)
	}

	// Reversals: bad input first.
	reverse := func(tok, key, entry, reason string) url.Values {
		return url.Values{"_csrf": {tok}, "_key": {key}, "op": {"reverse"}, "entry": {entry}, "reason": {reason}}
	}
	otherIn, _, err := srv.ledger.Append(ctx, other, donations.Submission{Entry: donations.Entry{Kind: donations.KindIncome,
		IncomeType: donations.IncomeCash, AmountFen: 100, Donor: &donations.Donor{Anonymous: true}, Date: today, RecordedBy: far.ID}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		c      *http.Client
		form   url.Values
		status int
		want   string
	}{
		{"no reason", ac, reverse(csrf, "web-r1", out.ID, ""), 400, "冲销原因不能为空"},
		{"a blank reason", ac, reverse(csrf, "web-r2", out.ID, " \u3000 "), 400, "冲销原因不能为空"},
		{"another organization's entry", ac, reverse(csrf, "web-r3", otherIn.ID, "录入错误"), 404, ""},
		{"an entry id spelled otherwise", ac, reverse(csrf, "web-r4", strings.ToLower(out.ID), "录入错误"), 404, ""},
		{"no entry", ac, reverse(csrf, "web-r5", "", "录入错误"), 400, ""},
		{"income already handed out", ac, reverse(csrf, "web-r6", rice[0].ID, "录入错误"), 409, "已被发放或支出"},
		{"no CSRF token", ac, reverse("", "web-r7", out.ID, "录入错误"), 403, "页面已过期"},
		{"another session's token", ac, reverse(bcsrf, "web-r8", out.ID, "录入错误"), 403, "页面已过期"},
		{"another division's liaison", fc, reverse(fcsrf, "web-r9", out.ID, "录入错误"), 403, ""},
	} {
		t.Run("reverse/"+tt.name, func(t *testing.T) {
			before := ledgerState(t, code)
			p := postPageForm(t, tt.c, "/console/ledger/"+code, tt.form)
			if p.status != tt.status || !strings.Contains(p.body, tt.want) {
				t.Errorf("%d, want %d with %q:\n%s", p.status, tt.status, tt.want, excerpt(p.body))
			}
			if after := ledgerState(t, code); after != before {
				t.Errorf("changed:\n%s\n%s", before, after)
			}
		})
	}

	// The error summary links to the reason's field, open in its entry.
	p = postPageForm(t, ac, "/console/ledger/"+code, reverse(csrf, "web-r10", out.ID, ""))
	link := fmt.Sprintf("f-reason-%d", out.Seq)
	if !strings.Contains(p.body, `href="#`+link+`"`) || !strings.Contains(p.body, `id="`+link+`"`) {
		t.Errorf("the summary does not link to the reason field %s:\n%s", link, excerpt(p.body))
	}

	// 32 at once: 16 retries of one form (one key) and 16 other forms. One reversal.
	var wg sync.WaitGroup
	start := make(chan struct{})
	statuses := make([]int, 32)
	for i := range 32 {
		key := "web-same"
		if i%2 == 1 {
			key = fmt.Sprintf("web-other-%d", i)
		}
		wg.Go(func() {
			<-start
			resp, err := ac.PostForm(baseURL+"/console/ledger/"+code, reverse(csrf, key, out.ID, "发放数量记错"))
			if err != nil {
				t.Error(err)
				return
			}
			statuses[i] = readPage(t, resp).status
		})
	}
	close(start)
	wg.Wait()
	recs, _ = srv.ledger.List(ctx, code, "")
	var reversals int
	for _, r := range recs {
		if r.Kind == donations.KindReversal {
			reversals++
		}
	}
	if reversals != 1 {
		t.Fatalf("%d reversals after 32 at once (statuses %v)", reversals, statuses)
	}
	// Each is done (200) or told the entry is already reversed (409); the retries of
	// one form all get the same answer: the first attempt's.
	ok := 0
	for i, st := range statuses {
		if st != 200 && st != 409 || i%2 == 0 && st != statuses[0] {
			t.Errorf("request %d: %d (statuses %v)", i, st, statuses)
		}
		if st == 200 {
			ok++
		}
	}
	if ok == 0 {
		t.Errorf("no reversal succeeded: %v", statuses)
	}
	b2, _ := srv.ledger.Balance(ctx, code)
	if b2.Stock[donations.StockKey{Item: "大米", Unit: "袋"}] != 20 {
		t.Errorf("stock after the reversal: %v", b2.Stock)
	}
	// Both visible: the reversed entry names its reversal, the reversal the entry and why;
	// neither can be reversed (again).
	p = getPage(t, ac, "/console/ledger/"+code)
	rev := recs[len(recs)-1]
	revLi := regexpFind(t, `(?s)<li id="e-`+regexp.QuoteMeta(rev.ID)+`"[^>]*>(.*?)</li>\s*<li`, p.body)
	outLi := regexpFind(t, `(?s)<li id="e-`+regexp.QuoteMeta(out.ID)+`"[^>]*>(.*?)</li>\s*<li`, p.body)
	if !strings.Contains(revLi, fmt.Sprintf("冲销第 %d 笔，原因：发放数量记错", out.Seq)) || strings.Contains(revLi, "确认冲销") {
		t.Errorf("the reversal on the page: %s", revLi)
	}
	if !strings.Contains(outLi, fmt.Sprintf("已被第 %d 笔冲销", rev.Seq)) || !strings.Contains(outLi, "已冲销") || strings.Contains(outLi, "确认冲销") {
		t.Errorf("the reversed entry on the page: %s", outLi)
	}
	before := ledgerState(t, code)
	if p := postPageForm(t, ac, "/console/ledger/"+code, reverse(csrf, "web-rr", rev.ID, "再冲销")); p.status != 409 || ledgerState(t, code) != before {
		t.Errorf("reversing the reversal: %d", p.status)
	}

	// A double tap of the hand-out that empties the stock, with a photo: the second tap
	// is the first's retry, answered as done — not 库存不足 — and stores nothing more.
	form := handout(csrf, stock, "20", "李某")
	if p := postLedger(t, ac, code, form, photo); p.status != 200 || !strings.Contains(p.url, "done=handout") {
		t.Fatalf("hand-out of all 20: %d at %s\n%s", p.status, p.url, excerpt(p.body))
	}
	mid, objects := ledgerState(t, code), objectCount(t)
	if p := postLedger(t, ac, code, form, photo); p.status != 200 || !strings.Contains(p.url, "done=handout") {
		t.Errorf("the second tap: %d at %s\n%s", p.status, p.url, excerpt(p.body))
	}
	if ledgerState(t, code) != mid || objectCount(t) != objects {
		t.Errorf("the second tap changed the ledger or the objects (%d → %d)", objects, objectCount(t))
	}
	// The same key with another quantity is another request, refused as such.
	form[4][1] = "1"
	if p := postLedger(t, ac, code, form, photo); p.status != 409 || ledgerState(t, code) != mid || objectCount(t) != objects {
		t.Errorf("the key with another request: %d", p.status)
	}
}
