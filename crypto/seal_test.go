package crypto

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"filippo.io/age"
	"filippo.io/age/armor"

	qingfeng "github.com/qingfeng-zj/qingfeng"
)

// custodian is a generated key pair standing in for one 保密员.
type custodian struct{ identity, recipient string }

func newCustodian(t testing.TB) custodian {
	t.Helper()
	id, rcpt, err := GenerateCustodianKey()
	if err != nil {
		t.Fatal(err)
	}
	return custodian{id, rcpt}
}

func newSealer(t testing.TB, cfg map[string][]string) *Sealer {
	t.Helper()
	s, err := NewSealer(cfg)
	if err != nil {
		t.Fatalf("NewSealer: %v", err)
	}
	return s
}

// sealTo encrypts plaintext with plain age to arbitrary recipients, to stand in for a
// device that sealed an identity itself.
func sealTo(t testing.TB, plaintext []byte, rs ...age.Recipient) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, rs...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plaintext); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func wantCode(t *testing.T, err error, code string) *qingfeng.Error {
	t.Helper()
	var e *qingfeng.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *qingfeng.Error", err, err)
	}
	if e.Code != code {
		t.Fatalf("error code %q, want %q (%v)", e.Code, code, err)
	}
	if !hasHan(e.Message) {
		t.Errorf("user-facing message %q is not Chinese", e.Message)
	}
	return e
}

func hasHan(s string) bool {
	for _, r := range s {
		if r >= 0x4e00 && r <= 0x9fff {
			return true
		}
	}
	return false
}

func TestGenerateCustodianKey(t *testing.T) {
	c := newCustodian(t)
	if !strings.HasPrefix(c.identity, "AGE-SECRET-KEY-PQ-1") {
		t.Errorf("identity %.24q... is not a hybrid identity", c.identity)
	}
	if !strings.HasPrefix(c.recipient, "age1pq1") {
		t.Errorf("recipient %.16q... is not a hybrid recipient", c.recipient)
	}
	id, err := age.ParseHybridIdentity(c.identity)
	if err != nil {
		t.Fatal(err)
	}
	if got := id.Recipient().String(); got != c.recipient {
		t.Error("recipient does not belong to the identity")
	}
	if other := newCustodian(t); other.identity == c.identity {
		t.Error("two generated keys are equal")
	}
}

