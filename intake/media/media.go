// Package media recognises evidence files by their magic bytes and removes the metadata
// that can identify a reporter — EXIF GPS coordinates, camera serial numbers, XMP and
// IPTC authorship, embedded thumbnails — while the file streams from the upload to the
// store.
//
// Everything here works on io.Reader and io.Writer and holds at most a few buffers of
// 64 KiB whatever the size of the file: a 256 MiB upload costs the same memory as a
// 256 KiB one. The package does no other I/O, never decodes or re-encodes pixels (the
// stored image is the reporter's image, bit for bit in its coded data), and never
// allocates by a size the file claims for itself.
//
// JPEG and PNG are cleaned: every segment or chunk that does not shape the pixels is
// dropped (see cleanJPEG and cleanPNG for the lists and the reasons), except a JPEG's
// EXIF Orientation, which is rewritten alone so that portrait photos stay upright.
// HEIC/HEIF, MP4 and PDF cannot be cleaned by a streaming rewrite (their metadata is
// referenced by offsets from elsewhere in the file), so they are stored as received
// with Result.MetadataRemoved false; staff must treat them as possibly identifying.
// MetadataRemoved is true only when bytes were actually removed.
package media

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"

	"github.com/qingfeng-zj/qingfeng"
)

// Kind is a file type the service accepts, recognised by its magic bytes.
type Kind string

// The accepted kinds.
const (
	JPEG Kind = "jpeg"
	PNG  Kind = "png"
	// HEIF is an ISO-BMFF still image (HEIC from phones, or generic HEIF).
	HEIF Kind = "heif"
	// MP4 is an ISO-BMFF movie: MP4, M4V/M4A and 3GPP.
	MP4 Kind = "mp4"
	PDF Kind = "pdf"
)

// ContentType returns the canonical MIME type of k: the one the file is stored and
// served with, whatever the client claimed.
//
// HEIF maps to image/heif, the registered type of the container, which is correct for
// every brand we accept (image/heic would be wrong for a generic mif1 file). MP4 maps
// to video/mp4 for M4A and 3GPP too: they are the same file format, and one stable type
// per kind keeps clients simple.
func (k Kind) ContentType() string {
	switch k {
	case JPEG:
		return "image/jpeg"
	case PNG:
		return "image/png"
	case HEIF:
		return "image/heif"
	case MP4:
		return "video/mp4"
	case PDF:
		return "application/pdf"
	}
	return "application/octet-stream"
}

// Cleaned reports whether Process removes metadata from files of kind k.
func (k Kind) Cleaned() bool { return k == JPEG || k == PNG }

// Defaults for zero Options fields.
const (
	DefaultMaxBytes  = 50 << 20    // 50 MiB
	DefaultMaxPixels = 100_000_000 // 100 megapixels: a 108 MP phone sensor is the largest in common use
)

// Options limit what Process accepts.
type Options struct {
	// MaxBytes caps the received size; a larger file fails with ETOOLARGE as soon as
	// its first byte over the limit is read. Zero or negative means DefaultMaxBytes.
	MaxBytes int64
	// MaxPixels caps width×height declared by a JPEG frame or PNG header; a larger
	// image fails with EINVALID before its pixel data is read. Zero or negative means
	// DefaultMaxPixels.
	MaxPixels int64
	// Original, when not nil, receives every byte as received, before any cleaning
	// (including data that cleaning drops, such as bytes after a JPEG's EOI). It is
	// meant for a writer that seals the original for custodians.
	Original io.Writer
}

// Result describes a processed file.
type Result struct {
	Kind        Kind
	ContentType string
	// ReceivedSize and ReceivedSHA256 (hex) describe the bytes as uploaded.
	ReceivedSize   int64
	ReceivedSHA256 string
	// StoredSize and StoredSHA256 (hex) describe the bytes written to w.
	StoredSize   int64
	StoredSHA256 string
	// MetadataRemoved is true when the cleaner (JPEG, PNG) actually removed something:
	// the stored bytes differ from the received ones. A clean image that carried no
	// metadata, and a kind that cannot be cleaned (stored as received), are false.
	MetadataRemoved bool
}

// bufSize is the size of the input and output buffers: large enough that hashing and
// copying run in big blocks, small enough that memory does not grow with the file.
const bufSize = 64 << 10

