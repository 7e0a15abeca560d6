// Package blobtest is the conformance suite for intake.EvidenceStore: every
// implementation (the S3 store, and any fake a test uses) must pass Run, so a fake
// cannot quietly promise more than the real store keeps.
package blobtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"sync"
	"testing"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/intake"
)

// LargeSize is the size of the object that must take the multipart path of an S3
// store with 8 MiB parts: two full parts and a short last one.
const LargeSize = 20<<20 + 12345

// Run checks s against the EvidenceStore contract. Keys are under a random prefix, so
// runs can share a bucket; what a run stores it deletes.
func Run(t *testing.T, s intake.EvidenceStore) {
	prefix := "blobtest/" + randomHex(8) + "/"
	key := func(t *testing.T, name string) string {
		k := prefix + name
		t.Cleanup(func() { s.Delete(context.WithoutCancel(t.Context()), k) })
		return k
	}

	t.Run("RoundTrip", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			data []byte
		}{
			{"small", []byte("证据 evidence \x00\xff bytes")},
			{"one-byte", []byte{0x42}},
			{"empty", nil},
			{"part-size", pseudoRandom(1, 8<<20)},
		} {
			t.Run(tt.name, func(t *testing.T) {
				k := key(t, "roundtrip/"+tt.name+".bin")
				n, err := s.Put(t.Context(), k, bytes.NewReader(tt.data), "application/octet-stream")
				if err != nil {
					t.Fatal(err)
				}
				if n != int64(len(tt.data)) {
					t.Errorf("Put returned size %d, want %d", n, len(tt.data))
				}
				got, size := get(t, s, k)
				if size != int64(len(tt.data)) || !bytes.Equal(got, tt.data) {
					t.Errorf("Get returned %d bytes (size %d), want the %d put", len(got), size, len(tt.data))
				}
			})
		}
	})

	t.Run("Large", func(t *testing.T) {
		k := key(t, "large.bin")
		want := sha256.New()
		src := io.TeeReader(io.LimitReader(mrand.NewChaCha8(seed(2)), LargeSize), want)
		n, err := s.Put(t.Context(), k, src, "video/mp4")
		if err != nil {
			t.Fatal(err)
		}
		if n != LargeSize {
			t.Errorf("Put returned size %d, want %d", n, LargeSize)
		}
		rc, size, err := s.Get(t.Context(), k)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		got := sha256.New()
		read, err := io.Copy(got, rc)
		if err != nil {
			t.Fatal(err)
		}
		if size != LargeSize || read != LargeSize {
			t.Errorf("Get size %d, read %d bytes, want %d", size, read, LargeSize)
		}
		if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
			t.Errorf("object read back differs from what was put")
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		k := key(t, "overwrite.txt")
		for _, body := range []string{"first version, longer", "second"} {
			if _, err := s.Put(t.Context(), k, bytes.NewReader([]byte(body)), "text/plain"); err != nil {
				t.Fatal(err)
			}
		}
		if got, _ := get(t, s, k); string(got) != "second" {
			t.Errorf("Get = %q after overwrite, want %q", got, "second")
		}
	})

	t.Run("GetMissing", func(t *testing.T) {
		wantNotFound(t, s, prefix+"never-put")
	})

	t.Run("DeleteTwice", func(t *testing.T) {
		k := key(t, "delete.txt")
		if _, err := s.Put(t.Context(), k, bytes.NewReader([]byte("x")), "text/plain"); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			if err := s.Delete(t.Context(), k); err != nil {
				t.Fatalf("Delete #%d: %v", i+1, err)
			}
		}
		wantNotFound(t, s, k)
		if err := s.Delete(t.Context(), prefix+"never-put"); err != nil {
			t.Errorf("Delete of a key never put: %v", err)
		}
	})

	errBoom := errors.New("reader failed")
	t.Run("FailingReaderLeavesNothing", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			at   int64
			err  error
		}{
			{"at-start", 0, errBoom},
			{"after-1KiB", 1 << 10, errBoom},
			{"after-first-part", 9 << 20, errBoom},
			{"after-two-parts", 17 << 20, errBoom},
			// net/http's error for a request body cut short.
			{"cut-short-after-1KiB", 1 << 10, io.ErrUnexpectedEOF},
			{"cut-short-after-first-part", 9 << 20, io.ErrUnexpectedEOF},
		} {
			t.Run(tt.name, func(t *testing.T) {
				k := key(t, "failing/"+tt.name)
				r := &failingReader{r: mrand.NewChaCha8(seed(3)), n: tt.at, err: tt.err}
				n, err := s.Put(t.Context(), k, r, "image/jpeg")
				if !errors.Is(err, tt.err) {
					t.Fatalf("Put = %d, %v; want an error wrapping %v", n, err, tt.err)
				}
				wantNotFound(t, s, k)
			})
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		t.Run("before", func(t *testing.T) {
			k := key(t, "cancelled/before")
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			_, err := s.Put(ctx, k, bytes.NewReader([]byte("x")), "text/plain")
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Put = %v, want context.Canceled", err)
			}
			wantNotFound(t, s, k)
		})
		for _, at := range []int64{1 << 10, 9 << 20} {
			t.Run(fmt.Sprintf("after-%d-bytes", at), func(t *testing.T) {
				k := key(t, fmt.Sprintf("cancelled/after-%d", at))
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				r := &failingReader{r: mrand.NewChaCha8(seed(4)), n: at, err: io.EOF, onLimit: cancel, more: true}
				_, err := s.Put(ctx, k, r, "text/plain")
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("Put = %v, want context.Canceled", err)
				}
				wantNotFound(t, s, k)
			})
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 4 {
			k := key(t, fmt.Sprintf("concurrent/%d", i))
			data := pseudoRandom(uint64(10+i), 1<<20+i)
			wg.Go(func() {
				if _, err := s.Put(t.Context(), k, bytes.NewReader(data), "image/png"); err != nil {
					t.Errorf("Put %s: %v", k, err)
					return
				}
				if got, _ := get(t, s, k); !bytes.Equal(got, data) {
					t.Errorf("Get %s returned other bytes", k)
				}
			})
		}
		wg.Wait()
	})
}

func get(t *testing.T, s intake.EvidenceStore, key string) ([]byte, int64) {
	t.Helper()
	rc, size, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b, size
}

func wantNotFound(t *testing.T, s intake.EvidenceStore, key string) {
	t.Helper()
	rc, _, err := s.Get(t.Context(), key)
	if err == nil {
		rc.Close()
		t.Fatalf("Get %s found an object, want not found", key)
	}
	if !errors.Is(err, qingfeng.ErrNotFound) || qingfeng.ErrorCode(err) != qingfeng.ENOTFOUND {
		t.Fatalf("Get %s = %v, want qingfeng.ErrNotFound", key, err)
	}
}

// failingReader yields n bytes of r, then err. With more, it keeps yielding r after
// calling onLimit, as a client does that goes on sending after its request was
// cancelled.
type failingReader struct {
	r       io.Reader
	n       int64
	err     error
	onLimit func()
	more    bool
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		if f.onLimit != nil {
			f.onLimit()
			f.onLimit = nil
		}
		if f.more {
			return f.r.Read(p)
		}
		return 0, f.err
	}
	if int64(len(p)) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= int64(n)
	return n, err
}

func seed(n uint64) [32]byte {
	var s [32]byte
	s[0] = byte(n)
	return s
}

func pseudoRandom(n uint64, size int) []byte {
	b := make([]byte, size)
	mrand.NewChaCha8(seed(n)).Read(b)
	return b
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