func TestNewSealerRejectsBadConfig(t *testing.T) {
	good := newCustodian(t).recipient
	x25519, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	secret := newCustodian(t).identity
	many := make([]string, MaxRecipientsPerSeal+1)
	for i := range many {
		many[i] = newCustodian(t).recipient
	}
	tests := []struct {
		name     string
		cfg      map[string][]string
		contains []string // the error must say these
	}{
		{"non-digit key", map[string][]string{"zj": {good}}, []string{`"zj"`}},
		{"one-digit key", map[string][]string{"3": {good}}, []string{`"3"`}},
		{"too long key", map[string][]string{"3307820010011": {good}}, []string{"3307820010011"}},
		{"empty list", map[string][]string{"3307": {}}, []string{"3307", "no recipients"}},
		{"empty recipient", map[string][]string{"3307": {good, " "}}, []string{"3307", "#2", "empty"}},
		{"x25519 recipient", map[string][]string{"330782": {x25519.Recipient().String()}}, []string{"330782", "not post-quantum", x25519.Recipient().String()[:16]}},
		{"ssh key", map[string][]string{"*": {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHjh"}}, []string{`division *`, "ssh-ed25519 AAAA"}},
		{"corrupt pq recipient", map[string][]string{"33": {good[:len(good)-3] + "qqq"}}, []string{"division 33", "malformed", good[:16]}},
		{"private key pasted", map[string][]string{"3307": {secret}}, []string{"3307", "PRIVATE key"}},
		{"private key lowercase", map[string][]string{"3307": {strings.ToLower(secret)}}, []string{"PRIVATE key"}},
		{"too many with fallback", map[string][]string{"3307": many[:MaxRecipientsPerSeal], "*": many[MaxRecipientsPerSeal:]}, []string{"3307", "17 recipients"}},
		{"too many fallback", map[string][]string{"*": many}, []string{"17 recipients"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSealer(tt.cfg)
			if err == nil {
				t.Fatal("NewSealer accepted a bad configuration")
			}
			for _, want := range tt.contains {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			// A recipient is ~2,000 characters: errors quote it truncated.
			if len(err.Error()) > 400 {
				t.Errorf("error is %d characters long: %q", len(err.Error()), err)
			}
			// A pasted private key must never end up in a log.
			if strings.Contains(strings.ToUpper(err.Error()), strings.ToUpper(secret[:30])) {
				t.Errorf("error quotes a private key: %q", err)
			}
		})
	}
}

func TestNewSealerTrimsAndDeduplicates(t *testing.T) {
	a := newCustodian(t)
	s := newSealer(t, map[string][]string{
		"3307": {" " + a.recipient + "\n", a.recipient},
		"*":    {a.recipient},
	})
	got, err := s.RecipientsFor("330782")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{a.recipient}) {
		t.Errorf("RecipientsFor = %d recipients, want the one custodian once", len(got))
	}
	sealed, err := s.Seal(t.Context(), "330782", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := InspectSealed(sealed.Ciphertext)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.StanzaTypes) != 1 {
		t.Errorf("sealed with %d stanzas, want 1", len(info.StanzaTypes))
	}
}

func TestSealOpenRoundtrip(t *testing.T) {
	a, b, stranger := newCustodian(t), newCustodian(t), newCustodian(t)
	s := newSealer(t, map[string][]string{"330782": {a.recipient, b.recipient}})
	fixed := time.Date(2026, 3, 1, 8, 0, 0, 0, time.FixedZone("CST", 8*3600))
	s.now = func() time.Time { return fixed }

	identity := []byte(`{"name":"张三","mobile":"13800000000","resident_id":"330782199001011234"}`)
	sealed, err := s.Seal(t.Context(), "330782", identity)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed.Ciphertext, []byte("张三")) || bytes.Contains(sealed.Ciphertext, []byte("13800000000")) {
		t.Fatal("ciphertext contains plaintext")
	}
	if !bytes.HasPrefix(sealed.Ciphertext, []byte("age-encryption.org/v1\n")) {
		t.Error("ciphertext is not a binary age file")
	}
	if !slices.Equal(sealed.Recipients, []string{a.recipient, b.recipient}) {
		t.Error("Recipients does not list the two custodians in order")
	}
	if !sealed.SealedAt.Equal(fixed) || sealed.SealedAt.Location() != time.UTC {
		t.Errorf("SealedAt = %v, want %v in UTC", sealed.SealedAt, fixed)
	}
	if sealed.SealedOnDevice {
		t.Error("SealedOnDevice set by the server")
	}
	if err := s.CheckSealed(sealed.Ciphertext); err != nil {
		t.Errorf("CheckSealed refuses Seal's own output: %v", err)
	}
	for _, c := range []custodian{a, b} {
		got, err := Open(c.identity, sealed.Ciphertext)
		if err != nil {
			t.Fatalf("custodian cannot open: %v", err)
		}
		if !bytes.Equal(got, identity) {
			t.Errorf("opened %q, want %q", got, identity)
		}
	}
	if _, err := Open(stranger.identity, sealed.Ciphertext); err == nil {
		t.Error("a stranger opened the identity")
	} else if strings.Contains(err.Error(), stranger.identity[:30]) {
		t.Error("Open's error quotes the private key")
	}
	again, err := s.Seal(t.Context(), "330782", identity)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(again.Ciphertext, sealed.Ciphertext) {
		t.Error("two seals of the same identity are equal: sealing is not randomized")
	}
}

func TestOpenIdentityFileAndArmor(t *testing.T) {
	a := newCustodian(t)
	sealed := sealTo(t, []byte("李四"), mustHybrid(t, a.recipient))
	keyFile := "# created: 2026-03-01\n# public key: " + a.recipient + "\n" + a.identity + "\n"
	got, err := Open(keyFile, sealed)
	if err != nil || string(got) != "李四" {
		t.Fatalf("Open(identity file) = %q, %v", got, err)
	}
	var armored bytes.Buffer
	w := armor.NewWriter(&armored)
	w.Write(sealed)
	w.Close()
	got, err = Open(a.identity, armored.Bytes())
	if err != nil || string(got) != "李四" {
		t.Fatalf("Open(armored) = %q, %v", got, err)
	}
	if _, err := Open("not a key", sealed); err == nil {
		t.Error("Open accepted a malformed identity")
	}
}

func TestOpenRefusesLargePlaintext(t *testing.T) {
	a := newCustodian(t)
	sealed := sealTo(t, make([]byte, MaxSealedBytes+1), mustHybrid(t, a.recipient))
	if _, err := Open(a.identity, sealed); err == nil {
		t.Error("Open returned a plaintext larger than MaxSealedBytes")
	}
}

func mustHybrid(t testing.TB, s string) *age.HybridRecipient {
	t.Helper()
	r, err := age.ParseHybridRecipient(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSealChoosesLongestPrefixPlusFallback(t *testing.T) {
	prov, city, county, fallback := newCustodian(t), newCustodian(t), newCustodian(t), newCustodian(t)
	withFallback := map[string][]string{
		"33":     {prov.recipient},
		"3307":   {city.recipient},
		"330782": {county.recipient},
		"*":      {fallback.recipient},
	}
	noFallback := map[string][]string{
		"33":     {prov.recipient},
		"3307":   {city.recipient},
		"330782": {county.recipient},
	}
	all := []custodian{prov, city, county, fallback}
	tests := []struct {
		name     string
		cfg      map[string][]string
		division string
		want     []custodian // exactly these can open, in Recipients order
	}{
		{"township under county", withFallback, "330782001", []custodian{county, fallback}},
		{"county itself", withFallback, "330782", []custodian{county, fallback}},
		{"other county of the city", withFallback, "330783", []custodian{city, fallback}},
		{"other city of the province", withFallback, "330100", []custodian{prov, fallback}},
		{"outside the province", withFallback, "310101", []custodian{fallback}},
		{"no division", withFallback, "", []custodian{fallback}},
		{"township, no fallback", noFallback, "330782001", []custodian{county}},
		{"other city, no fallback", noFallback, "330100", []custodian{prov}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSealer(t, tt.cfg)
			sealed, err := s.Seal(t.Context(), tt.division, []byte("identity"))
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, c := range tt.want {
				want = append(want, c.recipient)
			}
			if !slices.Equal(sealed.Recipients, want) {
				t.Errorf("Recipients = %d keys, not the expected %d in order", len(sealed.Recipients), len(want))
			}
			rs, err := s.RecipientsFor(tt.division)
			if err != nil || !slices.Equal(rs, want) {
				t.Errorf("RecipientsFor disagrees with Seal: %v", err)
			}
			for _, c := range all {
				_, err := Open(c.identity, sealed.Ciphertext)
				if canOpen, should := err == nil, slices.Contains(tt.want, c); canOpen != should {
					t.Errorf("custodian %d: can open = %v, want %v", slices.Index(all, c), canOpen, should)
				}
			}
		})
	}
}

func TestSealWithoutCustodiansFails(t *testing.T) {
	s := newSealer(t, map[string][]string{"3307": {newCustodian(t).recipient}})
	for _, division := range []string{"330100", "33", "", "310101001"} {
		sealed, err := s.Seal(t.Context(), division, []byte("张三 13800000000"))
		if sealed != nil {
			t.Fatalf("division %q: Seal returned a result with its error", division)
		}
		e := wantCode(t, err, qingfeng.EUNAVAILABLE)
		if !strings.Contains(e.Message, "保密员") {
			t.Errorf("message %q does not explain that no custodian is configured", e.Message)
		}
		var buf bytes.Buffer
		w, err := s.SealStream(t.Context(), division, &buf)
		if w != nil || buf.Len() != 0 {
			t.Errorf("division %q: SealStream returned a writer or wrote output", division)
		}
		wantCode(t, err, qingfeng.EUNAVAILABLE)
		_, err = s.RecipientsFor(division)
		wantCode(t, err, qingfeng.EUNAVAILABLE)
	}
	empty := newSealer(t, nil)
	_, err := empty.Seal(t.Context(), "330782", []byte("x"))
	wantCode(t, err, qingfeng.EUNAVAILABLE)
}

func TestSealRefusesBadInput(t *testing.T) {
	s := newSealer(t, map[string][]string{"*": {newCustodian(t).recipient}})
	_, err := s.Seal(t.Context(), "33a782", []byte("x"))
	wantCode(t, err, qingfeng.EINVALID)
	_, err = s.Seal(t.Context(), "330782", make([]byte, MaxIdentityBytes+1))
	wantCode(t, err, qingfeng.EINVALID)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Seal(ctx, "330782", []byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Seal with a cancelled context: %v", err)
	}
	if _, err := s.SealStream(ctx, "330782", io.Discard); !errors.Is(err, context.Canceled) {
		t.Errorf("SealStream with a cancelled context: %v", err)
	}
}

// Whatever Seal accepts must pass CheckSealed, even at the limits.
func TestSealOutputAtLimitsPassesCheck(t *testing.T) {
	many := make([]string, MaxRecipientsPerSeal)
	for i := range many {
		many[i] = newCustodian(t).recipient
	}
	s := newSealer(t, map[string][]string{"3307": many[:MaxRecipientsPerSeal/2], "*": many[MaxRecipientsPerSeal/2:]})
	sealed, err := s.Seal(t.Context(), "330782", bytes.Repeat([]byte("名"), MaxIdentityBytes/3))
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed.Recipients) != MaxRecipientsPerSeal {
		t.Fatalf("sealed to %d recipients, want %d", len(sealed.Recipients), MaxRecipientsPerSeal)
	}
	if err := s.CheckSealed(sealed.Ciphertext); err != nil {
		t.Errorf("CheckSealed refuses a %d-byte seal to %d recipients: %v", len(sealed.Ciphertext), MaxRecipientsPerSeal, err)
	}
}

func TestSealStream(t *testing.T) {
	a := newCustodian(t)
	s := newSealer(t, map[string][]string{"330782": {a.recipient}})
	// Several 64 KiB chunks: an evidence original is a photo, not an identity.
	original := bytes.Repeat([]byte("EXIF GPS 30.2741N 120.1551E "), 10000)
	var dst bytes.Buffer
	w, err := s.SealStream(t.Context(), "330782001", &dst)
	if err != nil {
		t.Fatal(err)
	}
	for chunk := range slices.Chunk(original, 7000) {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(dst.Bytes(), []byte("EXIF GPS")) {
		t.Fatal("sealed stream contains plaintext")
	}
	id, _ := age.ParseHybridIdentity(a.identity)
	r, err := age.Decrypt(&dst, id)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, original) {
		t.Errorf("opened %d bytes, want the %d written", len(got), len(original))
	}
}

// A Sealer is shared by every request; run under -race this checks that sealing
// concurrently shares nothing mutable.
func TestSealConcurrent(t *testing.T) {
	a := newCustodian(t)
	s := newSealer(t, map[string][]string{"3307": {a.recipient}, "*": {newCustodian(t).recipient}})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			want := []byte(strings.Repeat("证", i+1))
			sealed, err := s.Seal(t.Context(), "330782", want)
			if err != nil {
				t.Error(err)
				return
			}
			if got, err := Open(a.identity, sealed.Ciphertext); err != nil || !bytes.Equal(got, want) {
				t.Errorf("goroutine %d: opened %q, %v", i, got, err)
			}
		})
	}
	wg.Wait()
}

