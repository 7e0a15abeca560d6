package media

import (
	"bytes"
	"encoding/binary"
)

// JPEG markers (ITU T.81 table B.1).
const (
	mSOF0  = 0xC0
	mDHT   = 0xC4
	mSOF15 = 0xCF
	mJPG   = 0xC8 // reserved in the SOF range
	mDAC   = 0xCC
	mRST0  = 0xD0
	mRST7  = 0xD7
	mSOI   = 0xD8
	mEOI   = 0xD9
	mSOS   = 0xDA
	mDQT   = 0xDB
	mDNL   = 0xDC
	mDRI   = 0xDD
	mDHP   = 0xDE
	mEXP   = 0xDF
	mAPP0  = 0xE0
	mAPP1  = 0xE1
	mAPP14 = 0xEE
	mTEM   = 0x01
)

// cleanJPEG copies a JPEG from c.in to c.out, segment by segment, keeping exactly what
// a decoder needs and dropping everything else.
//
// Kept, byte for byte: frame headers (SOFn), Huffman and arithmetic tables (DHT, DAC),
// quantisation tables (DQT), restart interval (DRI), DNL, the hierarchical-mode DHP and
// EXP, scan headers (SOS) and the entropy-coded data with its stuffed zeros and
// restart markers. Kept, but rewritten to their fixed fields:
//   - APP0 JFIF: density and version stay, the embedded thumbnail goes — a thumbnail
//     can show what the reporter cropped out of the picture;
//   - APP14 Adobe: its 12 bytes say how to convert colours (decoders need it for CMYK
//     and RGB JPEGs); anything appended is dropped.
//
// Replaced: the first EXIF segment whose Orientation says the picture is rotated or
// mirrored becomes a minimal EXIF segment holding that tag alone. Phones store
// portrait photos sideways and set Orientation; without it, staff would see every such
// photo lying on its side. The value (1–8) says nothing about who took the picture.
//
// Dropped: APP1 (EXIF with GPS, camera serial and thumbnail; XMP), APP2 (ICC profiles
// and MPF, the index of the second images phones append), APP3–APP13 (APP13 holds
// Photoshop/IPTC author and location), APP15, COM, the JPGn extensions (0xF0–0xFD), an
// APP0 that is not JFIF (JFXX holds another thumbnail), fill bytes, stray bytes between
// segments, and everything after EOI.
//
// ICC profiles are dropped although they only describe colour: their description,
// manufacturer, model and date tags, and calibrated per-unit profiles, can narrow a
// photo down to a device. Without one, viewers assume sRGB: a wide-gamut (Display P3)
// photo looks a little less saturated, every pixel value is unchanged, and the sealed
// original keeps the profile for the rare case where exact colour is evidence.
func (c *cleaner) cleanJPEG() error {
	soi := c.scratch[:2]
	if err := c.readFull(soi); err != nil {
		return err
	}
	if soi[0] != 0xFF || soi[1] != mSOI {
		return corruptImage("jpeg: no SOI marker")
	}
	if _, err := c.out.Write(soi); err != nil {
		return err
	}

	var (
		sawFrame, sawScan bool
		sawOrientation    bool
		next              byte // a marker already read by the scan copier, 0 if none
	)
	for {
		marker := next
		next = 0
		if marker == 0 {
			var err error
			if marker, err = c.nextMarker(); err != nil {
				return err
			}
		}
		switch {
		case marker == mEOI:
			if !sawScan {
				return corruptImage("jpeg: EOI at offset %d before any scan", c.off)
			}
			_, err := c.out.Write([]byte{0xFF, mEOI})
			return err
		case marker == mSOI:
			return corruptImage("jpeg: second SOI at offset %d", c.off)
		case marker == mTEM || (marker >= mRST0 && marker <= mRST7):
			// Standalone markers with no payload; outside a scan they mean nothing.
			continue
		case marker < mSOF0:
			// 0x02–0xBF are reserved: no encoder writes them, and we could not
			// know whether a length follows.
			return corruptImage("jpeg: reserved marker 0x%02X at offset %d", marker, c.off)
		}

		var lenBuf [2]byte
		if err := c.readFull(lenBuf[:]); err != nil {
			return err
		}
		length := int(binary.BigEndian.Uint16(lenBuf[:]))
		if length < 2 {
			return corruptImage("jpeg: marker 0x%02X with segment length %d at offset %d", marker, length, c.off)
		}
		n := length - 2

		switch {
		case isSOF(marker):
			if err := c.jpegFrame(marker, n); err != nil {
				return err
			}
			sawFrame = true
		case marker == mSOS:
			if !sawFrame {
				return corruptImage("jpeg: scan before frame header at offset %d", c.off)
			}
			if err := c.jpegScanHeader(n); err != nil {
				return err
			}
			var err error
			if next, err = c.copyScan(); err != nil {
				return err
			}
			sawScan = true
		case marker == mDHT, marker == mDAC, marker == mDQT, marker == mDNL, marker == mDRI, marker == mDHP, marker == mEXP:
			if err := c.copySegment(marker, n); err != nil {
				return err
			}
		case marker == mAPP0:
			if err := c.jpegKeepPrefix(marker, n, []byte("JFIF\x00"), 14, func(b []byte) { b[12], b[13] = 0, 0 }); err != nil {
				return err
			}
		case marker == mAPP14:
			if err := c.jpegKeepPrefix(marker, n, []byte("Adobe"), 12, nil); err != nil {
				return err
			}
		case marker == mAPP1 && !sawOrientation:
			var err error
			if sawOrientation, err = c.jpegOrientation(n); err != nil {
				return err
			}
		default:
			// APP1–APP13, APP15, COM, JPGn: metadata or unknown extensions.
			if err := c.pass(int64(n), false, nil); err != nil {
				return err
			}
		}
	}
}

