package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigDefaults(t *testing.T) {
	c, err := ConfigFromEnv(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || c.DataDir != "./data" || c.MaxFileBytes != 50<<20 || c.MongoURI != "" || c.S3Endpoint != "" {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "pepper")
	os.WriteFile(secretFile, []byte("c2VjcmV0\n"), 0o600)
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"QF_MAX_FILE_BYTES": "lots"}, "QF_MAX_FILE_BYTES"},
		{map[string]string{"QF_MAX_FILE_BYTES": "-5"}, "QF_MAX_FILE_BYTES"},
		{map[string]string{"QF_ACCESS_TOKEN_TTL": "forever"}, "QF_ACCESS_TOKEN_TTL"},
		{map[string]string{"S3_USE_SSL": "yes please"}, "S3_USE_SSL"},
		{map[string]string{"QF_LOG_LEVEL": "loud"}, "QF_LOG_LEVEL"},
		{map[string]string{"QF_POW_NORMAL_PER_MINUTE": "0"}, "QF_POW_NORMAL_PER_MINUTE"},
		{map[string]string{"QF_POW_NORMAL_PER_MINUTE": "thirty"}, "QF_POW_NORMAL_PER_MINUTE"},
		{map[string]string{"S3_ENDPOINT": "127.0.0.1:9000"}, "S3_ACCESS_KEY"},
		{map[string]string{"S3_ENDPOINT": "http://127.0.0.1:9000", "S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b"}, "S3_ENDPOINT"},
		{map[string]string{"MONGODB_URI": "postgres://x"}, "MONGODB_URI"},
		{map[string]string{"MONGODB_URI": "mongodb://127.0.0.1:27017"}, "QF_CUSTODIAN_RECIPIENTS"},
		{map[string]string{"QF_MAX_FILE_BYTES": "300MiB"}, "QF_MAX_FILE_BYTES"},
		{map[string]string{"QF_RECEIPT_PEPPER": "x", "QF_RECEIPT_PEPPER_FILE": secretFile}, "QF_RECEIPT_PEPPER"},
		{map[string]string{"QF_RECEIPT_PEPPER_FILE": "/nonexistent/pepper"}, "QF_RECEIPT_PEPPER_FILE"},
		{map[string]string{"QF_PUBLIC_URL": "qingfeng.example.gov.cn"}, "QF_PUBLIC_URL"},
		{map[string]string{"QF_PUBLIC_URL": "ftp://qingfeng.example.gov.cn"}, "QF_PUBLIC_URL"},
		{map[string]string{"QF_PUBLIC_URL": "https://qingfeng.example.gov.cn/h5"}, "QF_PUBLIC_URL"},
		{map[string]string{"QF_PUBLIC_URL": "https://user:pw@qingfeng.example.gov.cn"}, "QF_PUBLIC_URL"},
		{map[string]string{"QF_PUBLIC_URL": "https://qingfeng.example.gov.cn?x=1"}, "QF_PUBLIC_URL"},
	}
	for _, tt := range tests {
		_, err := ConfigFromEnv(func(k string) string { return tt.env[k] })
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want one naming %s", tt.env, err, tt.want)
		}
	}
}

// TestConfigPublicURL: the public URL is kept without a trailing slash.
func TestConfigPublicURL(t *testing.T) {
	for in, want := range map[string]string{"": "http://localhost:8080", "https://qingfeng.example.gov.cn/": "https://qingfeng.example.gov.cn",
		"http://127.0.0.1:8080": "http://127.0.0.1:8080"} {
		env := map[string]string{"QF_PUBLIC_URL": in, "QF_DATA_DIR": t.TempDir()}
		c, err := ConfigFromEnv(func(k string) string { return env[k] })
		if err != nil || c.PublicURL != want {
			t.Errorf("QF_PUBLIC_URL=%q: %q, %v; want %q", in, c.PublicURL, err, want)
		}
	}
}

func TestConfigSecretFromFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "pepper")
	os.WriteFile(f, []byte("c2VjcmV0\n"), 0o600)
	c, err := ConfigFromEnv(func(k string) string { return map[string]string{"QF_RECEIPT_PEPPER_FILE": f}[k] })
	if err != nil || c.ReceiptPepper != "c2VjcmV0" {
		t.Fatalf("%v %q", err, c.ReceiptPepper)
	}
}

func TestParseCustodians(t *testing.T) {
	m, err := parseCustodians("330782=age1pq1a, age1pq1b; 33=age1pq1c\n# note\n*=age1pq1d")
	if err != nil || len(m["330782"]) != 2 || m["33"][0] != "age1pq1c" || m["*"][0] != "age1pq1d" {
		t.Fatalf("%v %v", m, err)
	}
	for _, bad := range []string{"", "330782", ";;"} {
		if _, err := parseCustodians(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestREADMEDocumentsEveryVariable keeps the README's configuration table true.
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, s := range settings {
		if !strings.Contains(readme, "| `"+s.env+"`") {
			t.Errorf("README's configuration table lacks %s", s.env)
		}
		if s.def != "" && !strings.Contains(readme, "`"+s.env+"`") {
			t.Errorf("README lacks %s", s.env)
		}
	}
}