// Process reads a file from r, recognises its kind (Sniff), removes metadata where it
// can, and writes the result to w, hashing both sides as the bytes pass.
//
// After a JPEG's EOI or a PNG's IEND, the rest of the input is read (so that it is
// hashed, counted against MaxBytes and sent to Options.Original) but not written to w:
// bytes past the end of an image are where second images and hidden payloads live.
//
// Errors that the file causes are *qingfeng.Error: EUNSUPPORTED for a kind not
// accepted, ETOOLARGE over MaxBytes, EINVALID for an empty, truncated or corrupt file
// or one over MaxPixels. An error from r, w or Options.Original is returned wrapped.
// On any error, w (and Options.Original) may have received part of a file: discard it.
// The Result is zero on error.
func Process(r io.Reader, w io.Writer, opts Options) (Result, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxPixels <= 0 {
		opts.MaxPixels = DefaultMaxPixels
	}
	src := &source{r: r, hash: sha256.New(), original: opts.Original, max: opts.MaxBytes}
	dst := &sink{w: w, hash: sha256.New()}
	c := &cleaner{in: bufio.NewReaderSize(src, bufSize), out: bufio.NewWriterSize(dst, bufSize), maxPixels: opts.MaxPixels}

	kind, err := c.sniff()
	if err != nil {
		return Result{}, err
	}
	switch kind {
	case JPEG:
		err = c.cleanJPEG()
	case PNG:
		err = c.cleanPNG()
	default:
		err = c.passAll()
	}
	if err == nil && kind.Cleaned() {
		// Read what follows the image so it is hashed, counted and kept in the
		// original; it is not written out.
		_, err = io.Copy(io.Discard, c.in)
	}
	if err == nil {
		err = c.out.Flush()
	}
	if err != nil {
		return Result{}, classify(kind, err)
	}
	res := Result{
		Kind:           kind,
		ContentType:    kind.ContentType(),
		ReceivedSize:   src.n,
		ReceivedSHA256: hex.EncodeToString(src.hash.Sum(nil)),
		StoredSize:     dst.n,
		StoredSHA256:   hex.EncodeToString(dst.hash.Sum(nil)),
	}
	res.MetadataRemoved = kind.Cleaned() && res.StoredSHA256 != res.ReceivedSHA256
	return res, nil
}

// sniff peeks at the head of the input and recognises its kind.
func (c *cleaner) sniff() (Kind, error) {
	head, err := c.in.Peek(SniffLen)
	if err != nil && err != io.EOF {
		// Name the kind in the error if the bytes that did arrive show it.
		kind, _ := Sniff(head)
		return "", classify(kind, err)
	}
	if len(head) == 0 {
		return "", &qingfeng.Error{Code: qingfeng.EINVALID, Message: "文件为空", English: "the file is empty"}
	}
	return Sniff(head)
}

// errTruncated marks input that ended before its format said it would.
var errTruncated = errors.New("unexpected end of file")

// classify turns an error from a cleaner into what Process returns.
func classify(kind Kind, err error) error {
	var qe *qingfeng.Error
	switch {
	case errors.As(err, &qe):
		return err
	case errors.Is(err, errTruncated):
		if kind.Cleaned() {
			return corruptImage("%w", err)
		}
		return &qingfeng.Error{Code: qingfeng.EINVALID, Message: "文件不完整或已损坏", English: "the file is incomplete or corrupt", Err: err}
	}
	if kind == "" {
		return fmt.Errorf("media: %w", err)
	}
	return fmt.Errorf("media: process %s: %w", kind, err)
}

// corruptImage is the EINVALID error for an image that is truncated or breaks its
// format; the detail goes to the log, the client gets one plain sentence.
func corruptImage(format string, args ...any) *qingfeng.Error {
	return &qingfeng.Error{
		Code:    qingfeng.EINVALID,
		Message: "图片文件不完整或已损坏",
		English: "the image file is incomplete or corrupt",
		Err:     fmt.Errorf(format, args...),
	}
}

// tooManyPixels is the EINVALID error for an image whose declared size is over the cap.
func tooManyPixels(width, height, max int64) *qingfeng.Error {
	return &qingfeng.Error{
		Code:    qingfeng.EINVALID,
		Message: fmt.Sprintf("图片尺寸过大（%d×%d 像素），上限为 %s像素", width, height, zhCount(max)),
		English: fmt.Sprintf("the image is too large (%d×%d pixels); the limit is %d pixels", width, height, max),
	}
}

// tooLarge is the ETOOLARGE error for a file over MaxBytes.
func tooLarge(max int64) *qingfeng.Error {
	return &qingfeng.Error{
		Code:    qingfeng.ETOOLARGE,
		Message: fmt.Sprintf("文件超过大小上限（%s）", byteSize(max, "字节")),
		English: fmt.Sprintf("the file exceeds the size limit of %s", byteSize(max, "bytes")),
	}
}

