package blob

import (
	"bytes"
	"io"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/minio/minio-go/v7"
)

// BenchmarkPut compares Store.Put (unknown size, 8 MiB parts) with minio-go's PutObject
// given the size, on the same server: gofakes3 on loopback, and MinIO when the
// QF_TEST_S3_* variables name one. The object is 64 MiB; QF_BENCH_BLOB_MIB changes it
// (e.g. 256 for the largest evidence the service is sized for).
//
// Readers hide io.ReaderAt, as a request body does, so minio-go cannot switch to its
// parallel uploader for the known-size case either. B/op counts the client only with
// MinIO; gofakes3 runs in this process and its copies of the object count too.
func BenchmarkPut(b *testing.B) {
	size := int64(64 << 20)
	if mib, err := strconv.Atoi(os.Getenv("QF_BENCH_BLOB_MIB")); err == nil && mib > 0 {
		size = int64(mib) << 20
	}
	data := make([]byte, size)
	mrand.NewChaCha8([32]byte{9}).Read(data)

	for _, srv := range servers {
		b.Run(srv.name, func(b *testing.B) {
			s := openStore(b, srv)
			key := "bench/" + randomHex(4)
			b.Cleanup(func() { s.Delete(b.Context(), key) })
			putRaw := func(b *testing.B, opts minio.PutObjectOptions) {
				opts.ContentType = "video/mp4"
				b.SetBytes(size)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.client.PutObject(b.Context(), s.bucket, key, onlyReader(data), size, opts); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.Run("Store.Put", func(b *testing.B) {
				b.SetBytes(size)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.Put(b.Context(), key, onlyReader(data), "video/mp4"); err != nil {
						b.Fatal(err)
					}
				}
			})
			// The same integrity options as Store.Put, with the size known: the cost
			// of not knowing it.
			b.Run("PutObject-known-size", func(b *testing.B) {
				putRaw(b, minio.PutObjectOptions{DisableContentSha256: true, SendContentMd5: true})
			})
			// minio-go's defaults: over plain HTTP each part carries a streaming
			// signature; gofakes3 stores that framing as data (see Store.Put), so on
			// gofakes3 this measures the speed of writing a corrupt object.
			b.Run("PutObject-known-size-defaults", func(b *testing.B) {
				putRaw(b, minio.PutObjectOptions{})
			})
		})
	}
}

// onlyReader hides every method of a bytes.Reader but Read.
func onlyReader(b []byte) io.Reader { return struct{ io.Reader }{bytes.NewReader(b)} }
