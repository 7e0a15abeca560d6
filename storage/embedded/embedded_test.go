package embedded

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func startT(t *testing.T, dir string) *Servers {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, dir, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return s
}

func connect(t *testing.T, s *Servers) *mongodrv.Client {
	t.Helper()
	c, err := mongodrv.Connect(options.Client().ApplyURI(s.MongoDBURI()))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func s3Client(t *testing.T, s *Servers) *minio.Client {
	t.Helper()
	c, err := minio.New(s.S3Endpoint(), &minio.Options{
		Creds:  credentials.NewStaticV4(s.S3AccessKey(), s.S3SecretKey(), ""),
		Secure: false,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPersistence writes through both servers, restarts on the same directory and
// reads the data back: the embedded default must not lose reports on restart.
func TestPersistence(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	evidence := []byte("\x89PNG fake evidence")

	s := startT(t, dir)
	mc := connect(t, s)
	coll := mc.Database("qingfeng").Collection("cases")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "c1"}, {Key: "number", Value: "QF-330782-2026-000001"}}); err != nil {
		t.Fatal(err)
	}
	s3 := s3Client(t, s)
	if err := s3.MakeBucket(ctx, "evidence", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3.PutObject(ctx, "evidence", "cases/c1/ev1", bytes.NewReader(evidence), int64(len(evidence)),
		minio.PutObjectOptions{ContentType: "image/png"}); err != nil {
		t.Fatal(err)
	}
	if err := mc.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = startT(t, dir)
	defer s.Close()
	mc = connect(t, s)
	defer mc.Disconnect(ctx)
	var got struct {
		Number string `bson:"number"`
	}
	if err := mc.Database("qingfeng").Collection("cases").FindOne(ctx, bson.M{"_id": "c1"}).Decode(&got); err != nil {
		t.Fatalf("case after restart: %v", err)
	}
	if got.Number != "QF-330782-2026-000001" {
		t.Errorf("number after restart = %q", got.Number)
	}
	obj, err := s3Client(t, s).GetObject(ctx, "evidence", "cases/c1/ev1", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("evidence after restart: %v", err)
	}
	if !bytes.Equal(b, evidence) {
		t.Errorf("evidence after restart = %q, want %q", b, evidence)
	}
	for _, sub := range []string{"ferretdb", "s3"} {
		fi, err := os.Stat(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("%s has mode %v, want 0700", sub, fi.Mode().Perm())
		}
	}
}

// TestCloseReleasesPorts checks that after Close nothing listens on either port, and
// that Close can be called twice.
func TestCloseReleasesPorts(t *testing.T) {
	s := startT(t, t.TempDir())
	mongoAddr := strings.TrimSuffix(strings.TrimPrefix(strings.SplitN(s.MongoDBURI(), "?", 2)[0], "mongodb://"), "/")
	addrs := map[string]string{"mongodb": mongoAddr, "s3": s.S3Endpoint()}
	for name, addr := range addrs {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatalf("%s not listening on %s before Close: %v", name, addr, err)
		}
		c.Close()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for name, addr := range addrs {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts on %s after Close", name, addr)
		}
		// The port is free: we can bind it ourselves.
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("%s port %s not released: %v", name, addr, err)
			continue
		}
		l.Close()
	}
}

// TestStartFailsCleanly makes the S3 server fail after FerretDB started and checks
// that FerretDB is stopped again.
func TestStartFailsCleanly(t *testing.T) {
	dir := t.TempDir()
	// s3afero wants to create <s3>/buckets; a file there makes it fail.
	if err := os.MkdirAll(filepath.Join(dir, "s3"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "s3", "buckets"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var uri string
	testHookFerretDBStarted = func(u string) { uri = u }
	defer func() { testHookFerretDBStarted = nil }()

	s, err := Start(context.Background(), dir, nil)
	if err == nil {
		s.Close()
		t.Fatal("Start succeeded")
	}
	t.Log(err)
	if s != nil {
		t.Error("Start returned Servers with an error")
	}
	if uri == "" {
		t.Fatal("FerretDB was not started, so this test does not test a half-way failure")
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(strings.SplitN(uri, "?", 2)[0], "mongodb://"), "/")
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("FerretDB still listening on %s after a failed Start", addr)
	}
}

func TestStartBadDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, dir string }{
		{"empty", ""},
		{"a file", file},
		{"URI syntax", filepath.Join(t.TempDir(), "a?b")},
		{"percent", filepath.Join(t.TempDir(), "100%")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Start(context.Background(), tt.dir, nil)
			if err == nil {
				s.Close()
				t.Fatalf("Start(%q) succeeded", tt.dir)
			}
			t.Log(err)
		})
	}
}

