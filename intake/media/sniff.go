package media

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/qingfeng-zj/qingfeng"
)

// SniffLen is how much of the head of a file Sniff needs: the whole ftyp box of an
// ISO-BMFF file must be in it. Real ftyp boxes are 20 to 100 bytes long.
const SniffLen = 512

var (
	jpegMagic = []byte{0xFF, 0xD8, 0xFF}
	pngMagic  = []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'}
	pdfMagic  = []byte("%PDF-")
)

// Brands of the ISO-BMFF ftyp box (ISO/IEC 14496-12), by the kind they stand for.
//
// HEIF (ISO/IEC 23008-12): heic/heix (HEVC still images, as phones write them),
// hevc/hevx (HEVC image sequences), heim/heis/hevm/hevs (multi-layer and scalable
// HEVC), mif1/msf1 (the generic image and sequence brands; MIAF adds miaf).
//
// MP4: isom and iso2–iso9 (ISO base media), mp41/mp42/mp71 (MP4), avc1, M4V/M4A
// (iTunes video and audio), M4VP, f4v, dash, MSNV (Sony), and the 3GPP/3GPP2 brands
// phones use for recordings. Audio-only M4A is accepted on purpose: a recording can be
// the evidence.
//
// Refused although they are ISO-BMFF: AVIF (avif, avis) — an AV1 image that viewers
// need to know as image/avif, and not in the list the reporter is told is accepted —
// and QuickTime (qt), whose files iPhones record: they are not MP4. A file whose major
// brand is refused is refused even if its compatible brands name an accepted one.
var (
	heifBrands = brandSet("heic", "heix", "hevc", "hevx", "heim", "heis", "hevm", "hevs", "mif1", "msf1", "miaf")
	mp4Brands  = brandSet("isom", "iso2", "iso3", "iso4", "iso5", "iso6", "iso7", "iso8", "iso9",
		"mp41", "mp42", "mp71", "avc1", "M4V ", "M4VH", "M4VP", "M4A ", "f4v ", "dash", "MSNV",
		"3gp4", "3gp5", "3gp6", "3gp7", "3gp8", "3gp9", "3gg6", "3gr6", "3gs6", "3ge6", "3g2a", "3g2b", "3g2c")
	refusedBrands = brandSet("avif", "avis", "qt  ")
)

func brandSet(brands ...string) map[string]bool {
	m := make(map[string]bool, len(brands))
	for _, b := range brands {
		m[b] = true
	}
	return m
}

// acceptedTypes is what a client is told it may send instead.
var acceptedTypes = []string{"image/jpeg", "image/png", "image/heif", "video/mp4", "application/pdf"}

func unsupported(detail string) *qingfeng.Error {
	return &qingfeng.Error{
		Code:    qingfeng.EUNSUPPORTED,
		Message: "仅支持 JPEG、PNG、HEIC/HEIF、MP4、PDF 文件",
		English: "only JPEG, PNG, HEIC/HEIF, MP4 and PDF files are accepted",
		Allowed: acceptedTypes,
		Err:     fmt.Errorf("media: %s", detail),
	}
}

func corruptContainer(format string, args ...any) *qingfeng.Error {
	return &qingfeng.Error{
		Code:    qingfeng.EINVALID,
		Message: "文件格式无效或已损坏",
		English: "the file is malformed or corrupt",
		Err:     fmt.Errorf(format, args...),
	}
}

// Sniff recognises a file's kind from its first bytes, never from its name or a
// client's content type. head should hold SniffLen bytes, or the whole file if it is
// shorter. A file of no accepted kind is an EUNSUPPORTED *qingfeng.Error; an ISO-BMFF
// file with a malformed ftyp box is EINVALID.
func Sniff(head []byte) (Kind, error) {
	switch {
	case bytes.HasPrefix(head, jpegMagic):
		return JPEG, nil
	case bytes.HasPrefix(head, pngMagic):
		return PNG, nil
	case bytes.HasPrefix(head, pdfMagic):
		return PDF, nil
	case len(head) >= 8 && string(head[4:8]) == "ftyp":
		return sniffFtyp(head)
	}
	n := min(len(head), 8)
	return "", unsupported(fmt.Sprintf("unrecognised file starting % x", head[:n]))
}

// sniffFtyp checks the ftyp box that must open an ISO-BMFF file and classifies it by
// its major brand, or failing that by its compatible brands (HEIF before MP4: a HEIF
// file may list iso8 or mp41 as compatible, an MP4 never lists a HEIF brand).
func sniffFtyp(head []byte) (Kind, error) {
	size := binary.BigEndian.Uint32(head[:4])
	// size 0 (to end of file) and 1 (64-bit size follows) are legal for boxes in
	// general, but no writer uses them for ftyp.
	if size < 16 || size > SniffLen || size%4 != 0 {
		return "", corruptContainer("media: ftyp box size %d", size)
	}
	if int(size) > len(head) {
		return "", corruptContainer("media: ftyp box of %d bytes in a file of %d", size, len(head))
	}
	major := string(head[8:12])
	for _, b := range []byte(major) {
		if b < 0x20 || b > 0x7E {
			return "", corruptContainer("media: ftyp major brand %q", major)
		}
	}
	switch {
	case refusedBrands[major]:
		return "", unsupported(fmt.Sprintf("ISO-BMFF major brand %q", major))
	case heifBrands[major]:
		return HEIF, nil
	case mp4Brands[major]:
		return MP4, nil
	}
	var heif, mp4 bool
	for i := 16; i+4 <= int(size); i += 4 {
		brand := string(head[i : i+4])
		heif = heif || heifBrands[brand]
		mp4 = mp4 || mp4Brands[brand]
	}
	switch {
	case heif:
		return HEIF, nil
	case mp4:
		return MP4, nil
	}
	return "", unsupported(fmt.Sprintf("ISO-BMFF major brand %q and no accepted compatible brand", major))
}