func isSOF(m byte) bool {
	return m >= mSOF0 && m <= mSOF15 && m != mDHT && m != mJPG && m != mDAC
}

// nextMarker reads up to and including the next marker code, skipping fill bytes and
// any stray bytes before the 0xFF, as libjpeg and image/jpeg do. The skipped bytes are
// not copied.
func (c *cleaner) nextMarker() (byte, error) {
	for {
		b, err := c.readByte()
		if err != nil {
			return 0, err
		}
		if b != 0xFF {
			continue
		}
		for b == 0xFF {
			if b, err = c.readByte(); err != nil {
				return 0, err
			}
		}
		if b != 0x00 { // FF00 outside a scan is stray data too
			return b, nil
		}
	}
}

// jpegFrame checks and copies a frame header (SOFn).
func (c *cleaner) jpegFrame(marker byte, n int) error {
	if n < 6 || n > len(c.scratch) {
		return corruptImage("jpeg: frame header of %d bytes at offset %d", n, c.off)
	}
	b := c.scratch[:n]
	if err := c.readFull(b); err != nil {
		return err
	}
	height := int64(binary.BigEndian.Uint16(b[1:3]))
	width := int64(binary.BigEndian.Uint16(b[3:5]))
	components := int(b[5])
	if components == 0 || n != 6+3*components {
		return corruptImage("jpeg: frame header of %d bytes for %d components", n, components)
	}
	// A height of 0 defers it to a DNL marker after the first scan; no camera
	// writes that, image/jpeg rejects it, and we could not check the pixel cap.
	if width == 0 || height == 0 {
		return corruptImage("jpeg: frame of %d×%d pixels", width, height)
	}
	if width*height > c.maxPixels {
		return tooManyPixels(width, height, c.maxPixels)
	}
	return c.writeSegment(marker, b)
}

// jpegScanHeader checks and copies a scan header (SOS).
func (c *cleaner) jpegScanHeader(n int) error {
	if n < 1 || n > len(c.scratch) {
		return corruptImage("jpeg: scan header of %d bytes at offset %d", n, c.off)
	}
	b := c.scratch[:n]
	if err := c.readFull(b); err != nil {
		return err
	}
	components := int(b[0])
	if components < 1 || components > 4 || n != 4+2*components {
		return corruptImage("jpeg: scan header of %d bytes for %d components", n, components)
	}
	return c.writeSegment(mSOS, b)
}

// jpegKeepPrefix keeps at most the first keep bytes of a segment that starts with id,
// after fix has rewritten a full-length prefix, and drops the rest. A segment without
// id is dropped whole. A shorter segment with id is kept as it is: decoders act on the
// id alone (a JFIF segment makes a 3-channel image YCbCr), so dropping it could change
// the picture, and a dozen bytes hide nothing.
func (c *cleaner) jpegKeepPrefix(marker byte, n int, id []byte, keep int, fix func([]byte)) error {
	k := min(n, keep)
	b := c.scratch[:k]
	if err := c.readFull(b); err != nil {
		return err
	}
	if err := c.pass(int64(n-k), false, nil); err != nil {
		return err
	}
	if !bytes.HasPrefix(b, id) {
		return nil
	}
	if k == keep && fix != nil {
		fix(b)
	}
	return c.writeSegment(marker, b)
}

