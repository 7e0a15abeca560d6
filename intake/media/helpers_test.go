package media

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/qingfeng-zj/qingfeng"
)

// Identifying strings planted in test files; none may survive cleaning.
const (
	secretGPS    = "GPS 30.27N 120.15E"
	secretSerial = "SN-ABC123"
	secretThumb  = "THUMBSECRET!" // 12 bytes: a 2×2 RGB thumbnail
	secretTail   = "trailing secret"
)

var secrets = []string{secretGPS, secretSerial, secretThumb, secretTail, "Exif", "xmpmeta", "ICC_PROFILE", "Photoshop 3.0", "c2pa"}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// gradient is a deterministic colourful test picture.
func gradient(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x ^ y) * 7), uint8(128 + x%128)})
		}
	}
	return img
}

func noise(w, h int, seed uint64) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range img.Pix {
		img.Pix[i] = uint8(r.Uint32())
	}
	return img
}

func gray16(w, h int) *image.Gray16 {
	img := image.NewGray16(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetGray16(x, y, color.Gray16{uint16(x*1000 + y*7)})
		}
	}
	return img
}

func paletted(w, h int) *image.Paletted {
	pal := color.Palette{color.Black, color.White, color.NRGBA{200, 10, 10, 255}, color.NRGBA{0, 0, 255, 128}}
	img := image.NewPaletted(image.Rect(0, 0, w, h), pal)
	for i := range img.Pix {
		img.Pix[i] = uint8(i % len(pal))
	}
	return img
}

func encodeJPEG(t testing.TB, img image.Image, quality int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: quality}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// seg builds a JPEG marker segment.
func seg(marker byte, payload []byte) []byte {
	b := []byte{0xFF, marker, 0, 0}
	binary.BigEndian.PutUint16(b[2:], uint16(len(payload)+2))
	return append(b, payload...)
}

// jfif is an APP0 JFIF segment with a 2×2 thumbnail whose pixels spell secretThumb.
func jfif() []byte {
	return seg(0xE0, cat([]byte("JFIF\x00\x01\x02\x01\x00\x48\x00\x48\x02\x02"), []byte(secretThumb)))
}

// jfifClean is what jfif must become: the same fields, no thumbnail.
func jfifClean() []byte { return seg(0xE0, []byte("JFIF\x00\x01\x02\x01\x00\x48\x00\x48\x00\x00")) }

// adobe is an APP14 Adobe segment (transform 1, YCbCr) with a secret appended.
func adobe() []byte {
	return seg(0xEE, cat([]byte("Adobe\x00\x64\x00\x00\x00\x00\x01"), []byte(secretSerial)))
}

func adobeClean() []byte { return seg(0xEE, []byte("Adobe\x00\x64\x00\x00\x00\x00\x01")) }

// metadataSegments are the segments phones and editors write that must go.
func metadataSegments() []byte {
	exif := cat([]byte("Exif\x00\x00MM\x00\x2A\x00\x00\x00\x08"), []byte("GPSLatitude "+secretGPS+" BodySerialNumber "+secretSerial))
	xmp := []byte("http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta xmlns:x='adobe:ns:meta/'><exif:GPSLatitude>" + secretGPS + "</exif:GPSLatitude></x:xmpmeta>")
	icc := []byte("ICC_PROFILE\x00\x01\x01" + "dmdd Camera " + secretSerial)
	iptc := []byte("Photoshop 3.0\x008BIM\x04\x04\x00\x00 By-line " + secretSerial)
	return cat(
		seg(0xE1, exif),
		seg(0xE1, xmp),
		seg(0xE2, icc),
		seg(0xE2, []byte("MPF\x00 second image index "+secretSerial)),
		seg(0xED, iptc),
		seg(0xEB, []byte("JP\x00c2pa manifest "+secretSerial)), // APP11 JUMBF (C2PA)
		seg(0xEF, []byte("APP15 "+secretSerial)),
		seg(0xF5, []byte("JPG5 extension "+secretSerial)),
		seg(0xE0, []byte("JFXX\x00\x10"+secretThumb)), // JFIF extension thumbnail
		seg(0xFE, []byte("COM "+secretSerial)),
	)
}