// byteSize formats a limit the way people read it; limits are set in whole MiB or KiB
// in practice, and "MB" is what Chinese users know MiB as.
func byteSize(n int64, unit string) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d %s", n, unit)
}

// zhCount formats a count with the Chinese units 亿 (10^8) and 万 (10^4) when exact.
func zhCount(n int64) string {
	switch {
	case n >= 1e8 && n%1e8 == 0:
		return fmt.Sprintf("%d 亿", n/1e8)
	case n >= 1e4 && n%1e4 == 0:
		return fmt.Sprintf("%d 万", n/1e4)
	}
	return fmt.Sprintf("%d ", n)
}

// source is the received side: it counts, limits, hashes and tees what it reads.
type source struct {
	r        io.Reader
	hash     hash.Hash
	original io.Writer
	n, max   int64
	err      error // sticky: once the input failed or went over the limit, it stays so
}

func (s *source) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	// Ask for at most one byte past the limit: enough to know it was exceeded,
	// and the original writer never receives more than that.
	if room := s.max + 1 - s.n; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := s.r.Read(p)
	if n > 0 {
		s.hash.Write(p[:n])
		if s.original != nil {
			if _, werr := s.original.Write(p[:n]); werr != nil {
				s.err = fmt.Errorf("write original: %w", werr)
				return 0, s.err
			}
		}
		s.n += int64(n)
		if s.n > s.max {
			s.err = tooLarge(s.max)
			return 0, s.err
		}
	}
	if err != nil && err != io.EOF {
		// io.ErrUnexpectedEOF from an HTTP body means the upload was cut short:
		// the cleaners report that as a truncated file.
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: read upload: %w", errTruncated, err)
		} else {
			err = fmt.Errorf("read upload: %w", err)
		}
		s.err = err
	}
	return n, err
}

// sink is the stored side: it counts and hashes what was written to w.
type sink struct {
	w    io.Writer
	hash hash.Hash
	n    int64
}

func (s *sink) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.hash.Write(p[:n])
	s.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("write output: %w", err)
	}
	return n, nil
}

// cleaner holds the buffered input and output that the format cleaners share.
type cleaner struct {
	in        *bufio.Reader
	out       *bufio.Writer
	off       int64 // input bytes consumed, for error details in logs
	maxPixels int64
	scratch   [1024]byte // segment headers; every segment we parse fits
}

// unexpectedEOF turns the end of input in the middle of a structure into errTruncated.
func (c *cleaner) unexpectedEOF(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w at offset %d", errTruncated, c.off)
	}
	return err
}

// readFull reads exactly len(p) bytes.
func (c *cleaner) readFull(p []byte) error {
	n, err := io.ReadFull(c.in, p)
	c.off += int64(n)
	if err != nil {
		return c.unexpectedEOF(err)
	}
	return nil
}

func (c *cleaner) readByte() (byte, error) {
	b, err := c.in.ReadByte()
	if err != nil {
		return 0, c.unexpectedEOF(err)
	}
	c.off++
	return b, nil
}

// pass moves the next n input bytes to the output (emit) or drops them, updating the
// CRC-32 at crc when it is not nil. It works on the reader's own buffer, so a 2 GiB
// PNG chunk costs no allocation.
func (c *cleaner) pass(n int64, emit bool, crc *uint32) error {
	for n > 0 {
		chunk, err := c.buffered(n)
		if err != nil {
			return c.unexpectedEOF(err)
		}
		if crc != nil {
			*crc = crc32.Update(*crc, crc32.IEEETable, chunk)
		}
		if emit {
			if _, err := c.out.Write(chunk); err != nil {
				return err
			}
		}
		c.in.Discard(len(chunk))
		c.off += int64(len(chunk))
		n -= int64(len(chunk))
	}
	return nil
}

// passAll copies the rest of the input to the output, straight from the reader's
// buffer (io.Copy between the two bufio types would copy every byte twice).
func (c *cleaner) passAll() error {
	for {
		chunk, err := c.buffered(1 << 62)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := c.out.Write(chunk); err != nil {
			return err
		}
		c.in.Discard(len(chunk))
		c.off += int64(len(chunk))
	}
}

// buffered returns up to n bytes from the reader's buffer, filling it if it is empty,
// without consuming them.
func (c *cleaner) buffered(n int64) ([]byte, error) {
	if c.in.Buffered() == 0 {
		if _, err := c.in.Peek(1); err != nil {
			return nil, err
		}
	}
	return c.in.Peek(int(min(n, int64(c.in.Buffered()))))
}