// fixtures are sealed files of various kinds for the CheckSealed tests.
type fixtures struct {
	hybrid, x25519, scrypt, empty []byte
	hybridHeaderLen               int
}

func newFixtures(t testing.TB) fixtures {
	t.Helper()
	a, b := newCustodian(t), newCustodian(t)
	x, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	sr, err := age.NewScryptRecipient("reporter's passphrase")
	if err != nil {
		t.Fatal(err)
	}
	sr.SetWorkFactor(10) // keep the test fast; the value does not matter here
	identity := bytes.Repeat([]byte("实名"), 30)
	f := fixtures{
		hybrid: sealTo(t, identity, mustHybrid(t, a.recipient), mustHybrid(t, b.recipient)),
		x25519: sealTo(t, identity, x.Recipient()),
		scrypt: sealTo(t, identity, sr),
		empty:  sealTo(t, nil, mustHybrid(t, a.recipient)),
	}
	hdr, err := age.ExtractHeader(bytes.NewReader(f.hybrid))
	if err != nil {
		t.Fatal(err)
	}
	f.hybridHeaderLen = len(hdr)
	return f
}

func TestInspectSealedAccepts(t *testing.T) {
	f := newFixtures(t)
	tests := []struct {
		name        string
		in          []byte
		types       []string
		postQuantum bool
	}{
		{"hybrid, two custodians", f.hybrid, []string{"mlkem768x25519", "mlkem768x25519"}, true},
		{"empty plaintext", f.empty, []string{"mlkem768x25519"}, true},
		{"x25519 from an old device", f.x25519, []string{"X25519"}, false},
		{"scrypt", f.scrypt, []string{"scrypt"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := InspectSealed(tt.in)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !slices.Equal(info.StanzaTypes, tt.types) || info.PostQuantum != tt.postQuantum {
				t.Errorf("info = %+v, want types %v, post-quantum %v", info, tt.types, tt.postQuantum)
			}
			if hdr, _ := age.ExtractHeader(bytes.NewReader(tt.in)); info.HeaderBytes != len(hdr) {
				t.Errorf("HeaderBytes = %d, want %d", info.HeaderBytes, len(hdr))
			}
		})
	}
}

