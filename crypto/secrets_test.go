package crypto

import (
	"bytes"
	"testing"
)

func TestTOTPSecretSeal(t *testing.T) {
	p, err := NewPepper(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewPepper(bytes.Repeat([]byte{8}, 32))
	secret := []byte("12345678901234567890")
	sealed := p.SealTOTPSecret("u1", secret)
	if bytes.Contains(sealed, secret) {
		t.Fatal("sealed value contains the secret")
	}
	if again := p.SealTOTPSecret("u1", secret); bytes.Equal(again, sealed) {
		t.Error("two seals of one secret are equal: the nonce is not random")
	}
	got, err := p.OpenTOTPSecret("u1", sealed)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("open = %q, %v", got, err)
	}
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	for name, open := range map[string]func() ([]byte, error){
		"another account": func() ([]byte, error) { return p.OpenTOTPSecret("u2", sealed) },
		"another pepper":  func() ([]byte, error) { return other.OpenTOTPSecret("u1", sealed) },
		"tampered":        func() ([]byte, error) { return p.OpenTOTPSecret("u1", flipped) },
		"truncated":       func() ([]byte, error) { return p.OpenTOTPSecret("u1", sealed[:10]) },
		"empty":           func() ([]byte, error) { return p.OpenTOTPSecret("u1", nil) },
	} {
		if _, err := open(); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
}

func TestNextRefreshToken(t *testing.T) {
	p, _ := NewPepper(bytes.Repeat([]byte{7}, 32))
	other, _ := NewPepper(bytes.Repeat([]byte{8}, 32))
	a, b := p.NextRefreshToken("s1.x"), p.NextRefreshToken("s1.x")
	if a != b {
		t.Error("not deterministic")
	}
	if a == p.NextRefreshToken("s1.y") || a == p.NextRefreshToken("s2.x") || a == other.NextRefreshToken("s1.x") {
		t.Error("different inputs or keys give the same next token")
	}
	if a == p.HashRefreshToken("s1.x") {
		t.Error("the next token equals the stored hash of the old one")
	}
}