// copySegment copies a segment whose content we do not need to look at.
func (c *cleaner) copySegment(marker byte, n int) error {
	hdr := [4]byte{0xFF, marker}
	binary.BigEndian.PutUint16(hdr[2:], uint16(n+2))
	if _, err := c.out.Write(hdr[:]); err != nil {
		return err
	}
	return c.pass(int64(n), true, nil)
}

func (c *cleaner) writeSegment(marker byte, payload []byte) error {
	hdr := [4]byte{0xFF, marker}
	binary.BigEndian.PutUint16(hdr[2:], uint16(len(payload)+2))
	if _, err := c.out.Write(hdr[:]); err != nil {
		return err
	}
	_, err := c.out.Write(payload)
	return err
}

// copyScan copies entropy-coded data — including stuffed zeros (FF00) and restart
// markers (FFD0–FFD7) — up to the next real marker, which it consumes and returns.
// It searches the reader's buffer for 0xFF a block at a time, so a scan with few 0xFF
// bytes is copied at memory speed.
func (c *cleaner) copyScan() (byte, error) {
	for {
		buf, err := c.buffered(1 << 62)
		if err != nil {
			return 0, c.unexpectedEOF(err)
		}
		i := bytes.IndexByte(buf, 0xFF)
		if i < 0 {
			i = len(buf)
		}
		if i > 0 {
			if _, err := c.out.Write(buf[:i]); err != nil {
				return 0, err
			}
			c.in.Discard(i)
			c.off += int64(i)
			continue
		}
		pair, err := c.in.Peek(2)
		if err != nil {
			return 0, c.unexpectedEOF(err)
		}
		switch m := pair[1]; {
		case m == 0x00 || (m >= mRST0 && m <= mRST7):
			if _, err := c.out.Write(pair); err != nil {
				return 0, err
			}
			c.in.Discard(2)
			c.off += 2
		case m == 0xFF:
			// A fill byte before a marker: drop it and look again.
			c.in.Discard(1)
			c.off++
		default:
			c.in.Discard(2)
			c.off += 2
			return m, nil
		}
	}
}

// jpegOrientation reads an APP1 segment of n bytes and drops it; if it is EXIF with an
// Orientation other than 1 (upright) in its first IFD, it writes a minimal EXIF segment
// in its place that holds that tag alone, and reports true. Only the first 1 KiB is
// looked at: writers put IFD0 right after the TIFF header, and we will not buffer a
// 64 KiB segment to find a tag that is missing.
func (c *cleaner) jpegOrientation(n int) (bool, error) {
	k := min(n, len(c.scratch))
	b := c.scratch[:k]
	if err := c.readFull(b); err != nil {
		return false, err
	}
	if err := c.pass(int64(n-k), false, nil); err != nil {
		return false, err
	}
	o := exifOrientation(b)
	if o < 2 || o > 8 {
		return false, nil
	}
	return true, c.writeSegment(mAPP1, minimalExif(o))
}

// exifOrientation returns the Orientation (tag 0x0112) in IFD0 of an EXIF APP1 payload,
// or 0 if there is none or the structure does not hold together.
func exifOrientation(b []byte) uint16 {
	const header = "Exif\x00\x00"
	if !bytes.HasPrefix(b, []byte(header)) {
		return 0
	}
	tiff := b[len(header):]
	if len(tiff) < 8 {
		return 0
	}
	var order binary.ByteOrder
	switch string(tiff[:2]) {
	case "II":
		order = binary.LittleEndian
	case "MM":
		order = binary.BigEndian
	default:
		return 0
	}
	if order.Uint16(tiff[2:]) != 42 {
		return 0
	}
	ifd := int64(order.Uint32(tiff[4:]))
	if ifd < 8 || ifd+2 > int64(len(tiff)) {
		return 0
	}
	count := int64(order.Uint16(tiff[ifd:]))
	// The whole IFD, with its next-IFD offset, must be there.
	if ifd+2+12*count+4 > int64(len(tiff)) {
		return 0
	}
	for i := range count {
		e := tiff[ifd+2+12*i:]
		const tagOrientation, typeShort = 0x0112, 3
		if order.Uint16(e) == tagOrientation && order.Uint16(e[2:]) == typeShort && order.Uint32(e[4:]) == 1 {
			return order.Uint16(e[8:])
		}
	}
	return 0
}

// minimalExif is an EXIF payload whose only content is Orientation o: a big-endian
// TIFF header, and an IFD0 of one entry and no next IFD.
func minimalExif(o uint16) []byte {
	b := []byte("Exif\x00\x00MM\x00\x2A\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01")
	b = binary.BigEndian.AppendUint16(b, o)
	return append(b, 0, 0, 0, 0, 0, 0)
}
