package main

import (
	"strings"
	"testing"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/storage/sqlite"
)

func TestLedgerAPI(t *testing.T) {
	const code = "51330782MJ0000018J"
	srv.engine.Orgs.Put(routing.Organization{CreditCode: code, Name: "义乌市某行业协会", Type: "社会团体", RegDivision: "330782",
		Division: "330782", Status: routing.OrgNormal})
	base := "/v1/orgs/" + code + "/ledger"
	a, aUser := staffLogin(t, accounts.RoleLiaison, "", "330782")
	b, _ := staffLogin(t, accounts.RoleLiaison, "", "330782")
	other, _ := staffLogin(t, accounts.RoleLiaison, "", "330326")
	mz, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	jw, _ := staffLogin(t, accounts.RoleStaff, "330782-jw", "")
	entry := func(token string, body any, status int) map[string]any {
		t.Helper()
		r := postJSON(t, base+"/entries", token, body)
		wantStatus(t, r, status)
		var out map[string]any
		r.json(t, &out)
		return out
	}
	today := "2026-11-01"
	cash := entry(a, map[string]any{"kind": "income", "income_type": "cash", "amount_fen": 100000, "date": today,
		"donor": map[string]any{"anonymous": false, "name": "李先生", "name_consent": true}, "receipt_number": "ZJ2026-001", "purpose": "助学"}, 201)
	goods := entry(a, map[string]any{"kind": "income", "income_type": "goods", "date": today,
		"goods": map[string]any{"item": "大米", "quantity": 10, "unit": "袋", "valuation_fen": 50000}, "donor": map[string]any{"anonymous": true}}, 201)

	// Goods are verified by a second, different person, once, and handed out only
	// after that.
	verify := func(token, id string, status int) {
		t.Helper()
		wantStatus(t, postJSON(t, base+"/entries/"+id+"/verification", token, map[string]any{"note": "已验收"}), status)
	}
	early := postJSON(t, base+"/entries", a, map[string]any{"kind": "disbursement", "from": "stock", "goods": map[string]any{"item": "大米", "quantity": 1, "unit": "袋"},
		"date": today, "beneficiary": map[string]any{"name": "低保户张某"}})
	wantStatus(t, early, 409)
	if !containsString(early.Body, "受赠物资须至少两人签收") || !containsString(early.Body, `"goods_unverified"`) {
		t.Errorf("hand-out before verification: %s", early.Body)
	}
	verify(a, goods["id"].(string), 403)
	verify(b, goods["id"].(string), 201)
	verify(b, goods["id"].(string), 409)

	// Disbursements cannot exceed the balance or the stock.
	entry(a, map[string]any{"kind": "disbursement", "from": "funds", "amount_fen": 200000, "date": today,
		"beneficiary": map[string]any{"name": "困难学生王某"}}, 409)
	paid := entry(a, map[string]any{"kind": "disbursement", "from": "funds", "amount_fen": 50000, "date": today,
		"beneficiary": map[string]any{"name": "困难学生王某", "note": "助学金"}}, 201)
	if paid["beneficiary_sealed"] != true {
		t.Errorf("beneficiary not sealed: %v", paid)
	}
	entry(a, map[string]any{"kind": "disbursement", "from": "stock", "goods": map[string]any{"item": "大米", "quantity": 11, "unit": "袋"}, "date": today,
		"beneficiary": map[string]any{"name": "低保户张某"}}, 409)
	entry(a, map[string]any{"kind": "disbursement", "from": "stock", "goods": map[string]any{"item": "大米", "quantity": 4, "unit": "袋"}, "date": today,
		"beneficiary": map[string]any{"name": "低保户张某"}}, 201)

	// Corrections are reversals: an income already spent cannot be reversed; a
	// disbursement can, once.
	rev := func(id string, status int) {
		t.Helper()
		wantStatus(t, postJSON(t, base+"/entries/"+id+"/reversal", a, map[string]any{"reason": "录入错误"}), status)
	}
	rev(cash["id"].(string), 409)
	rev(paid["id"].(string), 201)
	rev(paid["id"].(string), 409)

	r := do(t, req{method: "GET", path: base + "/balance", token: mz})
	wantStatus(t, r, 200)
	if !containsString(r.Body, `"total_funds_fen":100000`) || !containsString(r.Body, `"quantity":6`) {
		t.Errorf("balance: %s", r.Body)
	}
	r = do(t, req{method: "GET", path: base + "/entries?month=2026-11", token: a})
	wantStatus(t, r, 200)
	for _, secret := range []string{"困难学生王某", "低保户张某"} {
		if containsString(r.Body, secret) {
			t.Errorf("the ledger shows a beneficiary in plaintext: %s", secret)
		}
	}
	if !containsString(r.Body, `"verified_by"`) || !containsString(r.Body, `"reversed_by"`) || !containsString(r.Body, aUser.ID) {
		t.Errorf("listing: %s", r.Body)
	}

	bad := []struct {
		name   string
		token  string
		body   any
		status int
	}{
		{"negative amount", a, map[string]any{"kind": "income", "income_type": "cash", "amount_fen": -5, "date": today}, 400},
		{"future date", a, map[string]any{"kind": "income", "income_type": "cash", "amount_fen": 5, "date": "2099-01-01"}, 400},
		{"unknown kind", a, map[string]any{"kind": "gift", "date": today}, 400},
		{"reversal through the wrong route", a, map[string]any{"kind": "reversal", "date": today}, 400},
		{"project spending without sign-offs", a, map[string]any{"kind": "project_spending", "amount_fen": 5, "project": "助学", "date": today}, 400},
		{"wrong type", a, map[string]any{"kind": "income", "income_type": "cash", "amount_fen": "100", "date": today}, 400},
		{"operator injection", a, `{"kind":{"$ne":""},"date":"2026-11-01"}`, 400},
		{"unknown field", a, `{"kind":"income","income_type":"cash","amount_fen":5,"date":"2026-11-01","balance":1}`, 400},
		{"empty beneficiary", a, map[string]any{"kind": "disbursement", "from": "funds", "amount_fen": 5, "date": today, "beneficiary": map[string]any{"name": ""}}, 400},
		{"liaison of another division", other, map[string]any{"kind": "income", "income_type": "cash", "amount_fen": 5, "date": today}, 403},
		{"staff cannot write", mz, map[string]any{"kind": "income", "income_type": "cash", "amount_fen": 5, "date": today}, 403},
		{"no token", "", map[string]any{"kind": "income"}, 401},
		{"yuan and fen", a, map[string]any{"kind": "income", "income_type": "cash", "amount_fen": 5, "amount_yuan": "0.05", "date": today,
			"donor": map[string]any{"anonymous": true}}, 400},
		{"yuan as a number", a, map[string]any{"kind": "income", "income_type": "cash", "amount_yuan": 12.5, "date": today,
			"donor": map[string]any{"anonymous": true}}, 400},
	}
	for _, y := range []string{"1e3", "0.001", "1,234.50", "１２３", " 12", "12.", ".5", "-5", "0", "99999999999999999999", "12​"} {
		bad = append(bad, struct {
			name   string
			token  string
			body   any
			status int
		}{"yuan " + y, a, map[string]any{"kind": "income", "income_type": "cash", "amount_yuan": y, "date": today,
			"donor": map[string]any{"anonymous": true}}, 400})
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			r := postJSON(t, base+"/entries", tt.token, tt.body)
			wantStatus(t, r, tt.status)
			r.errorCode(t)
		})
	}
	wantStatus(t, postJSON(t, "/v1/orgs/51330782MJ00000XXX/ledger/entries", a, map[string]any{"kind": "income"}), 404)
	wantStatus(t, do(t, req{method: "GET", path: base + "/entries?month=11-2026", token: a}), 400)
	wantStatus(t, do(t, req{method: "GET", path: base + "/entries", token: jw}), 404)
	wantStatus(t, postJSON(t, base+"/entries/"+code+":9999999999/reversal", a, map[string]any{"reason": "x"}), 404)
	// Nothing the refused requests sent changed the balance.
	r = do(t, req{method: "GET", path: base + "/balance", token: a})
	if !strings.Contains(string(r.Body), `"total_funds_fen":100000`) {
		t.Errorf("balance after refused requests: %s", r.Body)
	}
	// Yuan, exactly.
	y := entry(a, map[string]any{"kind": "income", "income_type": "cash", "amount_yuan": "1234.50", "date": today, "receipt_number": "ZJ2026-Y",
		"donor": map[string]any{"anonymous": true}}, 201)
	if y["amount_fen"] != float64(123450) {
		t.Errorf("1234.50 yuan recorded as %v fen", y["amount_fen"])
	}
}

