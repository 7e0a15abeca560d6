package blob

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/storage/blob/blobtest"
)

// Environment variables naming a real S3 server (CI runs MinIO). When they are unset,
// the tests run against gofakes3 only.
const (
	envEndpoint  = "QF_TEST_S3_ENDPOINT"   // host:port
	envAccessKey = "QF_TEST_S3_ACCESS_KEY" //
	envSecretKey = "QF_TEST_S3_SECRET_KEY" //
	envUseSSL    = "QF_TEST_S3_USE_SSL"    // "1" or "true" for https
)

// server is an S3 server to run the tests against.
type server struct {
	name string
	cfg  func(t testing.TB) Config // a config with a fresh bucket name, or t.Skip
}

var servers = []server{
	{"gofakes3", fakeS3},
	{"minio", realS3},
}

// fakeS3 starts gofakes3 with an in-memory backend on loopback for the test.
func fakeS3(t testing.TB) Config {
	faker := gofakes3.New(s3mem.New(), gofakes3.WithLogger(gofakes3.DiscardLog()))
	srv := httptest.NewServer(faker.Server())
	t.Cleanup(srv.Close)
	return Config{
		Endpoint:  strings.TrimPrefix(srv.URL, "http://"),
		AccessKey: "qingfeng-test",
		SecretKey: "qingfeng-test-secret",
		Bucket:    "qf-test-" + randomHex(6),
	}
}

// realS3 is the server named by the QF_TEST_S3_* variables, with a new bucket that is
// removed after the test.
func realS3(t testing.TB) Config {
	endpoint, access, secret := os.Getenv(envEndpoint), os.Getenv(envAccessKey), os.Getenv(envSecretKey)
	if endpoint == "" || access == "" || secret == "" {
		t.Skipf("real S3 server not configured: set %s, %s and %s (CI points them at MinIO) to run these tests against it too",
			envEndpoint, envAccessKey, envSecretKey)
	}
	cfg := Config{
		Endpoint:  endpoint,
		AccessKey: access,
		SecretKey: secret,
		Bucket:    "qf-test-" + randomHex(6),
		UseSSL:    os.Getenv(envUseSSL) == "1" || os.Getenv(envUseSSL) == "true",
	}
	t.Cleanup(func() { removeBucket(t, cfg) })
	return cfg
}

// removeBucket empties and removes a test bucket, reporting what it could not remove.
func removeBucket(t testing.TB, cfg Config) {
	ctx := context.Background()
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Logf("remove test bucket %s: %v", cfg.Bucket, err)
		return
	}
	for up := range s.client.ListIncompleteUploads(ctx, cfg.Bucket, "", true) {
		if up.Err == nil {
			s.client.RemoveIncompleteUpload(ctx, cfg.Bucket, up.Key)
		}
	}
	for obj := range s.client.ListObjects(ctx, cfg.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err == nil {
			s.client.RemoveObject(ctx, cfg.Bucket, obj.Key, minio.RemoveObjectOptions{})
		}
	}
	if err := s.client.RemoveBucket(ctx, cfg.Bucket); err != nil {
		t.Errorf("remove test bucket %s: %v", cfg.Bucket, err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func openStore(t testing.TB, srv server) *Store {
	t.Helper()
	cfg := srv.cfg(t)
	s, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			blobtest.Run(t, openStore(t, srv))
		})
	}
}

func TestOpen(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			cfg := srv.cfg(t)
			for i := range 3 {
				s, err := Open(t.Context(), cfg)
				if err != nil {
					t.Fatalf("Open #%d: %v", i+1, err)
				}
				if err := s.Ping(t.Context()); err != nil {
					t.Fatalf("Ping after Open #%d: %v", i+1, err)
				}
			}
		})
	}
	t.Run("bucket created concurrently", func(t *testing.T) {
		// Both see no bucket, both create it: the loser must still open it.
		cfg := fakeS3(t)
		errs := make(chan error, 4)
		for range cap(errs) {
			go func() {
				_, err := Open(t.Context(), cfg)
				errs <- err
			}()
		}
		for range cap(errs) {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
	})
}

