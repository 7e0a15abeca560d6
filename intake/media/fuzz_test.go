package media

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"reflect"
	"testing"

	"github.com/qingfeng-zj/qingfeng"
)

// fuzzOptions keep each input cheap: the fuzz body decodes what the cleaner accepted,
// and image/jpeg can spend a second on a corrupt progressive JPEG of 2^18 pixels.
var fuzzOptions = Options{MaxBytes: 1 << 20, MaxPixels: 1 << 14}

func FuzzProcessJPEG(f *testing.F) {
	for _, name := range []string{"video-001.restart2.jpeg", "video-005.gray.q50.2x2.progressive.jpeg", "video-001.q50.420.jpeg"} {
		clean := readTestdata(f, name)
		dirty, _ := dirtyJPEG(f, clean)
		f.Add(clean)
		f.Add(dirty)
	}
	clean := encodeJPEG(f, gradient(24, 16), 80)
	dirty, _ := dirtyJPEG(f, clean)
	f.Add(clean)
	f.Add(dirty)
	f.Add(cat(clean[:2], seg(0xE1, exifPayload(binary.LittleEndian, 6)), clean[2:]))
	f.Add(clean[:len(clean)/2])
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xD9})
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzProcess(t, data, func(r io.Reader) (image.Image, error) { return jpeg.Decode(r) })
	})
}

func FuzzProcessPNG(f *testing.F) {
	for _, name := range []string{"basn0g01.png", "basn3p08-trns.png", "gray-gradient.interlaced.png"} {
		clean := readTestdata(f, name)
		f.Add(clean)
		f.Add(dirtyPNG(f, clean))
	}
	clean := encodePNG(f, gradient(12, 8))
	f.Add(clean)
	f.Add(dirtyPNG(f, clean))
	f.Add(clean[:len(clean)-12])
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzProcess(t, data, png.Decode)
	})
}

// fuzzProcess checks what must hold for any input: no panic; only client errors; on
// success, correct hashes, output no larger than input, a second pass that changes
// nothing, and — where the standard decoder reads the input — the same picture.
func fuzzProcess(t *testing.T, data []byte, decode func(io.Reader) (image.Image, error)) {
	var out bytes.Buffer
	res, err := Process(bytes.NewReader(data), &out, fuzzOptions)
	if err != nil {
		switch qingfeng.ErrorCode(err) {
		case qingfeng.EINVALID, qingfeng.EUNSUPPORTED, qingfeng.ETOOLARGE:
			return
		}
		t.Fatalf("error %v is not a client error", err)
	}
	got := out.Bytes()
	checkResult(t, res, data, got, res.Kind)
	if !res.Kind.Cleaned() {
		if !bytes.Equal(got, data) {
			t.Fatalf("%s not passed through unchanged", res.Kind)
		}
		return
	}
	if len(got) > len(data) {
		t.Fatalf("cleaned %s grew from %d to %d bytes", res.Kind, len(data), len(got))
	}
	if _, again, err := process(t, got, fuzzOptions); err != nil || !bytes.Equal(again, got) {
		t.Fatalf("second pass: %v, changed %v", err, !bytes.Equal(again, got))
	}
	// Decode only what the cleaner would accept as an image of this kind.
	if _, err := Sniff(data); err != nil {
		return
	}
	want, err := decode(bytes.NewReader(data))
	if err != nil {
		return
	}
	have, err := decode(bytes.NewReader(got))
	if err != nil {
		t.Fatalf("input decodes, cleaned output does not: %v", err)
	}
	if !reflect.DeepEqual(want, have) {
		t.Fatalf("cleaned output decodes to a different picture")
	}
}