func TestPublicDisclosure(t *testing.T) {
	const code = "52330782MJ0000026B"
	srv.engine.Orgs.Put(routing.Organization{CreditCode: code, Name: "义乌市某慈善服务中心", Type: "民办非企业单位/社会服务机构",
		RegDivision: "330782", Division: "330782", Status: routing.OrgNormal, Grade: "4A"})
	a, _ := staffLogin(t, accounts.RoleLiaison, "", "330782")
	base := "/v1/orgs/" + code + "/ledger/entries"
	wantStatus(t, postJSON(t, base, a, map[string]any{"kind": "income", "income_type": "transfer", "amount_fen": 2_000_000, "date": "2026-10-08",
		"donor": map[string]any{"anonymous": false, "name": "某公司", "name_consent": false}, "receipt_number": "ZJ2026-88"}), 201)
	wantStatus(t, postJSON(t, base, a, map[string]any{"kind": "disbursement", "from": "funds", "amount_fen": 300000, "date": "2026-10-20",
		"beneficiary": map[string]any{"name": "受助人陈某"}}), 201)

	r := do(t, req{method: "GET", path: "/v1/public/orgs/" + code})
	wantStatus(t, r, 200)
	if !containsString(r.Body, "义乌市民政局") || !containsString(r.Body, `"status_label":"正常"`) || !containsString(r.Body, "4A") {
		t.Errorf("public page: %s", r.Body)
	}
	// Not public before it is published.
	r = do(t, req{method: "GET", path: "/v1/public/orgs/" + code + "/donations?month=2026-10"})
	wantStatus(t, r, 404)
	if !containsString(r.Body, "尚未发布") || containsString(r.Body, "2000000") {
		t.Errorf("unpublished statement: %s", r.Body)
	}
	pr := postJSON(t, "/v1/orgs/"+code+"/ledger/statements/2026-10/publish", a, "")
	wantStatus(t, pr, 201)
	var pub struct {
		ContentHash string `json:"content_hash"`
	}
	pr.json(t, &pub)
	r = do(t, req{method: "GET", path: "/v1/public/orgs/" + code + "/donations?month=2026-10"})
	wantStatus(t, r, 200)
	published := string(r.Body)
	if len(pub.ContentHash) != 64 || !containsString(r.Body, `"content_hash":"`+pub.ContentHash+`"`) || !containsString(r.Body, `"corrections":[]`) {
		t.Errorf("published statement: %s", r.Body)
	}
	for _, secret := range []string{"受助人陈某", "某公司"} {
		if containsString(r.Body, secret) {
			t.Errorf("the public statement shows %s: %s", secret, r.Body)
		}
	}
	if !containsString(r.Body, `"income_fen":2000000`) || !containsString(r.Body, `"spending_fen":300000`) || !containsString(r.Body, `"donor":"未公开"`) {
		t.Errorf("statement: %s", r.Body)
	}
	// The attempt: an entry dated into the published month moves nothing
	// published; it is listed beside the statement as a dated correction.
	wantStatus(t, postJSON(t, base, a, map[string]any{"kind": "income", "income_type": "transfer", "amount_fen": 1_500_000_000, "date": "2026-10-15",
		"donor": map[string]any{"anonymous": true}, "receipt_number": "ZJ2026-89"}), 201)
	r = do(t, req{method: "GET", path: "/v1/public/orgs/" + code + "/donations?month=2026-10"})
	wantStatus(t, r, 200)
	var after struct {
		IncomeFen   int64  `json:"income_fen"`
		ContentHash string `json:"content_hash"`
		PublishedAt string `json:"published_at"`
		Corrections []struct {
			Label      string `json:"label"`
			FundsFen   int64  `json:"funds_fen"`
			RecordedAt string `json:"recorded_at"`
		} `json:"corrections"`
	}
	r.json(t, &after)
	if after.IncomeFen != 2_000_000 || after.ContentHash != pub.ContentHash || len(after.Corrections) != 1 ||
		after.Corrections[0].Label != "更正" || after.Corrections[0].FundsFen != 1_500_000_000 || after.Corrections[0].RecordedAt == "" {
		t.Errorf("after a back-dated entry: %s (published: %s)", r.Body, published)
	}
	r = do(t, req{method: "GET", path: "/v1/public/orgs/" + code + "/donations/check?receipt=ZJ2026-88&amount_fen=2000000"})
	wantStatus(t, r, 200)
	if !containsString(r.Body, `"recorded":true`) {
		t.Errorf("donor check: %s", r.Body)
	}
	r = do(t, req{method: "GET", path: "/v1/public/orgs/" + code + "/donations/check?receipt=ZJ2026-88&amount_fen=1"})
	if !containsString(r.Body, `"recorded":false`) {
		t.Errorf("donor check, wrong amount: %s", r.Body)
	}
	r = do(t, req{method: "GET", path: "/v1/public/orgs/" + code + "/qr.png"})
	wantStatus(t, r, 200)
	if !strings.HasPrefix(string(r.Body), "\x89PNG") {
		t.Error("the QR code is not a PNG")
	}
	r = do(t, req{method: "GET", path: "/v1/orgs/" + code + "/ledger/export.csv?from=2026-10&to=2026-10", token: a})
	wantStatus(t, r, 200)
	if containsString(r.Body, "受助人陈某") || !containsString(r.Body, "ZJ2026-88") || !containsString(r.Body, pub.ContentHash) ||
		strings.Count(string(r.Body), "更正") != 1 {
		t.Errorf("csv: %s", r.Body)
	}
	for _, q := range []string{
		"/v1/public/orgs/" + code + "/donations?month=2026",
		"/v1/public/orgs/" + code + "/donations/check?receipt=&amount_fen=5",
		"/v1/public/orgs/" + code + "/donations/check?receipt=x&amount_fen=-5",
	} {
		wantStatus(t, do(t, req{method: "GET", path: q}), 400)
	}
	wantStatus(t, do(t, req{method: "GET", path: "/v1/orgs/" + code + "/ledger/export.csv?from=2026-11&to=2026-10", token: a}), 400)
	wantStatus(t, do(t, req{method: "GET", path: "/v1/orgs/" + code + "/ledger/export.csv?from=2026-10&to=2026-10"}), 401)
	wantStatus(t, do(t, req{method: "GET", path: "/v1/public/orgs/51000000000000000X"}), 404)
}

