package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/jpeg"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/qingfeng-zj/qingfeng"
)

func jpegSources(t testing.TB) map[string][]byte {
	t.Helper()
	src := map[string][]byte{
		"go-ycbcr-q90": encodeJPEG(t, gradient(96, 64), 90),
		"go-gray":      encodeJPEG(t, image.NewGray(image.Rect(0, 0, 33, 17)), 75),
		"go-noise-q95": encodeJPEG(t, noise(160, 120, 1), 95),
	}
	for _, name := range []string{
		"video-001.progressive.jpeg", "video-001.restart2.jpeg", "video-001.cmyk.jpeg", "video-001.rgb.jpeg",
		"video-001.separate.dc.progression.progressive.jpeg", "video-005.gray.q50.2x2.progressive.jpeg",
		"video-001.q50.420.jpeg",
	} {
		src[name] = readTestdata(t, name)
	}
	return src
}

func TestProcessJPEGRemovesMetadata(t *testing.T) {
	for name, clean := range jpegSources(t) {
		t.Run(name, func(t *testing.T) {
			dirty, want := dirtyJPEG(t, clean)
			var original bytes.Buffer
			var out bytes.Buffer
			res, err := Process(bytes.NewReader(dirty), &out, Options{Original: &original})
			if err != nil {
				t.Fatal(err)
			}
			got := out.Bytes()
			noSecrets(t, got)
			sameImage(t, clean, got)
			checkResult(t, res, dirty, got, JPEG)
			if !bytes.Equal(got, want) {
				t.Errorf("cleaned JPEG is %s, want %s", describe(got), describe(want))
			}
			if !bytes.Equal(original.Bytes(), dirty) {
				t.Errorf("Original received %d bytes, want the %d received", original.Len(), len(dirty))
			}

			// Cleaning a clean file changes nothing.
			res2, again, err := process(t, got, Options{})
			if err != nil || !bytes.Equal(again, got) || res2.StoredSHA256 != res2.ReceivedSHA256 {
				t.Errorf("second pass changed the file (err %v)", err)
			}
		})
	}
}

func TestProcessPNGRemovesMetadata(t *testing.T) {
	sources := map[string][]byte{
		"go-nrgba":  encodePNG(t, gradient(64, 40)),
		"go-gray16": encodePNG(t, gray16(50, 30)),
		"go-pal":    encodePNG(t, paletted(31, 9)),
		"go-large":  encodePNG(t, noise(300, 200, 2)), // several IDAT chunks
	}
	for _, name := range []string{"gray-gradient.interlaced.png", "basn3p08-trns.png", "basn6a16.png", "basn0g01.png"} {
		sources[name] = readTestdata(t, name)
	}
	for name, clean := range sources {
		t.Run(name, func(t *testing.T) {
			dirty := dirtyPNG(t, clean)
			res, got, err := process(t, dirty, Options{})
			if err != nil {
				t.Fatal(err)
			}
			noSecrets(t, got)
			sameImage(t, clean, got)
			checkResult(t, res, dirty, got, PNG)

			// The chunks are the clean file's, in order, less text, plus our pHYs.
			var want []string
			for i, typ := range pngChunks(t, clean) {
				if typ != "tEXt" {
					want = append(want, typ)
				}
				if i == 0 {
					want = append(want, "pHYs")
				}
			}
			if gotTypes := pngChunks(t, got); strings.Join(gotTypes, " ") != strings.Join(want, " ") {
				t.Errorf("chunks %v, want %v", gotTypes, want)
			}
			if !bytes.Contains(got, pHYs) {
				t.Errorf("pHYs chunk was not kept byte for byte")
			}
			if strings.HasPrefix(name, "go-") {
				const ihdrEnd = 33
				if exact := cat(clean[:ihdrEnd], pHYs, clean[ihdrEnd:]); !bytes.Equal(got, exact) {
					t.Errorf("cleaned PNG is %s, want %s", describe(got), describe(exact))
				}
			}
		})
	}
}

