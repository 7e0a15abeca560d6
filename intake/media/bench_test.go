package media

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

// BenchmarkProcessJPEG cleans a 12-megapixel photo-sized JPEG (noise at quality 95, so
// the scan is large and full of stuffed FF00 pairs) with an EXIF block.
func BenchmarkProcessJPEG(b *testing.B) {
	clean := encodeJPEG(b, noise(4000, 3000, 7), 95)
	dirty, _ := dirtyJPEG(b, clean)
	benchProcess(b, dirty)
}

// BenchmarkProcessPNG cleans a PNG of 32 MiB in 64 KiB IDAT chunks (random data: the
// cleaner checks CRCs and never inflates).
func BenchmarkProcessPNG(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	idat := make([]byte, 64<<10)
	var file bytes.Buffer
	file.Write(cat(pngMagic, ihdr(8000, 4000, 8, 2)))
	file.Write(pngMetadataChunks())
	for file.Len() < 32<<20 {
		for i := range idat {
			idat[i] = byte(r.Uint32())
		}
		file.Write(chunk("IDAT", idat))
	}
	file.Write(chunk("IEND", nil))
	benchProcess(b, file.Bytes())
}

// BenchmarkProcessPassthrough is the floor: count, hash twice, copy.
func BenchmarkProcessPassthrough(b *testing.B) {
	benchProcess(b, cat(ftyp("isom", "isom"), bytes.Repeat([]byte{0x55}, 32<<20)))
}

func benchProcess(b *testing.B, in []byte) {
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	opts := Options{MaxBytes: 1 << 30}
	for b.Loop() {
		if _, err := Process(bytes.NewReader(in), io.Discard, opts); err != nil {
			b.Fatal(err)
		}
	}
}