// TestDonationAlerts: a donation above the large-amount threshold opens a case by
// itself (source "system") as it is recorded, routed to the organization's registration
// authority, once; reversing it at once undoes nothing.
func TestDonationAlerts(t *testing.T) {
	const code = "53330782MJ0000034M"
	srv.engine.Orgs.Put(routing.Organization{CreditCode: code, Name: "义乌市某基金会", Type: "基金会", RegDivision: "330782",
		Division: "330782", Status: routing.OrgNormal})
	if _, _, err := sqlite.NewOrgStore(srv.st.sqlite).UpsertOrganizations(t.Context(), []routing.Organization{{CreditCode: code, Name: "义乌市某基金会",
		Type: "基金会", RegDivision: "330782", Division: "330782", Status: routing.OrgNormal}}); err != nil {
		t.Fatal(err)
	}
	a, _ := staffLogin(t, accounts.RoleLiaison, "", "330782")
	r := postJSON(t, "/v1/orgs/"+code+"/ledger/entries", a, map[string]any{"kind": "income", "income_type": "transfer",
		"amount_yuan": "90000", "date": "2026-11-02", "receipt_number": "ZJ-9", "donor": map[string]any{"anonymous": true}})
	wantStatus(t, r, 201)
	var gift struct {
		ID string `json:"id"`
	}
	r.json(t, &gift)
	wantStatus(t, postJSON(t, "/v1/orgs/"+code+"/ledger/entries/"+gift.ID+"/reversal", a, map[string]any{"reason": "退回"}), 201)
	warns, err := sqlite.NewLedgerStore(srv.st.sqlite).OrgAlerts(t.Context(), code)
	if err != nil || len(warns) != 1 || warns[0].CaseNumber == "" {
		t.Fatalf("alerts on append %+v %v", warns, err)
	}
	for range 2 {
		if _, err := srv.ledger.RunAlerts(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if again, err := sqlite.NewLedgerStore(srv.st.sqlite).OrgAlerts(t.Context(), code); err != nil || len(again) != 1 || again[0].CaseNumber != warns[0].CaseNumber {
		t.Fatalf("alerts after job runs %+v %v", again, err)
	}
	staff, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	r = do(t, req{method: "GET", path: "/v1/cases/" + warns[0].CaseNumber, token: staff})
	wantStatus(t, r, 200)
	if !containsString(r.Body, `"source":"system"`) || !containsString(r.Body, code) {
		t.Errorf("system case: %s", r.Body)
	}
}

// TestLedgerIdempotency: a POST retried with the same Idempotency-Key records one entry;
// the same key with another body is refused.
func TestLedgerIdempotency(t *testing.T) {
	const code = "51330782MJ00000420"
	srv.engine.Orgs.Put(routing.Organization{CreditCode: code, Name: "义乌市某志愿者协会", Type: "社会团体", RegDivision: "330782",
		Division: "330782", Status: routing.OrgNormal})
	a, _ := staffLogin(t, accounts.RoleLiaison, "", "330782")
	post := func(key string, amount int, status int) map[string]any {
		t.Helper()
		b := jsonBody(t, map[string]any{"kind": "income", "income_type": "cash", "amount_fen": amount, "date": "2026-11-03", "receipt_number": "R-1", "donor": map[string]any{"anonymous": true}})
		r := do(t, req{method: "POST", path: "/v1/orgs/" + code + "/ledger/entries", body: b, contentType: "application/json", token: a,
			header: map[string]string{"Idempotency-Key": key}})
		wantStatus(t, r, status)
		var out map[string]any
		r.json(t, &out)
		return out
	}
	first := post("retry-1", 5000, 201)
	again := post("retry-1", 5000, 200)
	if first["id"] != again["id"] {
		t.Errorf("a retry recorded a second entry: %v vs %v", first["id"], again["id"])
	}
	post("retry-1", 6000, 409)
	post(strings.Repeat("k", 201), 5000, 400)
	r := do(t, req{method: "GET", path: "/v1/orgs/" + code + "/ledger/balance", token: a})
	if !containsString(r.Body, `"total_funds_fen":5000`) {
		t.Errorf("balance after retries: %s", r.Body)
	}
}

// TestLedgerPhotos: photos go through the evidence pipeline (metadata removed), are
// cited by entries, and belong to their organization.
func TestLedgerPhotos(t *testing.T) {
	const code = "51330782MJ00000500"
	srv.engine.Orgs.Put(routing.Organization{CreditCode: code, Name: "义乌市某互助会", Type: "社会团体", RegDivision: "330782",
		Division: "330782", Status: routing.OrgNormal})
	a, _ := staffLogin(t, accounts.RoleLiaison, "", "330782")
	body, ct := multipartBody(t, nil, []filePart{{"file", "rice.jpg", testJPEG(t)}})
	r := do(t, req{method: "POST", path: "/v1/orgs/" + code + "/ledger/photos", body: body, contentType: ct, token: a})
	wantStatus(t, r, 201)
	var up struct {
		Photos []string `json:"photos"`
		Files  []struct {
			MetadataRemoved bool `json:"metadata_removed"`
		} `json:"files"`
	}
	r.json(t, &up)
	if len(up.Photos) != 1 || !up.Files[0].MetadataRemoved {
		t.Fatalf("upload: %s", r.Body)
	}
	entry := map[string]any{"kind": "income", "income_type": "goods", "date": "2026-11-04", "donor": map[string]any{"anonymous": true},
		"goods": map[string]any{"item": "食用油", "quantity": 5, "unit": "桶", "valuation_fen": 40000}, "photos": up.Photos}
	r = postJSON(t, "/v1/orgs/"+code+"/ledger/entries", a, entry)
	wantStatus(t, r, 201)
	if !containsString(r.Body, up.Photos[0]) {
		t.Errorf("entry: %s", r.Body)
	}
	entry["photos"] = []string{"nope/nope"}
	wantStatus(t, postJSON(t, "/v1/orgs/"+code+"/ledger/entries", a, entry), 400)
	// Another organization's photo cannot be cited.
	const other = "51330782MJ00000600"
	srv.engine.Orgs.Put(routing.Organization{CreditCode: other, Name: "义乌市某联合会", Type: "社会团体", RegDivision: "330782", Division: "330782", Status: routing.OrgNormal})
	entry["photos"] = up.Photos
	wantStatus(t, postJSON(t, "/v1/orgs/"+other+"/ledger/entries", a, entry), 400)
	// Bad uploads change nothing.
	body, ct = multipartBody(t, [][2]string{{"note", "x"}}, nil)
	wantStatus(t, do(t, req{method: "POST", path: "/v1/orgs/" + code + "/ledger/photos", body: body, contentType: ct, token: a}), 400)
	wantStatus(t, do(t, req{method: "POST", path: "/v1/orgs/" + code + "/ledger/photos", body: strings.NewReader("x"), contentType: "text/plain", token: a}), 415)
	staff, _ := staffLogin(t, accounts.RoleStaff, "330782-mz", "")
	body, ct = multipartBody(t, nil, []filePart{{"file", "rice.jpg", testJPEG(t)}})
	wantStatus(t, do(t, req{method: "POST", path: "/v1/orgs/" + code + "/ledger/photos", body: body, contentType: ct, token: staff}), 403)
}

// TestStatementPublishing: a liaison publishes a month once it is over; a month with
// entries left unpublished past the 10th opens a case by itself.
func TestStatementPublishing(t *testing.T) {
	const code = "51330782MJ00000700"
	org := routing.Organization{CreditCode: code, Name: "义乌市某公益协会", Type: "社会团体", RegDivision: "330782", Division: "330782", Status: routing.OrgNormal}
	srv.engine.Orgs.Put(org)
	if _, _, err := sqlite.NewOrgStore(srv.st.sqlite).UpsertOrganizations(t.Context(), []routing.Organization{org}); err != nil {
		t.Fatal(err)
	}
	a, _ := staffLogin(t, accounts.RoleLiaison, "", "330782")
	for _, date := range []string{"2026-09-03", "2026-10-03"} {
		wantStatus(t, postJSON(t, "/v1/orgs/"+code+"/ledger/entries", a, map[string]any{"kind": "income", "income_type": "transfer",
			"amount_fen": 1000, "date": date, "receipt_number": "R-" + date, "donor": map[string]any{"anonymous": true}}), 201)
	}
	pub := "/v1/orgs/" + code + "/ledger/statements/"
	wantStatus(t, postJSON(t, pub+"2026-10/publish", a, ""), 201)
	wantStatus(t, postJSON(t, pub+"2026-10/publish", a, ""), 409)
	wantStatus(t, postJSON(t, pub+"2099-01/publish", a, ""), 400)
	wantStatus(t, postJSON(t, pub+"2026-13/publish", a, ""), 400)
	r := do(t, req{method: "GET", path: "/v1/public/orgs/" + code + "/donations?month=2026-10"})
	if !containsString(r.Body, `"published":true`) || !containsString(r.Body, `"content_hash"`) {
		t.Errorf("statement: %s", r.Body)
	}
	wantStatus(t, do(t, req{method: "GET", path: "/v1/public/orgs/" + code + "/donations?month=2026-09"}), 404)
	// September was never published and it is past 10 October: one case, once.
	for range 2 {
		if _, err := srv.ledger.RunAlerts(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	warns, err := sqlite.NewLedgerStore(srv.st.sqlite).OrgAlerts(t.Context(), code)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, w := range warns {
		if w.Hit.Rule == "statement_not_published" {
			n++
			if w.Hit.Period != "2026-09" || w.CaseNumber == "" {
				t.Errorf("warning %+v", w)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d unpublished-statement warnings, want 1 (September only): %+v", n, warns)
	}
}
