// Package blob keeps evidence objects in an S3-compatible object store (MinIO in
// production, the embedded S3 server by default) through minio-go. It implements
// intake.EvidenceStore.
//
// Objects stream: Put holds at most three 8 MiB parts in memory whatever the object's
// size (one read ahead, two uploading), and a Put that fails — the reader errs, the
// context is cancelled, the server refuses — leaves neither an object nor an
// incomplete multipart upload behind. The package knows
// nothing of cases or metadata removal; callers choose keys and content types.
package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
)

var _ intake.EvidenceStore = (*Store)(nil)

// PartSize is the multipart part size of Put; one Put holds at most three.
//
// Put streams with an unknown size (-1). Given no part size, minio-go sizes parts so
// that 10,000 of them reach 5 TiB: 528 MiB each, allocated up front for every upload,
// which would make each evidence upload cost half a gigabyte of memory. With 8 MiB
// parts an object can still reach 10,000 × 8 MiB ≈ 78 GiB, far above any evidence limit,
// and stays above S3's 5 MiB minimum for every part but the last.
const PartSize = 8 << 20

// cleanupTimeout bounds the requests that remove what a failed Put left; they run on
// a context detached from the caller's, which may be the reason the Put failed.
const cleanupTimeout = 30 * time.Second

// maxRetries is how many times one request to the store is tried.
const maxRetries = 3

// Config says where the store is. It comes from the service's configuration.
type Config struct {
	Endpoint  string // host:port, without a scheme
	AccessKey string
	SecretKey string
	Bucket    string
	Region    string // default us-east-1, MinIO's default
	UseSSL    bool
}

// Store is an S3 bucket of evidence objects. It is safe for concurrent use.
type Store struct {
	client *minio.Client
	bucket string
}

// ErrInvalidKey is wrapped by the error for a key Put, Get or Delete refuses.
var ErrInvalidKey = errors.New("invalid object key")

// Open connects to the store and creates the bucket if it does not exist yet. It is
// idempotent, and safe to run from several processes at once.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	switch {
	case cfg.Endpoint == "":
		return nil, errors.New("blob: no endpoint configured")
	case strings.Contains(cfg.Endpoint, "://") || strings.Contains(cfg.Endpoint, "/"):
		return nil, fmt.Errorf("blob: endpoint %q must be host:port, without scheme or path (use UseSSL for https)", cfg.Endpoint)
	case cfg.AccessKey == "" || cfg.SecretKey == "":
		return nil, errors.New("blob: access key and secret key are required")
	}
	if err := s3utils.CheckValidBucketName(cfg.Bucket); err != nil {
		return nil, fmt.Errorf("blob: bucket %q: %w", cfg.Bucket, err)
	}
	region := cfg.Region
	if region == "" {
		// Naming the region saves a GetBucketLocation round trip per bucket.
		region = "us-east-1"
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: cfg.UseSSL,
		Region: region,
		// minio-go retries a failed request 10 times by default, up to a second
		// apart: a reporter would wait ten seconds to be told the store is down.
		MaxRetries: maxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("blob: client for %s: %w", cfg.Endpoint, err)
	}
	s := &Store{client: client, bucket: cfg.Bucket}

	exists, err := client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("blob: check bucket %s at %s: %w", cfg.Bucket, cfg.Endpoint, err)
	}
	if exists {
		return s, nil
	}
	err = client.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: region})
	if err == nil || minio.ToErrorResponse(err).Code == minio.BucketAlreadyOwnedByYou {
		return s, nil
	}
	// Another process may have created it between our check and our create (some
	// servers say BucketAlreadyExists then, which on AWS also means "someone
	// else's"): it is ours only if we can see it now.
	if exists, xerr := client.BucketExists(ctx, cfg.Bucket); xerr == nil && exists {
		return s, nil
	}
	return nil, fmt.Errorf("blob: create bucket %s at %s: %w", cfg.Bucket, cfg.Endpoint, err)
}

// Bucket returns the bucket name.
func (s *Store) Bucket() string { return s.bucket }