func TestInspectSealedRejects(t *testing.T) {
	f := newFixtures(t)
	h := f.hybrid
	hdr := h[:f.hybridHeaderLen]

	var armored bytes.Buffer
	aw := armor.NewWriter(&armored)
	aw.Write(h)
	aw.Close()

	oversize := sealTo(t, make([]byte, MaxSealedBytes), mustHybrid(t, newCustodian(t).recipient))

	replace := func(old, new string) []byte {
		if !bytes.Contains(h, []byte(old)) {
			t.Fatalf("fixture does not contain %q", old)
		}
		return bytes.Replace(slices.Clone(h), []byte(old), []byte(new), 1)
	}
	// The first stanza's body (a 32-byte wrapped file key, one 43-column line) cut to
	// 30 bytes: still well-formed for age's header parser, useless to a custodian.
	shortBody := func() []byte {
		lines := slices.Collect(bytes.Lines(hdr))
		if !bytes.HasPrefix(lines[1], []byte("-> mlkem768x25519 ")) || len(lines[2]) != 44 {
			t.Fatalf("unexpected fixture layout: %q", lines[2])
		}
		lines[2] = append(slices.Clone(lines[2][:40]), '\n')
		return append(bytes.Join(lines, nil), h[len(hdr):]...)
	}()

	tests := []struct {
		name string
		in   []byte
	}{
		{"nil", nil},
		{"garbage", []byte("这不是密文")},
		{"zeros", make([]byte, 2048)},
		{"armored", armored.Bytes()},
		{"armored after whitespace", append([]byte("\n  "), armored.Bytes()...)},
		{"oversize", oversize},
		{"intro only", []byte("age-encryption.org/v1\n")},
		{"header only", hdr},
		{"header and nonce", h[:len(hdr)+payloadNonceSize]},
		{"header, nonce and 15 bytes", h[:len(hdr)+payloadNonceSize+payloadTagSize-1]},
		{"wrong version", replace("age-encryption.org/v1", "age-encryption.org/v2")},
		{"CRLF intro", replace("age-encryption.org/v1\n", "age-encryption.org/v1\r\n")},
		{"no MAC line", bytes.Replace(slices.Clone(h), []byte("\n--- "), []byte("\n-x- "), 1)},
		{"stanza prefix mangled", replace("-> mlkem768x25519", "->  mlkem768x25519")},
		{"stanza with extra argument", replace("-> mlkem768x25519 ", "-> mlkem768x25519 AAAA ")},
		{"stanza body truncated", shortBody},
		{"plaintext in front", append([]byte("name=张三\n"), h...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := InspectSealed(tt.in)
			if err == nil {
				t.Fatalf("accepted (%+v)", info)
			}
			wantCode(t, err, qingfeng.EINVALID)
		})
	}

	// Every truncation inside the header or before the first tag is refused. Later
	// truncations cannot be told from a shorter plaintext without the key; a
	// custodian's age refuses them by their tag.
	for n := range len(hdr) + payloadNonceSize + payloadTagSize {
		if err := (&Sealer{}).CheckSealed(h[:n]); err == nil {
			t.Fatalf("accepted the first %d of %d bytes", n, len(h))
		}
	}
}