// TestStartConcurrently runs two instances at once, as parallel tests do.
func TestStartConcurrently(t *testing.T) {
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() {
			s, err := Start(context.Background(), t.TempDir(), nil)
			if err != nil {
				errs[i] = err
				return
			}
			errs[i] = s.Close()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// TestS3Guard checks that the S3 server refuses what a browser or a DNS-rebinding page
// would send, and requests not signed with the embedded key.
func TestS3Guard(t *testing.T) {
	s := startT(t, t.TempDir())
	defer s.Close()
	if err := s3Client(t, s).MakeBucket(context.Background(), "evidence", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	signed := "AWS4-HMAC-SHA256 Credential=" + s.S3AccessKey() + "/20260314/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"
	tests := []struct {
		name   string
		host   string
		header map[string]string
		want   int
	}{
		{"signed", "", map[string]string{"Authorization": signed}, http.StatusOK},
		{"browser origin", "", map[string]string{"Authorization": signed, "Origin": "https://evil.example"}, http.StatusForbidden},
		{"rebound host", "evil.example", map[string]string{"Authorization": signed}, http.StatusMisdirectedRequest},
		{"unsigned", "", nil, http.StatusForbidden},
		{"other access key", "", map[string]string{"Authorization": strings.Replace(signed, s.S3AccessKey(), "AKIAOTHER", 1)}, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, "http://"+s.S3Endpoint()+"/evidence", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.host != "" {
				req.Host = tt.host
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tt.want {
				t.Errorf("status %d, want %d", res.StatusCode, tt.want)
			}
			if got := res.Header.Get("Access-Control-Allow-Origin"); tt.header["Origin"] != "" && got != "" {
				t.Errorf("Access-Control-Allow-Origin %q sent to a browser", got)
			}
		})
	}
}

// TestQuietLogs checks that the servers' routine logs (FerretDB's per-connection info,
// its dump of every failed command) do not reach the service's logger.
func TestQuietLogs(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := Start(context.Background(), t.TempDir(), logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mc := connect(t, s)
	coll := mc.Database("q").Collection("c")
	for range 2 { // the second insert fails with a duplicate key
		_, _ = coll.InsertOne(ctx, bson.M{"_id": 1})
	}
	_ = mc.Disconnect(ctx) // sends endSessions, which FerretDB does not implement
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		if strings.Contains(line, `"level":"INFO"`) || strings.Contains(line, `"level":"DEBUG"`) || strings.Contains(line, "Response ") {
			t.Errorf("routine log line passed through: %s", line)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestDirInUse checks that a second server on the same directory is refused while the
// first runs, and allowed after it closed.
func TestDirInUse(t *testing.T) {
	dir := t.TempDir()
	s := startT(t, dir)
	if s2, err := Start(context.Background(), dir, nil); err == nil {
		s2.Close()
		t.Fatal("second Start on the same directory succeeded")
	} else if !strings.Contains(err.Error(), "in use") {
		t.Errorf("err = %v, want one saying the directory is in use", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	startT(t, dir).Close()
}

// TestStartS3: the zero-config default's object store alone: it holds the directory's
// lock (a second server on the directory is refused) and starts no FerretDB.
func TestStartS3(t *testing.T) {
	dir := t.TempDir()
	s, err := StartS3(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.S3Endpoint() == "" || s.MongoDBURI() != "" {
		t.Errorf("S3 %q, MongoDB %q", s.S3Endpoint(), s.MongoDBURI())
	}
	if _, err := os.Stat(filepath.Join(dir, "ferretdb")); !os.IsNotExist(err) {
		t.Errorf("a FerretDB directory was created: %v", err)
	}
	if _, err := StartS3(context.Background(), dir, nil); !errors.Is(err, ErrDirInUse) {
		t.Errorf("a second server on the directory: %v", err)
	}
}