// Ping checks that the store answers and the bucket exists, for readiness checks.
// A failure is an EUNAVAILABLE *qingfeng.Error.
func (s *Store) Ping(ctx context.Context) error {
	exists, err := s.client.BucketExists(ctx, s.bucket)
	if err == nil && !exists {
		err = fmt.Errorf("bucket %s does not exist", s.bucket)
	}
	if err != nil {
		return unavailable(fmt.Errorf("blob: ping: %w", err))
	}
	return nil
}

// probeKey is where Probe writes; the orphan sweeper leaves the prefix alone.
const probeKey = "health/probe"

// Probe checks that the store accepts a write: it writes and removes a small object.
// A store can answer Ping and still refuse writes (a full disk, a read-only
// mount). A failure is an EUNAVAILABLE *qingfeng.Error.
func (s *Store) Probe(ctx context.Context) error {
	if err := s.Ping(ctx); err != nil {
		return err
	}
	if _, err := s.client.PutObject(ctx, s.bucket, probeKey, strings.NewReader("ok"), 2, minio.PutObjectOptions{}); err != nil {
		return unavailable(fmt.Errorf("blob: probe write: %w", err))
	}
	if err := s.client.RemoveObject(ctx, s.bucket, probeKey, minio.RemoveObjectOptions{}); err != nil {
		return unavailable(fmt.Errorf("blob: probe remove: %w", err))
	}
	return nil
}

func unavailable(err error) error {
	return &qingfeng.Error{Code: qingfeng.EUNAVAILABLE, Message: "证据存储暂不可用，请稍后重试", English: "the evidence store is unavailable; retry later", Err: err}
}

// storeError wraps err with op, as EUNAVAILABLE when the store could not be reached,
// timed out, or answered with a server error: the client did nothing wrong and may
// retry. Anything else (a refused key, a missing object) is wrapped as it is.
func storeError(op string, err error) error {
	wrapped := fmt.Errorf("blob: %s: %w", op, err)
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, context.DeadlineExceeded) || minio.ToErrorResponse(err).StatusCode >= 500 {
		return unavailable(wrapped)
	}
	return wrapped
}

// Put stores what r yields under key and returns its size. It streams: r is read one
// part at a time and never held whole. If r returns an error, ctx is cancelled or the
// upload fails, Put returns an error (wrapping r's or ctx's) and removes what the
// attempt left — the incomplete upload, and an object at key if one was completed
// after all — so no partial evidence can be read back. Keys are written once in this
// service: a Put that fails once it has started uploading removes an object already at
// key too.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, contentType string) (int64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	opts := minio.PutObjectOptions{
		ContentType: contentType,
		PartSize:    PartSize,
		// minio-go signs the payload of a part over plain HTTP with the aws-chunked
		// streaming signature. gofakes3 (the embedded server) stores the chunk
		// framing as object data for multipart parts, corrupting every object of
		// more than one part. Sending UNSIGNED-PAYLOAD (what minio-go does over TLS
		// anyway) with a Content-MD5 per part, which the server checks and the
		// request signature covers, keeps each part's integrity on every server.
		DisableContentSha256: true,
		SendContentMd5:       true,
	}
	body := &uploadReader{ctx: ctx, r: r}
	// Most evidence (a phone photo) fits in one part: read up to a part ahead, and
	// if the stream ends within it, send it as one PUT of known size. A larger one
	// goes up in parts, each uploaded while the next is read (two buffers), so that
	// reading the request and writing to the store overlap instead of taking turns.
	head, err := readHead(body)
	if err != nil {
		return 0, fmt.Errorf("blob: put %s: %w", key, err)
	}
	var (
		src  io.Reader = bytes.NewReader(head)
		size           = int64(len(head))
	)
	if size > PartSize {
		src, size = io.MultiReader(src, body), -1
		opts.ConcurrentStreamParts = true
		opts.NumThreads = 2
	}
	info, err := s.client.PutObject(ctx, s.bucket, key, src, size, opts)
	if err != nil {
		if cerr := s.removeFailed(ctx, key); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return 0, storeError("put "+key, err)
	}
	return info.Size, nil
}