func TestInspectSealedRejectsMalformedNativeStanzas(t *testing.T) {
	f := newFixtures(t)
	// A hybrid stanza whose argument is a valid X25519 share (32 bytes), not 1,120
	// bytes: age's header parser accepts it; a custodian's age would not.
	x, _ := age.GenerateX25519Identity()
	xFile := sealTo(t, []byte("x"), x.Recipient())
	forged := bytes.Replace(slices.Clone(xFile), []byte("-> X25519 "), []byte("-> mlkem768x25519 "), 1)
	if _, err := age.ExtractHeader(bytes.NewReader(forged)); err != nil {
		t.Fatalf("fixture is not a parseable header: %v", err)
	}
	_, err := InspectSealed(forged)
	wantCode(t, err, qingfeng.EINVALID)

	// The same X25519 stanza relabelled from a hybrid file.
	relabelled := bytes.Replace(slices.Clone(f.empty), []byte("-> mlkem768x25519 "), []byte("-> X25519 "), 1)
	_, err = InspectSealed(relabelled)
	wantCode(t, err, qingfeng.EINVALID)
}

func TestDearmor(t *testing.T) {
	f := newFixtures(t)
	var armored bytes.Buffer
	aw := armor.NewWriter(&armored)
	aw.Write(f.hybrid)
	aw.Close()

	bin, err := Dearmor(armored.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bin, f.hybrid) {
		t.Error("Dearmor did not restore the binary file")
	}
	if _, err := InspectSealed(bin); err != nil {
		t.Errorf("dearmored file refused: %v", err)
	}
	if same, err := Dearmor(f.hybrid); err != nil || !bytes.Equal(same, f.hybrid) {
		t.Errorf("Dearmor changed a binary file: %v", err)
	}
	broken := bytes.Replace(armored.Bytes(), []byte("-----END AGE"), []byte("-----END XXX"), 1)
	_, err = Dearmor(broken)
	wantCode(t, err, qingfeng.EINVALID)
}

