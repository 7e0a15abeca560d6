package crypto

import (
	"bytes"
	"testing"
)

func TestReceiptsAdapter(t *testing.T) {
	p := mustPepper(t, testSecret(3))
	r := Receipts{Pepper: p}
	code := r.NewCode()
	if norm, ok := r.Normalize(r.Format(code)); !ok || norm != code {
		t.Fatalf("Normalize(Format(%q)) = %q, %v", code, norm, ok)
	}
	if !bytes.Equal(r.Hash(code), p.HashReceipt(code)) || r.KeyedHash("k") != p.KeyedHash("k") {
		t.Error("adapter hashes differ from the Pepper's")
	}
	if got, err := r.OpenCode(r.SealCode(code, "k"), "k"); err != nil || got != code {
		t.Errorf("OpenCode(SealCode) = %q, %v", got, err)
	}
}

func TestPasswordsAdapter(t *testing.T) {
	var pw Passwords
	h, err := pw.Hash("secret-1")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := pw.Check(h, "secret-1"); !ok || err != nil {
		t.Errorf("Check(right) = %v, %v", ok, err)
	}
	if ok, _ := pw.Check(h, "secret-2"); ok {
		t.Error("Check(wrong) = true")
	}
	pw.Dummy()
}
