package embedded

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"testing"

	"github.com/minio/minio-go/v7"
)

// TestObjectFS: what was put through the S3 server reads back through ObjectFS byte
// for byte, without the server (qingfeng backup reads a running server's objects so),
// and a missing object is fs.ErrNotExist.
func TestObjectFS(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := StartS3(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
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