func TestCheckSealedMessagesAreChinese(t *testing.T) {
	// wantCode checks it; this pins that the English text is set too, for clients
	// asking for English.
	_, err := InspectSealed([]byte("x"))
	var e *qingfeng.Error
	if !errors.As(err, &e) || e.English == "" || !utf8.ValidString(e.Message) {
		t.Errorf("error %v lacks an English message", err)
	}
}

// FuzzCheckSealed checks that InspectSealed never panics, and that whatever it accepts
// age itself can parse and would try to decrypt: a file the server accepts must never
// be one a custodian's age refuses as malformed.
func FuzzCheckSealed(f *testing.F) {
	fx := newFixtures(f)
	f.Add(fx.hybrid)
	f.Add(fx.x25519)
	f.Add(fx.scrypt)
	f.Add(fx.empty)
	f.Add(fx.hybrid[:fx.hybridHeaderLen])
	f.Add([]byte("age-encryption.org/v1\n-> X25519 AAAA\n\n--- AAAA\n"))
	f.Add([]byte("-----BEGIN AGE ENCRYPTED FILE-----\n"))
	f.Add([]byte{})

	hybridID, err := age.GenerateHybridIdentity()
	if err != nil {
		f.Fatal(err)
	}
	xID, err := age.GenerateX25519Identity()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		info, err := InspectSealed(in)
		if err != nil {
			var e *qingfeng.Error
			if !errors.As(err, &e) || e.Code != qingfeng.EINVALID {
				t.Fatalf("refusal is not an EINVALID *qingfeng.Error: %v", err)
			}
			return
		}
		if len(in) > MaxSealedBytes || !bytes.HasPrefix(in, []byte(ageIntro)) {
			t.Fatal("accepted input outside the size limit or without the intro")
		}
		if len(info.StanzaTypes) == 0 || info.HeaderBytes+payloadNonceSize+payloadTagSize > len(in) {
			t.Fatalf("accepted %+v for %d bytes", info, len(in))
		}
		hdr, err := age.ExtractHeader(bytes.NewReader(in))
		if err != nil || len(hdr) != info.HeaderBytes {
			t.Fatalf("age disagrees on the header: %v", err)
		}
		_, err = age.Decrypt(bytes.NewReader(in), hybridID, xID)
		if err == nil {
			t.Fatal("decrypted with keys generated for this test")
		}
		if strings.Contains(err.Error(), "failed to read header") {
			t.Fatalf("age refuses the header that InspectSealed accepted: %v", err)
		}
	})
}