// removeFailed aborts any incomplete upload for key and removes any object at key.
// minio-go aborts the upload it started when a part fails; this also covers an abort
// that did not get through, and a completion whose response was lost.
func (s *Store) removeFailed(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	var errs []error
	if err := s.client.RemoveIncompleteUpload(ctx, s.bucket, key); err != nil {
		errs = append(errs, fmt.Errorf("abort incomplete upload: %w", err))
	}
	if err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
		errs = append(errs, fmt.Errorf("remove partial object: %w", err))
	}
	return errors.Join(errs...)
}

// Get opens the object at key and returns it with its size. A missing object is
// qingfeng.ErrNotFound (ENOTFOUND). The reader reads on ctx: keep ctx alive until it
// is closed.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	if err := checkKey(key); err != nil {
		return nil, 0, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, 0, storeError("get "+key, err)
	}
	// GetObject is lazy; Stat sends the GET and reports a missing key.
	info, err := obj.Stat()
	if err != nil {
		obj.Close()
		if isNotFound(err) {
			return nil, 0, fmt.Errorf("blob: get %s: %w", key, qingfeng.ErrNotFound)
		}
		return nil, 0, storeError("get "+key, err)
	}
	return obj, info.Size, nil
}

// List calls fn with the key and last-modified time of every object whose key
// starts with prefix, stopping at fn's first error (the orphan sweeper).
func (s *Store) List(ctx context.Context, prefix string, fn func(key string, modified time.Time) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine if fn fails
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return storeError("list "+prefix, obj.Err)
		}
		if err := fn(obj.Key, obj.LastModified); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Delete removes the object at key. Deleting a missing object succeeds.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
		return storeError("delete "+key, err)
	}
	return nil
}

func isNotFound(err error) bool {
	return minio.ToErrorResponse(err).Code == minio.NoSuchKey
}

// checkKey refuses keys that could escape a prefix or mean different things to
// different servers and tools: empty, "..", a leading "/", backslashes, control
// characters, invalid UTF-8, or longer than S3's 1024 bytes.
func checkKey(key string) error {
	bad := ""
	switch {
	case key == "":
		bad = "empty"
	case strings.Contains(key, ".."):
		bad = `contains ".."`
	case strings.HasPrefix(key, "/"):
		bad = `starts with "/"`
	case strings.Contains(key, `\`):
		bad = "contains a backslash"
	case strings.ContainsFunc(key, func(r rune) bool { return r < 0x20 || r == 0x7F }):
		bad = "contains a control character"
	}
	if bad == "" {
		if err := s3utils.CheckValidObjectName(key); err != nil {
			bad = err.Error()
		}
	}
	if bad != "" {
		return fmt.Errorf("blob: key %q %s: %w", key, bad, ErrInvalidKey)
	}
	return nil
}

// readHead reads r up to PartSize+1 bytes, into a buffer that grows with what
// arrives (a small photo does not cost a whole part) and never beyond PartSize+1.
func readHead(r io.Reader) ([]byte, error) {
	buf := make([]byte, 0, 64<<10)
	for len(buf) <= PartSize {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(2*cap(buf), PartSize+1))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), PartSize+1)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// uploadReader is the body of a Put. It makes minio-go see every way the stream can
// go wrong:
//   - it checks ctx before each read, because minio-go only looks at ctx between
//     requests and a slow client could otherwise keep a cancelled upload reading;
//   - it hides io.ErrUnexpectedEOF, which net/http returns for a body cut short and
//     which minio-go takes for a normal end of stream, storing a truncated object;
//   - it repeats an error on every later read, because minio-go drops an error that
//     comes with the last bytes of a full part and reads again.
type uploadReader struct {
	ctx context.Context
	r   io.Reader
	err error
}

func (u *uploadReader) Read(p []byte) (int, error) {
	if u.err != nil {
		return 0, u.err
	}
	if err := u.ctx.Err(); err != nil {
		u.err = err
		return 0, err
	}
	n, err := u.r.Read(p)
	switch {
	case err == nil || err == io.EOF:
		return n, err
	case errors.Is(err, io.ErrUnexpectedEOF):
		err = fmt.Errorf("upload stream cut short: %w", err)
	}
	u.err = err
	return n, err
}