// jpegSegmentOffset walks the segments of a JPEG's header and returns the offset of the
// first segment with the given marker.
func jpegSegmentOffset(t testing.TB, b []byte, marker byte) int {
	t.Helper()
	for i := 2; i+4 <= len(b); {
		if b[i] != 0xFF {
			t.Fatalf("no marker at offset %d", i)
		}
		if b[i+1] == marker {
			return i
		}
		if b[i+1] == 0xDA {
			break
		}
		i += 2 + int(binary.BigEndian.Uint16(b[i+2:]))
	}
	t.Fatalf("marker %02X not found in header", marker)
	return 0
}

// dirtyJPEG plants metadata in a clean JPEG: after SOI, before the frame header (with
// fill bytes), before EOI, and after EOI. It returns the dirty file and the bytes
// cleaning must produce.
func dirtyJPEG(t testing.TB, clean []byte) (dirty, want []byte) {
	t.Helper()
	if !bytes.HasSuffix(clean, []byte{0xFF, 0xD9}) {
		t.Fatal("test JPEG does not end with EOI")
	}
	sof := jpegSegmentOffset(t, clean, frameMarker(t, clean))
	eoi := len(clean) - 2
	// A JFIF segment tells decoders a 3-channel image is YCbCr; planting one in a file
	// whose Adobe segment says RGB would change the picture, so only plant it where
	// the file has one already or no Adobe segment.
	var app0, app0Clean []byte
	if bytes.Contains(clean, []byte("JFIF\x00")) || !bytes.Contains(clean, []byte("Adobe")) {
		app0, app0Clean = jfif(), jfifClean()
	}
	dirty = cat(
		clean[:2], app0, adobe(), metadataSegments(),
		clean[2:sof], []byte{0xFF, 0xFF, 0xFF}, seg(0xFE, []byte("before frame "+secretSerial)), []byte{0xFF, 0xFF},
		clean[sof:eoi], seg(0xFE, []byte("after scan "+secretSerial)), seg(0xE1, []byte("Exif\x00\x00 late "+secretGPS)),
		clean[eoi:], []byte(secretTail), clean, // a second image after EOI, as MPF appends
	)
	want = cat(clean[:2], app0Clean, adobeClean(), clean[2:])
	return dirty, want
}

func frameMarker(t testing.TB, b []byte) byte {
	t.Helper()
	for i := 2; i+4 <= len(b); {
		m := b[i+1]
		if isSOF(m) {
			return m
		}
		i += 2 + int(binary.BigEndian.Uint16(b[i+2:]))
	}
	t.Fatal("no frame header")
	return 0
}

// chunk builds a PNG chunk with its CRC.
func chunk(typ string, data []byte) []byte {
	b := make([]byte, 8, 12+len(data))
	binary.BigEndian.PutUint32(b, uint32(len(data)))
	copy(b[4:], typ)
	b = append(b, data...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[4:]))
}

func ihdr(w, h uint32, depth, colour byte) []byte {
	d := binary.BigEndian.AppendUint32(nil, w)
	d = binary.BigEndian.AppendUint32(d, h)
	return chunk("IHDR", append(d, depth, colour, 0, 0, 0))
}

var pHYs = chunk("pHYs", []byte{0, 0, 0x0B, 0x13, 0, 0, 0x0B, 0x13, 1})

// pngMetadataChunks are chunks that must go.
func pngMetadataChunks() []byte {
	return cat(
		chunk("tEXt", []byte("Author\x00"+secretSerial)),
		chunk("zTXt", []byte("Comment\x00\x00x\x9c"+secretSerial)), // not valid zlib: never decompressed
		chunk("iTXt", []byte("XML:com.adobe.xmp\x00\x00\x00\x00\x00<x:xmpmeta>"+secretGPS+"</x:xmpmeta>")),
		chunk("eXIf", []byte("MM\x00\x2A GPS "+secretGPS)),
		chunk("tIME", []byte{0x07, 0xEA, 1, 2, 3, 4, 5}),
		chunk("iCCP", []byte("Camera "+secretSerial+"\x00\x00x\x9c")),
		chunk("caBX", []byte("c2pa "+secretSerial)),
		chunk("prVt", []byte("private "+secretGPS)),
	)
}