func TestOpenRefusesBadConfig(t *testing.T) {
	good := Config{Endpoint: "127.0.0.1:9000", AccessKey: "a", SecretKey: "b", Bucket: "evidence"}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no endpoint", func(c *Config) { c.Endpoint = "" }, "no endpoint"},
		{"scheme", func(c *Config) { c.Endpoint = "http://127.0.0.1:9000" }, "without scheme"},
		{"path", func(c *Config) { c.Endpoint = "127.0.0.1:9000/minio" }, "without scheme or path"},
		{"no access key", func(c *Config) { c.AccessKey = "" }, "access key"},
		{"no secret key", func(c *Config) { c.SecretKey = "" }, "secret key"},
		{"no bucket", func(c *Config) { c.Bucket = "" }, "bucket"},
		{"bad bucket", func(c *Config) { c.Bucket = "Evidence_Bucket" }, "bucket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.edit(&cfg)
			_, err := Open(t.Context(), cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open = %v, want an error about %q", err, tt.want)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(nil)
		cfg := good
		cfg.Endpoint = strings.TrimPrefix(srv.URL, "http://")
		srv.Close() // nothing listens there now
		ctx, cancel := context.WithTimeout(t.Context(), 5e9)
		defer cancel()
		if _, err := Open(ctx, cfg); err == nil {
			t.Fatal("Open succeeded with no server")
		}
	})
}

func TestPingUnavailable(t *testing.T) {
	faker := gofakes3.New(s3mem.New(), gofakes3.WithLogger(gofakes3.DiscardLog()))
	srv := httptest.NewServer(faker.Server())
	s, err := Open(t.Context(), Config{Endpoint: strings.TrimPrefix(srv.URL, "http://"), AccessKey: "a", SecretKey: "b", Bucket: "evidence"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5e9)
	defer cancel()
	err = s.Ping(ctx)
	if qingfeng.ErrorCode(err) != qingfeng.EUNAVAILABLE {
		t.Fatalf("Ping with the server gone = %v, want EUNAVAILABLE", err)
	}
}

func TestKeys(t *testing.T) {
	s := openStore(t, servers[0])
	bad := []string{
		"", "..", "../evidence", "cases/../../etc/passwd", "a..b", "/abs/key", `cases\1`,
		"line\nbreak", "nul\x00", "bad-utf8-\xff", strings.Repeat("k", 1025),
	}
	for _, key := range bad {
		t.Run("bad/"+key, func(t *testing.T) {
			if _, err := s.Put(t.Context(), key, strings.NewReader("x"), "text/plain"); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Put(%q) = %v, want ErrInvalidKey", key, err)
			}
			if _, _, err := s.Get(t.Context(), key); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Get(%q) = %v, want ErrInvalidKey", key, err)
			}
			if err := s.Delete(t.Context(), key); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Delete(%q) = %v, want ErrInvalidKey", key, err)
			}
		})
	}
	for _, key := range []string{"evidence/QF-330782-2026-000123/9f2c.jpg", "k", "原件/封存.age", "a.b/c-d_e", strings.Repeat("k", 1024)} {
		t.Run("good/"+key[:min(len(key), 40)], func(t *testing.T) {
			if _, err := s.Put(t.Context(), key, strings.NewReader("x"), "text/plain"); err != nil {
				t.Fatalf("Put(%q): %v", key, err)
			}
			if err := s.Delete(t.Context(), key); err != nil {
				t.Fatalf("Delete(%q): %v", key, err)
			}
		})
	}
}

// TestFailedPutLeavesNoUpload looks behind the interface: after a failed Put the
// server must hold no incomplete multipart upload for the key (gofakes3 would keep
// its parts in memory, MinIO on disk, forever).
func TestFailedPutLeavesNoUpload(t *testing.T) {
	errBoom := errors.New("boom")
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			s := openStore(t, srv)
			tests := []struct {
				name   string
				reader func(cancel func()) io.Reader
			}{
				{"reader fails after a part", func(func()) io.Reader {
					return io.MultiReader(io.LimitReader(mrand.NewChaCha8([32]byte{}), 9<<20), &errReader{errBoom})
				}},
				{"cut short after a part", func(func()) io.Reader {
					return io.MultiReader(io.LimitReader(mrand.NewChaCha8([32]byte{}), 9<<20), &errReader{io.ErrUnexpectedEOF})
				}},
				{"cancelled after a part", func(cancel func()) io.Reader {
					return io.MultiReader(io.LimitReader(mrand.NewChaCha8([32]byte{}), 9<<20), &cancelReader{cancel, mrand.NewChaCha8([32]byte{1})})
				}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					key := "failed/" + randomHex(4)
					ctx, cancel := context.WithCancel(t.Context())
					defer cancel()
					if _, err := s.Put(ctx, key, tt.reader(cancel), "image/jpeg"); err == nil {
						t.Fatal("Put succeeded")
					}
					for up := range s.client.ListIncompleteUploads(t.Context(), s.bucket, key, true) {
						if up.Err != nil {
							t.Fatal(up.Err)
						}
						t.Errorf("incomplete upload %s left for %s", up.UploadID, up.Key)
					}
					if _, err := s.client.StatObject(t.Context(), s.bucket, key, minio.StatObjectOptions{}); !isNotFound(err) {
						t.Errorf("StatObject after failed Put = %v, want NoSuchKey", err)
					}
				})
			}
		})
	}
}