// BenchmarkSealIdentity measures sealing a typical (~200-byte) identity to two hybrid
// custodians: the CPU cost a real-name report adds to submission.
func BenchmarkSealIdentity(b *testing.B) {
	s := newSealer(b, map[string][]string{
		"330782": {newCustodian(b).recipient},
		"*":      {newCustodian(b).recipient},
	})
	identity := []byte(`{"name":"张三","mobile":"13800000000","resident_id":"330782199001011234","preferred_contact":"工作日晚上打电话，不要发短信"}` + strings.Repeat(" ", 40))
	b.SetBytes(int64(len(identity)))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Seal(ctx, "330782001", identity); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDemoSealsOnlyUncoveredDivisions: the demo key is sealed to only where no
// configured prefix, no fallback and no retired prefix covers the division, and never
// together with a real custodian.
func TestDemoSealsOnlyUncoveredDivisions(t *testing.T) {
	demo, yiwu := newCustodian(t), newCustodian(t)
	s, err := newSealer(t, map[string][]string{"330782": {yiwu.recipient}}).WithDemo(demo.recipient, []string{"330782", "3301"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Demo() != demo.recipient {
		t.Fatalf("Demo() = %q", s.Demo())
	}
	for _, tc := range []struct {
		division string
		demo     bool // sealed to the demo key alone
		none     bool // no custodian at all (retired, none left)
	}{
		{"330782", false, false}, {"330782001", false, false},
		{"330326", true, false}, {"330300", true, false}, {"33", true, false},
		{"330102", false, true}, {"3301", false, true}, // retired: its custodian was revoked
	} {
		if got := s.UsesDemo(tc.division); got != tc.demo {
			t.Errorf("UsesDemo(%s) = %v", tc.division, got)
		}
		rs, err := s.RecipientsFor(tc.division)
		switch {
		case tc.none:
			wantCode(t, err, qingfeng.EUNAVAILABLE)
		case tc.demo && (err != nil || len(rs) != 1 || rs[0] != demo.recipient):
			t.Errorf("%s: recipients %d, %v; want the demo key alone", tc.division, len(rs), err)
		case !tc.demo && (err != nil || slices.Contains(rs, demo.recipient)):
			t.Errorf("%s: the demo key is sealed to beside a real custodian (%v)", tc.division, err)
		}
	}
	// A fallback (province-wide) custodian retires it everywhere.
	all, _ := newSealer(t, map[string][]string{"*": {yiwu.recipient}}).WithDemo(demo.recipient, nil)
	if all.UsesDemo("330326") {
		t.Error("the demo key is used beside a * custodian")
	}
	if _, err := s.WithDemo("AGE-SECRET-KEY-1XYZ", nil); err == nil {
		t.Error("a private key accepted as the demo recipient")
	}
}

// TestCanonicalRecipient: one key has one spelling — upper-case bech32 and surrounding
// white space are the same key; anything else is not a key.
func TestCanonicalRecipient(t *testing.T) {
	k := newCustodian(t).recipient
	for _, same := range []string{k, strings.ToUpper(k), " \t" + k + "\n"} {
		if got, err := CanonicalRecipient(same); err != nil || got != k {
			t.Errorf("CanonicalRecipient(%.12q…) = %.12q…, %v", same, got, err)
		}
	}
	for _, bad := range []string{k + "\u200b", "\ufeff" + k, k[:20] + strings.ToUpper(k[20:30]) + k[30:], "ａ" + k[1:], k[:len(k)-1]} {
		if _, err := CanonicalRecipient(bad); err == nil {
			t.Errorf("a variant of a key accepted: %.16q…", bad)
		}
	}
}