// pngChunks lists the chunk types of a PNG.
func pngChunks(t testing.TB, b []byte) []string {
	t.Helper()
	var types []string
	for i := 8; i+12 <= len(b); {
		n := int(binary.BigEndian.Uint32(b[i:]))
		types = append(types, string(b[i+4:i+8]))
		i += 12 + n
	}
	return types
}

// dirtyPNG plants metadata chunks after IHDR and before IEND, a pHYs that must stay,
// and data after IEND.
func dirtyPNG(t testing.TB, clean []byte) []byte {
	t.Helper()
	const ihdrEnd = 8 + 25
	iend := len(clean) - 12
	if string(clean[12:16]) != "IHDR" || string(clean[iend+4:iend+8]) != "IEND" {
		t.Fatal("test PNG is not IHDR … IEND")
	}
	return cat(clean[:ihdrEnd], pngMetadataChunks(), pHYs, clean[ihdrEnd:iend],
		chunk("tEXt", []byte("Late\x00"+secretGPS)), clean[iend:], []byte(secretTail), clean)
}

// sameImage decodes both files and fails unless they are the same picture.
func sameImage(t testing.TB, want, got []byte) {
	t.Helper()
	wi, wf, err := image.Decode(bytes.NewReader(want))
	if err != nil {
		t.Fatalf("decode reference: %v", err)
	}
	gi, gf, err := image.Decode(bytes.NewReader(got))
	if err != nil {
		t.Fatalf("decode cleaned %s: %v", gf, err)
	}
	if wf != gf {
		t.Fatalf("cleaned image decodes as %s, want %s", gf, wf)
	}
	if reflect.DeepEqual(wi, gi) {
		return
	}
	if wi.Bounds() != gi.Bounds() {
		t.Fatalf("cleaned image bounds %v, want %v", gi.Bounds(), wi.Bounds())
	}
	for y := wi.Bounds().Min.Y; y < wi.Bounds().Max.Y; y++ {
		for x := wi.Bounds().Min.X; x < wi.Bounds().Max.X; x++ {
			w := color.NRGBA64Model.Convert(wi.At(x, y))
			g := color.NRGBA64Model.Convert(gi.At(x, y))
			if w != g {
				t.Fatalf("pixel (%d,%d) = %v, want %v", x, y, g, w)
			}
		}
	}
	t.Fatalf("cleaned image differs (%T vs %T)", gi, wi)
}

func noSecrets(t testing.TB, out []byte) {
	t.Helper()
	for _, s := range secrets {
		if bytes.Contains(out, []byte(s)) {
			t.Errorf("output still contains %q", s)
		}
	}
}

// checkResult checks the hashes and sizes against the bytes in and out.
func checkResult(t testing.TB, res Result, in, out []byte, kind Kind) {
	t.Helper()
	if res.Kind != kind || res.ContentType != kind.ContentType() {
		t.Errorf("kind %q %q, want %q %q", res.Kind, res.ContentType, kind, kind.ContentType())
	}
	if res.ReceivedSize != int64(len(in)) || res.ReceivedSHA256 != sha(in) {
		t.Errorf("received %d %s, want %d %s", res.ReceivedSize, res.ReceivedSHA256, len(in), sha(in))
	}
	if res.StoredSize != int64(len(out)) || res.StoredSHA256 != sha(out) {
		t.Errorf("stored %d %s, want %d %s", res.StoredSize, res.StoredSHA256, len(out), sha(out))
	}
	if want := kind.Cleaned() && !bytes.Equal(in, out); res.MetadataRemoved != want {
		t.Errorf("MetadataRemoved = %v for %s, want %v (bytes changed: %v)", res.MetadataRemoved, kind, want, !bytes.Equal(in, out))
	}
}

func process(t testing.TB, in []byte, opts Options) (Result, []byte, error) {
	t.Helper()
	var out bytes.Buffer
	res, err := Process(bytes.NewReader(in), &out, opts)
	return res, out.Bytes(), err
}