func TestPutStoresContentType(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			s := openStore(t, srv)
			for _, ct := range []string{"image/jpeg", "application/pdf", "application/octet-stream"} {
				key := "ct/" + strings.ReplaceAll(ct, "/", "-")
				if _, err := s.Put(t.Context(), key, bytes.NewReader([]byte("data")), ct); err != nil {
					t.Fatal(err)
				}
				info, err := s.client.StatObject(t.Context(), s.bucket, key, minio.StatObjectOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if info.ContentType != ct {
					t.Errorf("content type %q, want %q", info.ContentType, ct)
				}
				s.Delete(t.Context(), key)
			}
		})
	}
}

// TestPutKeepsReaderErrorCode: when the reader is media.Process behind a pipe, its
// *qingfeng.Error (ETOOLARGE, EINVALID) must come out of Put for the handler to map.
func TestPutKeepsReaderErrorCode(t *testing.T) {
	s := openStore(t, servers[0])
	tooLarge := &qingfeng.Error{Code: qingfeng.ETOOLARGE, Message: "文件超过大小上限（50 MB）", English: "too large"}
	for _, at := range []int64{0, 1 << 10, 9 << 20} {
		r := io.MultiReader(io.LimitReader(mrand.NewChaCha8([32]byte{}), at), &errReader{tooLarge})
		_, err := s.Put(t.Context(), "too-large/"+randomHex(4), r, "image/jpeg")
		var qe *qingfeng.Error
		if !errors.As(err, &qe) || qe != tooLarge {
			t.Errorf("reader failing after %d bytes: Put = %v, want the reader's *qingfeng.Error", at, err)
		}
	}
}

// TestUploadReader pins down the three things the Put body does for minio-go.
func TestUploadReader(t *testing.T) {
	t.Run("unexpected EOF is not an end", func(t *testing.T) {
		u := &uploadReader{ctx: t.Context(), r: &errReader{io.ErrUnexpectedEOF}}
		_, err := u.Read(make([]byte, 8))
		if err == io.ErrUnexpectedEOF || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("Read = %v, want a wrapped io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("errors stick", func(t *testing.T) {
		errBoom := errors.New("boom")
		u := &uploadReader{ctx: t.Context(), r: io.MultiReader(&errReader{errBoom}, strings.NewReader("more"))}
		for i := range 3 {
			if n, err := u.Read(make([]byte, 8)); n != 0 || !errors.Is(err, errBoom) {
				t.Fatalf("Read #%d = %d, %v; want boom again", i+1, n, err)
			}
		}
	})
	t.Run("context checked before reading", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		u := &uploadReader{ctx: ctx, r: strings.NewReader("endless")}
		cancel()
		if _, err := u.Read(make([]byte, 8)); !errors.Is(err, context.Canceled) {
			t.Fatalf("Read = %v, want context.Canceled", err)
		}
	})
	t.Run("head read grows to one part at most", func(t *testing.T) {
		for _, n := range []int{0, 1, 64 << 10, PartSize, PartSize + 1, PartSize + 5000} {
			data := bytes.Repeat([]byte{'x'}, n)
			head, err := readHead(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if want := min(n, PartSize+1); len(head) != want || cap(head) > PartSize+1 {
				t.Errorf("%d bytes: head len %d cap %d, want len %d and cap ≤ %d", n, len(head), cap(head), want, PartSize+1)
			}
		}
	})
}

type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }

// cancelReader cancels the upload's context on its first read, then keeps supplying
// data like a client that does not know.
type cancelReader struct {
	cancel func()
	r      io.Reader
}

func (c *cancelReader) Read(p []byte) (int, error) {
	c.cancel()
	return c.r.Read(p)
}
