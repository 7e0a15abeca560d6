package media

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
)

// pngAncillaryKept lists the ancillary chunks a PNG keeps: those that change how the
// pixels look or move (transparency, colour space, HDR, physical size, APNG frames).
// Every other ancillary chunk is dropped, named or not: tEXt, zTXt and iTXt (author,
// software, XMP with GPS), eXIf, tIME, iCCP (see cleanJPEG on ICC profiles), sPLT,
// oFFs/pCAL/sCAL, the gIF* extensions, caBX (C2PA content credentials: signed claims
// about who made the picture and with what) and any private chunk, which can hold
// anything at all. A list of what to keep cannot be outgrown by the next vendor chunk;
// a list of what to drop can.
var pngAncillaryKept = map[string]bool{
	"tRNS": true, "gAMA": true, "cHRM": true, "sRGB": true, "sBIT": true, "bKGD": true,
	"hIST": true, "pHYs": true, "cICP": true, "mDCV": true, "cLLI": true, "mDCv": true,
	"cLLi": true, "acTL": true, "fcTL": true, "fdAT": true,
}

// maxPNGChunk is the largest chunk length PNG allows (2^31−1).
const maxPNGChunk = 1<<31 - 1

// cleanPNG copies a PNG from c.in to c.out chunk by chunk, checking every chunk's CRC
// (dropped chunks too), keeping the critical chunks and the ancillary chunks in
// pngAncillaryKept, and stopping at IEND. Chunk data passes through the reader's
// buffer with a running CRC, never held whole: an IDAT may be 2 GiB.
func (c *cleaner) cleanPNG() error {
	sig := c.scratch[:8]
	if err := c.readFull(sig); err != nil {
		return err
	}
	if !bytes.Equal(sig, pngMagic) {
		return corruptImage("png: bad signature")
	}
	if _, err := c.out.Write(sig); err != nil {
		return err
	}

	var hdr [8]byte
	for first, sawIDAT := true, false; ; first = false {
		chunkOff := c.off
		if err := c.readFull(hdr[:]); err != nil {
			return err
		}
		length := binary.BigEndian.Uint32(hdr[:4])
		typ := string(hdr[4:8])
		if length > maxPNGChunk {
			return corruptImage("png: chunk length %d at offset %d", length, chunkOff)
		}
		for _, b := range hdr[4:8] {
			if !('A' <= b && b <= 'Z' || 'a' <= b && b <= 'z') {
				return corruptImage("png: chunk type %q at offset %d", typ, chunkOff)
			}
		}
		if first != (typ == "IHDR") {
			return corruptImage("png: chunk %s at offset %d; IHDR must come first, once", typ, chunkOff)
		}

		sum := crc32.Update(0, crc32.IEEETable, hdr[4:8])
		switch typ {
		case "IHDR":
			if err := c.pngHeader(length, &sum); err != nil {
				return err
			}
			if _, err := c.out.Write(hdr[:]); err != nil {
				return err
			}
			if _, err := c.out.Write(c.scratch[:13]); err != nil {
				return err
			}
			if err := c.pngCRC(typ, chunkOff, sum, true); err != nil {
				return err
			}
		case "IEND":
			if length != 0 {
				return corruptImage("png: IEND of %d bytes", length)
			}
			if !sawIDAT {
				return corruptImage("png: no IDAT before IEND")
			}
			if _, err := c.out.Write(hdr[:]); err != nil {
				return err
			}
			return c.pngCRC(typ, chunkOff, sum, true)
		default:
			// Critical chunks (upper-case first letter) are kept whatever they are:
			// a decoder that does not know one must refuse the file, so dropping it
			// would change what the image is.
			keep := hdr[4]&0x20 == 0 || pngAncillaryKept[typ]
			sawIDAT = sawIDAT || typ == "IDAT"
			if keep {
				if _, err := c.out.Write(hdr[:]); err != nil {
					return err
				}
			}
			if err := c.pass(int64(length), keep, &sum); err != nil {
				return err
			}
			if err := c.pngCRC(typ, chunkOff, sum, keep); err != nil {
				return err
			}
		}
	}
}

// pngHeader reads and checks IHDR's data (into c.scratch[:13]) and its CRC, and
// enforces the pixel cap before any image data is read.
func (c *cleaner) pngHeader(length uint32, sum *uint32) error {
	if length != 13 {
		return corruptImage("png: IHDR of %d bytes", length)
	}
	b := c.scratch[:13]
	if err := c.readFull(b); err != nil {
		return err
	}
	*sum = crc32.Update(*sum, crc32.IEEETable, b)
	width := int64(binary.BigEndian.Uint32(b[0:4]))
	height := int64(binary.BigEndian.Uint32(b[4:8]))
	depth, colour, compression, filter, interlace := b[8], b[9], b[10], b[11], b[12]
	if width == 0 || height == 0 || width > maxPNGChunk || height > maxPNGChunk {
		return corruptImage("png: %d×%d pixels", width, height)
	}
	if !pngDepthValid(colour, depth) || compression != 0 || filter != 0 || interlace > 1 {
		return corruptImage("png: IHDR colour type %d, depth %d, compression %d, filter %d, interlace %d",
			colour, depth, compression, filter, interlace)
	}
	// width and height are below 2^31, so the product fits in an int64.
	if width*height > c.maxPixels {
		return tooManyPixels(width, height, c.maxPixels)
	}
	return nil
}

// pngDepthValid applies the table of allowed bit depths per colour type (PNG 11.2.2).
func pngDepthValid(colour, depth byte) bool {
	switch colour {
	case 0:
		return depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16
	case 3:
		return depth == 1 || depth == 2 || depth == 4 || depth == 8
	case 2, 4, 6:
		return depth == 8 || depth == 16
	}
	return false
}

// pngCRC reads a chunk's CRC, checks it against want and copies it if emit.
func (c *cleaner) pngCRC(typ string, chunkOff int64, want uint32, emit bool) error {
	b := c.scratch[16:20]
	if err := c.readFull(b); err != nil {
		return err
	}
	if got := binary.BigEndian.Uint32(b); got != want {
		return corruptImage("png: chunk %s at offset %d has CRC %08x, want %08x", typ, chunkOff, got, want)
	}
	if !emit {
		return nil
	}
	_, err := c.out.Write(b)
	return err
}