// wantError fails unless err is a *qingfeng.Error with code and a message containing msg.
func wantError(t testing.TB, err error, code, msg string) {
	t.Helper()
	var qe *qingfeng.Error
	if !errors.As(err, &qe) {
		t.Fatalf("error %v (%T), want *qingfeng.Error %s", err, err, code)
	}
	if qe.Code != code {
		t.Fatalf("code %s (%v), want %s", qe.Code, err, code)
	}
	if !strings.Contains(qe.Message, msg) {
		t.Fatalf("message %q, want it to contain %q", qe.Message, msg)
	}
	if qe.English == "" {
		t.Errorf("no English message")
	}
}

// synth streams prefix, then n copies of fill, then suffix, without holding them.
type synth struct {
	prefix, suffix []byte
	fill           byte
	n              int64
	block          []byte
}

func newSynth(prefix []byte, fill byte, n int64, suffix []byte) *synth {
	return &synth{prefix: prefix, fill: fill, n: n, suffix: suffix, block: bytes.Repeat([]byte{fill}, 32<<10)}
}

func (s *synth) Read(p []byte) (int, error) {
	switch {
	case len(s.prefix) > 0:
		n := copy(p, s.prefix)
		s.prefix = s.prefix[n:]
		return n, nil
	case s.n > 0:
		n := copy(p[:min(int64(len(p)), s.n)], s.block)
		s.n -= int64(n)
		return n, nil
	case len(s.suffix) > 0:
		n := copy(p, s.suffix)
		s.suffix = s.suffix[n:]
		return n, nil
	}
	return 0, io.EOF
}

// failAfter returns n bytes of r, then err.
type failAfter struct {
	r   io.Reader
	n   int
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

type failWriter struct {
	n   int
	err error
}

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		n := f.n
		f.n = 0
		return n, f.err
	}
	f.n -= len(p)
	return len(p), nil
}

// countingReader counts what is read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func ftyp(major string, compatible ...string) []byte {
	b := []byte{0, 0, 0, 0, 'f', 't', 'y', 'p'}
	b = append(b, major...)
	b = append(b, 0, 0, 0, 0)
	for _, c := range compatible {
		b = append(b, c...)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)))
	return b
}

func describe(b []byte) string {
	if len(b) > 16 {
		return fmt.Sprintf("% x…(%d bytes)", b[:16], len(b))
	}
	return fmt.Sprintf("% x", b)
}

// exifPayload is an EXIF APP1 payload as a camera writes it: IFD0 with a description
// holding the GPS secret, the make, Orientation o (unless 0) and the body serial.
func exifPayload(order interface {
	binary.ByteOrder
	binary.AppendByteOrder
}, o uint16) []byte {
	type entry struct {
		tag, typ uint16
		count    uint32
		value    []byte // inline when ≤ 4 bytes, else stored after the IFD
	}
	entries := []entry{
		{0x010E, 2, uint32(len(secretGPS) + 1), []byte(secretGPS + "\x00")},
		{0x010F, 2, 6, []byte("Apple\x00")},
	}
	if o != 0 {
		entries = append(entries, entry{0x0112, 3, 1, order.AppendUint16(nil, o)})
	}
	entries = append(entries, entry{0xA431, 2, uint32(len(secretSerial) + 1), []byte(secretSerial + "\x00")})

	tiff := []byte("MM\x00\x2A")
	if order.String() == binary.LittleEndian.String() {
		tiff = []byte("II\x2A\x00")
	}
	tiff = order.AppendUint32(tiff, 8)
	tiff = order.AppendUint16(tiff, uint16(len(entries)))
	data := 8 + 2 + 12*len(entries) + 4
	var extra []byte
	for _, e := range entries {
		tiff = order.AppendUint16(tiff, e.tag)
		tiff = order.AppendUint16(tiff, e.typ)
		tiff = order.AppendUint32(tiff, e.count)
		if len(e.value) <= 4 {
			tiff = append(tiff, e.value...)
			tiff = append(tiff, make([]byte, 4-len(e.value))...)
			continue
		}
		tiff = order.AppendUint32(tiff, uint32(data+len(extra)))
		extra = append(extra, e.value...)
	}
	tiff = order.AppendUint32(tiff, 0) // no IFD1
	return cat([]byte("Exif\x00\x00"), tiff, extra)
}
