package embedded

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/minio/minio-go/v7"
)

// TestStartS3 starts the S3 server alone: no ferretdb/ is created (a server on the
// SQLite default must not look like an earlier release's directory), the directory is
// locked against Start and a second StartS3, and ObjectFS reads what was put through
// S3, byte for byte, without the server.
func TestStartS3(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := StartS3(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(filepath.Join(dir, "ferretdb")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("StartS3 created ferretdb/: %v", err)
	}
	if s.MongoDBURI() != "" {
		t.Errorf("MongoDBURI = %q without FerretDB", s.MongoDBURI())
	}
	for _, again := range []func(context.Context, string) (*Servers, error){
		func(ctx context.Context, d string) (*Servers, error) { return Start(ctx, d, nil) },
		func(ctx context.Context, d string) (*Servers, error) { return StartS3(ctx, d, nil) },
	} {
		if s2, err := again(ctx, dir); !errors.Is(err, ErrDirInUse) {
			if s2 != nil {
				_ = s2.Close()
			}
			t.Errorf("a second server on the directory: %v, want ErrDirInUse", err)
		}
	}
	c := s3Client(t, s)
	if err := c.MakeBucket(ctx, "bkt", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("证据"), 5000)
	if _, err := c.PutObject(ctx, "bkt", "evidence/c1/e1", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := fs.ReadFile(ObjectFS(dir, "bkt"), "evidence/c1/e1")
	if err != nil || !bytes.Equal(got, body) {
		t.Errorf("ObjectFS read %d bytes, %v; want the %d put", len(got), err, len(body))
	}
	if _, err := fs.Stat(ObjectFS(dir, "bkt"), "evidence/c1/none"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing object: %v", err)
	}
}