func TestProcessPassesThroughUncleanableKinds(t *testing.T) {
	body := bytes.Repeat([]byte("moov mdat GPS "+secretGPS+" "), 5000) // metadata we cannot remove
	tests := []struct {
		name string
		in   []byte
		kind Kind
	}{
		{"mp4", cat(ftyp("isom", "isom", "iso2", "avc1", "mp41"), body), MP4},
		{"heic", cat(ftyp("heic", "mif1", "heic"), body), HEIF},
		{"pdf", cat([]byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"), body, []byte("%%EOF\n")), PDF},
		{"pdf-5-bytes", []byte("%PDF-"), PDF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, out, err := process(t, tt.in, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, tt.in) {
				t.Fatalf("output differs from input")
			}
			checkResult(t, res, tt.in, out, tt.kind)
			if res.StoredSHA256 != res.ReceivedSHA256 {
				t.Errorf("stored hash differs from received hash")
			}
		})
	}
}

// TestProcessReadSizes feeds the same files through readers that return data in
// awkward pieces: the result must not depend on how the upload arrives.
func TestProcessReadSizes(t *testing.T) {
	dirtyJ, wantJ := dirtyJPEG(t, readTestdata(t, "video-001.restart2.jpeg"))
	dirtyP := dirtyPNG(t, encodePNG(t, noise(100, 80, 3)))
	_, wantP, err := process(t, dirtyP, Options{})
	if err != nil {
		t.Fatal(err)
	}
	readers := map[string]func(io.Reader) io.Reader{
		"one-byte":  iotest.OneByteReader,
		"half":      iotest.HalfReader,
		"data-err":  iotest.DataErrReader,
		"odd-sizes": func(r io.Reader) io.Reader { return &oddReader{r: r} },
	}
	for name, wrap := range readers {
		for _, f := range []struct {
			kind     string
			in, want []byte
		}{{"jpeg", dirtyJ, wantJ}, {"png", dirtyP, wantP}} {
			t.Run(name+"/"+f.kind, func(t *testing.T) {
				var out bytes.Buffer
				res, err := Process(wrap(bytes.NewReader(f.in)), &out, Options{})
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(out.Bytes(), f.want) {
					t.Errorf("output differs from reading all at once")
				}
				if res.ReceivedSHA256 != sha(f.in) {
					t.Errorf("received hash differs")
				}
			})
		}
	}
}

// oddReader returns 1, 2, 3, … 17, 1, 2, … bytes per read.
type oddReader struct {
	r io.Reader
	i int
}

func (o *oddReader) Read(p []byte) (int, error) {
	o.i = o.i%17 + 1
	return o.r.Read(p[:min(len(p), o.i)])
}

func TestProcessErrors(t *testing.T) {
	clean := encodeJPEG(t, gradient(96, 64), 90)
	cleanPNG := encodePNG(t, gradient(64, 40))
	sof := jpegSegmentOffset(t, clean, 0xC0)
	sos := jpegSegmentOffset(t, clean, 0xDA)
	withSOF := func(h, w uint16, comps byte) []byte {
		p := []byte{8, byte(h >> 8), byte(h), byte(w >> 8), byte(w), comps}
		for i := range int(comps) {
			p = append(p, byte(i+1), 0x11, 0)
		}
		return cat(clean[:sof], seg(0xC0, p), clean[sof+2+int(binary.BigEndian.Uint16(clean[sof+2:])):])
	}
	flip := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		b[i] ^= 0x01
		return b
	}
	ihdrHuge := ihdr(100_000, 100_000, 8, 6)
	idat := chunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	iend := chunk("IEND", nil)
	minimalPNG := func(chunks ...[]byte) []byte { return cat(pngMagic, cat(chunks...)) }
	badLength := cat(pngMagic, ihdr(1, 1, 8, 0), []byte{0x80, 0, 0, 0, 'I', 'D', 'A', 'T'})

	const (
		corrupt   = "图片文件不完整或已损坏"
		tooBig    = "图片尺寸过大"
		accepted  = "仅支持 JPEG、PNG、HEIC/HEIF、MP4、PDF 文件"
		container = "文件格式无效或已损坏"
	)
	tests := []struct {
		name string
		in   []byte
		opts Options
		code string
		msg  string
	}{
		{"empty", nil, Options{}, qingfeng.EINVALID, "文件为空"},
		{"text", []byte("这是一段文字，不是图片。Just some text.\n"), Options{}, qingfeng.EUNSUPPORTED, accepted},
		{"5 bytes unknown", []byte("hello"), Options{}, qingfeng.EUNSUPPORTED, accepted},
		{"5 bytes jpeg", []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00}, Options{}, qingfeng.EINVALID, corrupt},
		{"2 bytes jpeg SOI", []byte{0xFF, 0xD8}, Options{}, qingfeng.EUNSUPPORTED, accepted},
		{"7 bytes of png signature", pngMagic[:7], Options{}, qingfeng.EUNSUPPORTED, accepted},
		{"gif", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), Options{}, qingfeng.EUNSUPPORTED, accepted},
		{"webp", []byte("RIFF\x24\x00\x00\x00WEBPVP8 "), Options{}, qingfeng.EUNSUPPORTED, accepted},
		{"zip", []byte("PK\x03\x04\x14\x00\x00\x00"), Options{}, qingfeng.EUNSUPPORTED, accepted},
		{"html", []byte("<!doctype html><script>alert(1)</script>"), Options{}, qingfeng.EUNSUPPORTED, accepted},
		{"pdf not at start", []byte(" %PDF-1.4"), Options{}, qingfeng.EUNSUPPORTED, accepted},

		{"avif", ftyp("avif", "avif", "mif1", "miaf"), Options{}, qingfeng.EUNSUPPORTED, accepted},
		{"quicktime", ftyp("qt  ", "qt  "), Options{}, qingfeng.EUNSUPPORTED, accepted},
		{"ftyp unknown brands", ftyp("abcd", "efgh"), Options{}, qingfeng.EUNSUPPORTED, accepted},
		{"ftyp size 12", []byte("\x00\x00\x00\x0cftypisom"), Options{}, qingfeng.EINVALID, container},
		{"ftyp size 0", []byte("\x00\x00\x00\x00ftypisom\x00\x00\x00\x00"), Options{}, qingfeng.EINVALID, container},
		{"ftyp size 1 (64-bit)", []byte("\x00\x00\x00\x01ftypisom\x00\x00\x00\x00"), Options{}, qingfeng.EINVALID, container},
		{"ftyp size past file", ftyp("isom", "isom")[:18], Options{}, qingfeng.EINVALID, container},
		{"ftyp size huge", []byte("\x7f\x00\x00\x00ftypisom\x00\x00\x00\x00"), Options{}, qingfeng.EINVALID, container},
		{"ftyp unaligned", []byte("\x00\x00\x00\x11ftypisom\x00\x00\x00\x00i"), Options{}, qingfeng.EINVALID, container},
		{"ftyp binary brand", ftyp("\x00\x01\x02\x03", "isom"), Options{}, qingfeng.EINVALID, container},

		{"jpeg cut after SOI marker", clean[:3], Options{}, qingfeng.EINVALID, corrupt},
		{"jpeg cut in table", clean[:10], Options{}, qingfeng.EINVALID, corrupt},
		{"jpeg cut in frame header", clean[:sof+6], Options{}, qingfeng.EINVALID, corrupt},
		{"jpeg cut in scan", clean[:len(clean)/2+sos/2], Options{}, qingfeng.EINVALID, corrupt},
		{"jpeg cut in EOI", clean[:len(clean)-1], Options{}, qingfeng.EINVALID, corrupt},
		{"jpeg without EOI", clean[:len(clean)-2], Options{}, qingfeng.EINVALID, corrupt},
		{"jpeg 65535x65535", withSOF(65535, 65535, 3), Options{}, qingfeng.EINVALID, tooBig},
		{"jpeg over MaxPixels", clean, Options{MaxPixels: 96*64 - 1}, qingfeng.EINVALID, tooBig},
		{"jpeg zero height", withSOF(0, 96, 3), Options{}, qingfeng.EINVALID, corrupt},
		{"jpeg zero width", withSOF(64, 0, 3), Options{}, qingfeng.EINVALID, corrupt},
		{"jpeg frame with no components", withSOF(64, 96, 0), Options{}, qingfeng.EINVALID, corrupt},
		{"jpeg frame length mismatch", cat(clean[:sof], seg(0xC0, []byte{8, 0, 1, 0, 1, 3, 1, 0x11, 0}), clean[sos:]), Options{}, qingfeng.EINVALID, corrupt},
		{"jpeg segment length 0", cat(clean[:2], []byte{0xFF, 0xE1, 0, 0}, clean[2:]), Options{}, qingfeng.EINVALID, corrupt},
		{"jpeg segment length 1", cat(clean[:2], []byte{0xFF, 0xDB, 0, 1}, clean[2:]), Options{}, qingfeng.EINVALID, corrupt},
		{"jpeg segment longer than file", cat(clean[:2], []byte{0xFF, 0xE1, 0xFF, 0xFF, 'E', 'x'}), Options{}, qingfeng.EINVALID, corrupt},
		{"jpeg scan before frame", cat(clean[:sof], clean[sos:]), Options{}, qingfeng.EINVALID, corrupt},
		{"jpeg EOI without scan", []byte{0xFF, 0xD8, 0xFF, 0xD9}, Options{}, qingfeng.EINVALID, corrupt},
		{"jpeg second SOI", cat(clean[:2], clean), Options{}, qingfeng.EINVALID, corrupt},
		{"jpeg reserved marker", cat(clean[:2], seg(0x02, []byte("x")), clean[2:]), Options{}, qingfeng.EINVALID, corrupt},
		{"jpeg scan with 0 components", cat(clean[:sos], seg(0xDA, []byte{0, 0, 63, 0}), []byte{0xFF, 0xD9}), Options{}, qingfeng.EINVALID, corrupt},
		{"jpeg scan with 5 components", cat(clean[:sos], seg(0xDA, []byte{5, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 0, 63, 0}), []byte{0xFF, 0xD9}), Options{}, qingfeng.EINVALID, corrupt},

		{"png just signature", pngMagic, Options{}, qingfeng.EINVALID, corrupt},
		{"png cut in IHDR", cleanPNG[:20], Options{}, qingfeng.EINVALID, corrupt},
		{"png cut in IDAT", cleanPNG[:len(cleanPNG)-30], Options{}, qingfeng.EINVALID, corrupt},
		{"png cut in IEND CRC", cleanPNG[:len(cleanPNG)-2], Options{}, qingfeng.EINVALID, corrupt},
		{"png without IEND", cleanPNG[:len(cleanPNG)-12], Options{}, qingfeng.EINVALID, corrupt},
		{"png 100000x100000", minimalPNG(ihdrHuge, idat, iend), Options{}, qingfeng.EINVALID, tooBig},
		{"png over MaxPixels", cleanPNG, Options{MaxPixels: 64*40 - 1}, qingfeng.EINVALID, tooBig},
		{"png IHDR CRC", flip(cleanPNG, 8+8+13), Options{}, qingfeng.EINVALID, corrupt},
		{"png IHDR data", flip(cleanPNG, 8+8+3), Options{}, qingfeng.EINVALID, corrupt},
		{"png IDAT CRC", flip(cleanPNG, len(cleanPNG)-12-1), Options{}, qingfeng.EINVALID, corrupt},
		{"png IDAT data", flip(cleanPNG, 8+25+8+2), Options{}, qingfeng.EINVALID, corrupt},
		{"png dropped chunk CRC", minimalPNG(ihdr(1, 1, 8, 0), flip(chunk("tEXt", []byte("a\x00b")), 12), idat, iend), Options{}, qingfeng.EINVALID, corrupt},
		{"png IEND CRC", flip(cleanPNG, len(cleanPNG)-1), Options{}, qingfeng.EINVALID, corrupt},
		{"png chunk length 2^31", badLength, Options{}, qingfeng.EINVALID, corrupt},
		{"png chunk type with digit", minimalPNG(ihdr(1, 1, 8, 0), chunk("ID4T", nil), idat, iend), Options{}, qingfeng.EINVALID, corrupt},
		{"png first chunk not IHDR", minimalPNG(pHYs, ihdr(1, 1, 8, 0), idat, iend), Options{}, qingfeng.EINVALID, corrupt},
		{"png IHDR twice", minimalPNG(ihdr(1, 1, 8, 0), ihdr(1, 1, 8, 0), idat, iend), Options{}, qingfeng.EINVALID, corrupt},
		{"png IHDR short", minimalPNG(chunk("IHDR", make([]byte, 12)), idat, iend), Options{}, qingfeng.EINVALID, corrupt},
		{"png zero width", minimalPNG(ihdr(0, 1, 8, 0), idat, iend), Options{}, qingfeng.EINVALID, corrupt},
		{"png width 2^31", minimalPNG(ihdr(1<<31, 1, 8, 0), idat, iend), Options{}, qingfeng.EINVALID, corrupt},
		{"png bad depth", minimalPNG(ihdr(1, 1, 3, 0), idat, iend), Options{}, qingfeng.EINVALID, corrupt},
		{"png bad colour type", minimalPNG(ihdr(1, 1, 8, 5), idat, iend), Options{}, qingfeng.EINVALID, corrupt},
		{"png no IDAT", minimalPNG(ihdr(1, 1, 8, 0), iend), Options{}, qingfeng.EINVALID, corrupt},
		{"png IEND with data", minimalPNG(ihdr(1, 1, 8, 0), idat, chunk("IEND", []byte{0})), Options{}, qingfeng.EINVALID, corrupt},

		{"jpeg over MaxBytes", clean, Options{MaxBytes: int64(len(clean) - 1)}, qingfeng.ETOOLARGE, "文件超过大小上限"},
		{"trailing data over MaxBytes", cat(clean, []byte(secretTail)), Options{MaxBytes: int64(len(clean) + 1)}, qingfeng.ETOOLARGE, "文件超过大小上限"},
		{"pdf over MaxBytes", []byte("%PDF-1.4 xx"), Options{MaxBytes: 10}, qingfeng.ETOOLARGE, "文件超过大小上限（10 字节）"},
		{"unknown over MaxBytes", bytes.Repeat([]byte("x"), 2048), Options{MaxBytes: 1024}, qingfeng.ETOOLARGE, "文件超过大小上限（1 KB）"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, _, err := process(t, tt.in, tt.opts)
			wantError(t, err, tt.code, tt.msg)
			if res != (Result{}) {
				t.Errorf("Result %+v on error, want zero", res)
			}
		})
	}
}

