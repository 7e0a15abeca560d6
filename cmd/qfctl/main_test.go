package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	qfcrypto "github.com/qingfeng-zj/qingfeng/crypto"
)

func TestKeysNewThenOpen(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "custodian.key")
	var out, errb bytes.Buffer
	if code := run([]string{"keys", "new", "-o", keyFile}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	recipient := strings.TrimSpace(out.String())
	if !strings.HasPrefix(recipient, "age1pq1") {
		t.Fatalf("recipient %q", recipient)
	}
	if fi, _ := os.Stat(keyFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", fi.Mode().Perm())
	}
	// Refuses to overwrite an existing key.
	if code := run([]string{"keys", "new", "-o", keyFile}, nil, &out, &errb); code == 0 {
		t.Error("overwrote an existing key file")
	}
	s, err := qfcrypto.NewSealer(map[string][]string{"330782": {recipient}})
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.Seal(context.Background(), "330782", []byte(`{"name":"张三"}`))
	if err != nil {
		t.Fatal(err)
	}
	sealedFile := filepath.Join(dir, "identity.age")
	os.WriteFile(sealedFile, sealed.Ciphertext, 0o600)
	out.Reset()
	if code := run([]string{"open", "-i", keyFile, sealedFile}, nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "张三") {
		t.Fatalf("open: exit %d, %q %s", code, out.String(), errb.String())
	}

	// Another custodian's key cannot open it; tampered ciphertext does not open.
	other := filepath.Join(dir, "other.key")
	run([]string{"keys", "new", "-o", other}, nil, &bytes.Buffer{}, &bytes.Buffer{})
	if code := run([]string{"open", "-i", other, sealedFile}, nil, &bytes.Buffer{}, &bytes.Buffer{}); code == 0 {
		t.Error("a wrong key opened the identity")
	}
	tampered := append([]byte(nil), sealed.Ciphertext...)
	tampered[len(tampered)-5] ^= 1
	if code := run([]string{"open", "-i", keyFile}, bytes.NewReader(tampered), &bytes.Buffer{}, &bytes.Buffer{}); code == 0 {
		t.Error("tampered ciphertext opened")
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"keys"}, {"frobnicate"}, {"open"}} {
		if code := run(args, nil, &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