func TestProcessSizeLimit(t *testing.T) {
	clean := encodeJPEG(t, gradient(96, 64), 90)
	t.Run("jpeg exactly at limit", func(t *testing.T) {
		res, out, err := process(t, clean, Options{MaxBytes: int64(len(clean))})
		if err != nil {
			t.Fatal(err)
		}
		checkResult(t, res, clean, out, JPEG)
	})
	t.Run("pdf exactly at limit", func(t *testing.T) {
		in := []byte("%PDF-1.4 xx")
		if _, _, err := process(t, in, Options{MaxBytes: int64(len(in))}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("default limit", func(t *testing.T) {
		for _, extra := range []int64{0, 1} {
			in := newSynth([]byte("%PDF-1.7\n"), ' ', DefaultMaxBytes-9+extra, nil)
			res, err := Process(in, io.Discard, Options{})
			if extra == 0 {
				if err != nil || res.ReceivedSize != DefaultMaxBytes {
					t.Fatalf("at the limit: %v, size %d", err, res.ReceivedSize)
				}
				continue
			}
			wantError(t, err, qingfeng.ETOOLARGE, "文件超过大小上限（50 MB）")
		}
	})
	t.Run("original gets at most one byte more", func(t *testing.T) {
		var original bytes.Buffer
		in := bytes.Repeat([]byte("%PDF-"), 1000)
		_, err := Process(bytes.NewReader(in), io.Discard, Options{MaxBytes: 100, Original: &original})
		wantError(t, err, qingfeng.ETOOLARGE, "文件超过大小上限")
		if original.Len() > 101 {
			t.Errorf("Original received %d bytes of a file over a 100-byte limit", original.Len())
		}
	})
}

// TestProcessRejectsHugePNGEarly feeds a PNG header claiming 100000×100000 followed by
// an endless IDAT: Process must stop at the header, having read little.
func TestProcessRejectsHugePNGEarly(t *testing.T) {
	head := cat(pngMagic, ihdr(100_000, 100_000, 8, 6), []byte{0x7F, 0xFF, 0xFF, 0xFF, 'I', 'D', 'A', 'T'})
	in := &countingReader{r: newSynth(head, 0, 1<<40, nil)}
	_, err := Process(in, io.Discard, Options{MaxBytes: 1 << 40})
	wantError(t, err, qingfeng.EINVALID, "图片尺寸过大（100000×100000 像素），上限为 1 亿像素")
	if in.n > 2*bufSize {
		t.Errorf("read %d bytes before rejecting the header", in.n)
	}
}

var errBoom = errors.New("boom")

func TestProcessIOErrors(t *testing.T) {
	clean := encodeJPEG(t, gradient(96, 64), 90)
	cleanPNG := encodePNG(t, gradient(64, 40))
	pdf := cat([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("0123456789"), 10000))
	t.Run("reader fails", func(t *testing.T) {
		for name, in := range map[string][]byte{"jpeg": clean, "png": cleanPNG, "pdf": pdf} {
			for _, at := range []int{0, 5, 100, len(in) / 2} {
				_, err := Process(&failAfter{r: bytes.NewReader(in), n: at, err: errBoom}, io.Discard, Options{})
				if !errors.Is(err, errBoom) || qingfeng.ErrorCode(err) != qingfeng.EINTERNAL {
					t.Errorf("%s failing after %d bytes: %v, want boom as an internal error", name, at, err)
				}
			}
		}
	})
	t.Run("upload cut short", func(t *testing.T) {
		// net/http returns io.ErrUnexpectedEOF when a body ends before its length.
		for name, tt := range map[string]struct {
			in  []byte
			msg string
		}{"jpeg": {clean, "图片文件不完整或已损坏"}, "png": {cleanPNG, "图片文件不完整或已损坏"}, "pdf": {pdf, "文件不完整或已损坏"}} {
			_, err := Process(&failAfter{r: bytes.NewReader(tt.in), n: len(tt.in) / 2, err: io.ErrUnexpectedEOF}, io.Discard, Options{})
			t.Run(name, func(t *testing.T) { wantError(t, err, qingfeng.EINVALID, tt.msg) })
		}
	})
	t.Run("writer fails", func(t *testing.T) {
		for name, in := range map[string][]byte{"jpeg": clean, "png": cleanPNG, "pdf": pdf} {
			for _, at := range []int{0, 10, len(in) / 2} {
				_, err := Process(bytes.NewReader(in), &failWriter{n: at, err: errBoom}, Options{})
				if !errors.Is(err, errBoom) || qingfeng.ErrorCode(err) != qingfeng.EINTERNAL {
					t.Errorf("%s writer failing after %d bytes: %v, want boom as an internal error", name, at, err)
				}
			}
		}
	})
	t.Run("original fails", func(t *testing.T) {
		for name, in := range map[string][]byte{"jpeg": clean, "pdf": pdf} {
			_, err := Process(bytes.NewReader(in), io.Discard, Options{Original: &failWriter{n: 100, err: errBoom}})
			if !errors.Is(err, errBoom) || qingfeng.ErrorCode(err) != qingfeng.EINTERNAL {
				t.Errorf("%s: %v, want boom as an internal error", name, err)
			}
		}
	})
}

func TestProcessJPEGDetails(t *testing.T) {
	clean := encodeJPEG(t, gradient(96, 64), 90)
	sof := jpegSegmentOffset(t, clean, 0xC0)
	tests := []struct {
		name     string
		in, want []byte
	}{
		{"stray bytes between segments are dropped", cat(clean[:sof], []byte{0, 0, 0x42}, clean[sof:]), clean},
		{"short JFIF is kept", cat(clean[:2], seg(0xE0, []byte("JFIF\x00\x01")), clean[2:]), cat(clean[:2], seg(0xE0, []byte("JFIF\x00\x01")), clean[2:])},
		{"JFIF with a long tail is cut to its fields", cat(clean[:2], seg(0xE0, cat(jfifClean()[4:], []byte(secretSerial))), clean[2:]), cat(clean[:2], jfifClean(), clean[2:])},
		{"APP0 shorter than JFIF's id is dropped", cat(clean[:2], seg(0xE0, []byte("JF")), clean[2:]), clean},
		{"APP14 that is not Adobe is dropped", cat(clean[:2], seg(0xEE, []byte("NotAdobe1234567")), clean[2:]), clean},
		{"JFIF without thumbnail is kept as is", cat(clean[:2], jfifClean(), clean[2:]), cat(clean[:2], jfifClean(), clean[2:])},
		{"TEM and RST outside a scan are dropped", cat(clean[:sof], []byte{0xFF, 0x01, 0xFF, 0xD3}, clean[sof:]), clean},
		{"FF00 outside a scan is dropped", cat(clean[:sof], []byte{0xFF, 0x00}, clean[sof:]), clean},
		{"fill bytes inside a scan before EOI are dropped", cat(clean[:len(clean)-2], []byte{0xFF, 0xFF, 0xFF}, clean[len(clean)-2:]), clean},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, got, err := process(t, tt.in, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("got %s, want %s", describe(got), describe(tt.want))
			}
			checkResult(t, res, tt.in, got, JPEG)
			sameImage(t, clean, got)
		})
	}
}

// TestProcessJPEGKeepsOrientation: the only EXIF tag that survives is Orientation, so
// that portrait photos are not shown lying on their side.
func TestProcessJPEGKeepsOrientation(t *testing.T) {
	clean := encodeJPEG(t, gradient(96, 64), 90)
	le, be := binary.LittleEndian, binary.BigEndian
	tests := []struct {
		name  string
		app1s [][]byte
		wantO uint16 // 0: no EXIF in the output
	}{
		{"little-endian rotated 90°", [][]byte{exifPayload(le, 6)}, 6},
		{"big-endian rotated 270°", [][]byte{exifPayload(be, 8)}, 8},
		{"mirrored", [][]byte{exifPayload(le, 2)}, 2},
		{"upright", [][]byte{exifPayload(le, 1)}, 0},
		{"no orientation", [][]byte{exifPayload(le, 0)}, 0},
		{"orientation out of range", [][]byte{exifPayload(le, 9)}, 0},
		{"XMP first, then EXIF", [][]byte{[]byte("http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta/>"), exifPayload(be, 3)}, 3},
		{"two EXIF segments: the first wins", [][]byte{exifPayload(le, 6), exifPayload(le, 8)}, 6},
		{"truncated IFD", [][]byte{exifPayload(le, 6)[:30]}, 0},
		{"IFD offset past the end", [][]byte{[]byte("Exif\x00\x00II\x2A\x00\xff\x00\x00\x00")}, 0},
		{"IFD offset inside the header", [][]byte{[]byte("Exif\x00\x00MM\x00\x2A\x00\x00\x00\x02\x00\x00\x00\x00")}, 0},
		{"not TIFF", [][]byte{[]byte("Exif\x00\x00XX\x00\x2A\x00\x00\x00\x08")}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var segs [][]byte
			for _, p := range tt.app1s {
				segs = append(segs, seg(0xE1, p))
			}
			dirty := cat(clean[:2], cat(segs...), clean[2:])
			res, got, err := process(t, dirty, Options{})
			if err != nil {
				t.Fatal(err)
			}
			checkResult(t, res, dirty, got, JPEG)
			sameImage(t, clean, got)
			for _, s := range []string{secretGPS, secretSerial, "Apple", "xmpmeta"} {
				if bytes.Contains(got, []byte(s)) {
					t.Errorf("output still contains %q", s)
				}
			}
			want := clean
			if tt.wantO != 0 {
				want = cat(clean[:2], seg(0xE1, minimalExif(tt.wantO)), clean[2:])
				if o := exifOrientation(minimalExif(tt.wantO)); o != tt.wantO {
					t.Fatalf("minimal EXIF reads back orientation %d", o)
				}
			}
			if !bytes.Equal(got, want) {
				t.Errorf("got %s, want %s", describe(got[:min(len(got), 60)]), describe(want[:60]))
			}
		})
	}
}

func TestSniff(t *testing.T) {
	tests := []struct {
		name string
		head []byte
		want Kind
		code string
	}{
		{"jpeg", []byte{0xFF, 0xD8, 0xFF, 0xE0}, JPEG, ""},
		{"jpeg 3 bytes", []byte{0xFF, 0xD8, 0xFF}, JPEG, ""},
		{"png", pngMagic, PNG, ""},
		{"pdf", []byte("%PDF-1.7"), PDF, ""},
		{"heic", ftyp("heic", "mif1", "heic"), HEIF, ""},
		{"heix", ftyp("heix", "mif1", "heix"), HEIF, ""},
		{"heif sequence", ftyp("msf1", "msf1", "hevc", "iso8"), HEIF, ""},
		{"hevc sequence", ftyp("hevc", "iso8", "msf1"), HEIF, ""},
		{"mif1 generic", ftyp("mif1", "mif1", "heic"), HEIF, ""},
		{"mif1 with avif compatible", ftyp("mif1", "avif", "mif1", "miaf"), HEIF, ""},
		{"unknown major, heic compatible", ftyp("xxxx", "mp41", "heic"), HEIF, ""},
		{"isom", ftyp("isom", "isom", "iso2", "avc1", "mp41"), MP4, ""},
		{"mp42", ftyp("mp42", "mp42", "isom"), MP4, ""},
		{"iso5 dash", ftyp("iso5", "iso6", "dash"), MP4, ""},
		{"m4v", ftyp("M4V ", "M4V ", "M4A ", "mp42", "isom"), MP4, ""},
		{"m4a audio", ftyp("M4A ", "M4A ", "mp42", "isom"), MP4, ""},
		{"3gp", ftyp("3gp4", "isom", "3gp4"), MP4, ""},
		{"3g2", ftyp("3g2a", "3g2a"), MP4, ""},
		{"no compatible brands", ftyp("mp41"), MP4, ""},
		{"unknown major, isom compatible", ftyp("xyz1", "isom"), MP4, ""},
		{"avif", ftyp("avif", "avif", "mif1", "miaf"), "", qingfeng.EUNSUPPORTED},
		{"avif sequence", ftyp("avis", "avis", "msf1"), "", qingfeng.EUNSUPPORTED},
		{"quicktime", ftyp("qt  ", "qt  "), "", qingfeng.EUNSUPPORTED},
		{"crx raw", ftyp("crx ", "crx "), "", qingfeng.EUNSUPPORTED},
		{"empty", nil, "", qingfeng.EUNSUPPORTED},
		{"bmp", []byte("BM\x00\x00"), "", qingfeng.EUNSUPPORTED},
		{"tiff", []byte("II*\x00\x08\x00\x00\x00"), "", qingfeng.EUNSUPPORTED},
		{"jpeg 2000", []byte("\x00\x00\x00\x0cjP  \r\n\x87\n"), "", qingfeng.EUNSUPPORTED},
		{"ftyp too short", []byte("\x00\x00\x00\x08ftyp"), "", qingfeng.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Sniff(tt.head)
			if tt.code != "" {
				if qingfeng.ErrorCode(err) != tt.code || got != "" {
					t.Fatalf("Sniff = %q, %v; want %s", got, err, tt.code)
				}
				if tt.code == qingfeng.EUNSUPPORTED {
					var qe *qingfeng.Error
					errors.As(err, &qe)
					if qe.Message != "仅支持 JPEG、PNG、HEIC/HEIF、MP4、PDF 文件" || len(qe.Allowed) != 5 {
						t.Errorf("message %q, allowed %v", qe.Message, qe.Allowed)
					}
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Sniff = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestKindContentType(t *testing.T) {
	for kind, want := range map[Kind]string{JPEG: "image/jpeg", PNG: "image/png", HEIF: "image/heif", MP4: "video/mp4", PDF: "application/pdf", "": "application/octet-stream"} {
		if got := kind.ContentType(); got != want {
			t.Errorf("%q.ContentType() = %q, want %q", kind, got, want)
		}
	}
}

// TestProcessStreamsInConstantMemory is the streaming property: a 64 MiB file costs a
// few buffers, not its size. It measures bytes allocated, which does not depend on
// timing or on the garbage collector's mood.
func TestProcessStreamsInConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 3×64 MiB")
	}
	const size = 64 << 20
	frame := []byte{8, 0x0F, 0xA0, 0x0B, 0xB8, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1} // 3000×4000
	jpegHead := cat([]byte{0xFF, 0xD8}, jfifClean(), seg(0xDB, make([]byte, 65)), seg(0xC0, frame),
		seg(0xC4, make([]byte, 29)), seg(0xDA, []byte{3, 1, 0, 2, 0x11, 3, 0x11, 0, 63, 0}))

	idatCRC := crc32.NewIEEE()
	idatCRC.Write([]byte("IDAT"))
	block := bytes.Repeat([]byte{0x55}, 1<<20)
	for range size >> 20 {
		idatCRC.Write(block)
	}
	pngHead := cat(pngMagic, ihdr(4000, 3000, 8, 2), binary.BigEndian.AppendUint32(nil, size), []byte("IDAT"))
	pngTail := cat(binary.BigEndian.AppendUint32(nil, idatCRC.Sum32()), chunk("IEND", nil))

	tests := []struct {
		name string
		in   func() io.Reader
		kind Kind
	}{
		{"jpeg", func() io.Reader { return newSynth(jpegHead, 0x55, size, []byte{0xFF, 0xD9}) }, JPEG},
		{"png", func() io.Reader { return newSynth(pngHead, 0x55, size, pngTail) }, PNG},
		{"mp4", func() io.Reader { return newSynth(ftyp("isom", "isom"), 0x55, size, nil) }, MP4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			res, err := Process(in, io.Discard, Options{MaxBytes: 2 * size})
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			if res.Kind != tt.kind || res.ReceivedSize < size || res.StoredSHA256 != res.ReceivedSHA256 {
				t.Fatalf("unexpected result %+v", res)
			}
			allocated := after.TotalAlloc - before.TotalAlloc
			t.Logf("%s: %d MiB processed with %d KiB allocated", tt.name, res.ReceivedSize>>20, allocated>>10)
			if allocated > 8<<20 {
				t.Errorf("allocated %d bytes to process %d: not streaming", allocated, res.ReceivedSize)
			}
		})
	}
}

func ExampleProcess() {
	// A JPEG straight from a phone, with its EXIF block.
	var photo bytes.Buffer
	photo.Write([]byte{0xFF, 0xD8})
	photo.Write(seg(0xE1, []byte("Exif\x00\x00 GPS 30.27N 120.15E SN-ABC123")))
	var clean bytes.Buffer
	if err := jpeg.Encode(&clean, gradient(8, 8), nil); err != nil {
		panic(err)
	}
	photo.Write(clean.Bytes()[2:])

	var stored bytes.Buffer
	res, err := Process(&photo, &stored, Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.ContentType, res.MetadataRemoved, res.StoredSize < res.ReceivedSize)
	fmt.Println("GPS kept:", bytes.Contains(stored.Bytes(), []byte("GPS")))
	// Output:
	// image/jpeg true true
	// GPS kept: false
}

// TestMetadataRemovedIsHonest: metadata_removed says what happened, not which path the
// file took: an image that carried nothing is stored bit for bit and reported false.
func TestMetadataRemovedIsHonest(t *testing.T) {
	cleanJPEG := encodeJPEG(t, gradient(16, 16), 90)
	dirty, _ := dirtyJPEG(t, cleanJPEG)
	cleanPNG := encodePNG(t, gradient(16, 16))
	pdf := []byte("%PDF-1.7\n1 0 obj << /Author (张三) >> endobj\n%%EOF\n")
	tests := []struct {
		name string
		in   []byte
		want bool
	}{
		{"JPEG without metadata", cleanJPEG, false},
		{"JPEG with metadata", dirty, true},
		{"JPEG with only bytes after EOI", cat(cleanJPEG, []byte(secretTail)), true},
		{"PNG without metadata", cleanPNG, false},
		{"PNG with metadata", dirtyPNG(t, cleanPNG), true},
		{"PDF, not cleanable", pdf, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, out, err := process(t, tt.in, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.MetadataRemoved != tt.want {
				t.Errorf("MetadataRemoved = %v, want %v", res.MetadataRemoved, tt.want)
			}
			if same := res.ReceivedSHA256 == res.StoredSHA256; same == res.MetadataRemoved || same != bytes.Equal(tt.in, out) {
				t.Errorf("hashes equal %v, bytes equal %v, MetadataRemoved %v", same, bytes.Equal(tt.in, out), res.MetadataRemoved)
			}
		})
	}
}
