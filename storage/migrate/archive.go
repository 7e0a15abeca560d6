package migrate

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"
)

// The backup archive (`qingfeng backup`): one tar file of
//
//	database           an online backup of the SQLite file (storage/sqlite's DB.Backup)
//	objects/<key>      every object the database refers to
//	manifest.json      the format, what the archive holds and each file's SHA-256
//
// The manifest comes last, so that the archive is written in one pass; restore reads
// everything, then checks it against the manifest before it keeps anything.

// ArchiveFormat names the archive layout in its manifest.
const ArchiveFormat = "qingfeng-backup/1"

const (
	archiveDatabase = "database"
	archiveObjects  = "objects/"
	archiveManifest = "manifest.json"
)

// Manifest describes an archive.
type Manifest struct {
	Format    string         `json:"format"`
	CreatedAt time.Time      `json:"created_at"`
	Database  ArchivedFile   `json:"database"`
	Objects   []ArchivedFile `json:"objects"`
	Extras    []ArchivedFile `json:"extras,omitempty"`
	// Missing are objects the database refers to that were not in the object store
	// when the archive was made (deleted by a purge after the database was copied).
	Missing []string `json:"missing,omitempty"`
}

// ArchivedExtra is a small file archived beside the database (a data directory's
// secrets, when asked for).
type ArchivedExtra struct {
	Name    string
	Content []byte
}

// maxExtra bounds an extra file read back.
const maxExtra = 1 << 20

// ArchivedFile is one file of an archive.
type ArchivedFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// WriteArchive writes the archive of the database file at dbPath (a consistent copy,
// not a live file) and the objects named by keys, read from objects, to w. A key
// missing from objects is listed in the manifest's Missing, not an error.
func WriteArchive(ctx context.Context, w io.Writer, dbPath string, objects fs.FS, keys []string, extras []ArchivedExtra) (Manifest, error) {
	m := Manifest{Format: ArchiveFormat, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	tw := tar.NewWriter(w)
	f, err := os.Open(dbPath)
	if err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	if m.Database, err = addFile(tw, archiveDatabase, f); err != nil {
		return m, fmt.Errorf("backup: the database: %w", err)
	}
	for _, key := range keys {
		if err := ctx.Err(); err != nil {
			return m, err
		}
		if !fs.ValidPath(key) {
			return m, fmt.Errorf("backup: object key %q cannot be archived", key)
		}
		of, err := objects.Open(key)
		if errors.Is(err, fs.ErrNotExist) {
			m.Missing = append(m.Missing, key)
			continue
		}
		if err != nil {
			return m, fmt.Errorf("backup: object %s: %w", key, err)
		}
		af, err := addFile(tw, archiveObjects+key, of)
		_ = of.Close()
		if err != nil {
			return m, fmt.Errorf("backup: object %s: %w", key, err)
		}
		af.Name = key
		m.Objects = append(m.Objects, af)
	}
	for _, x := range extras {
		if x.Name == archiveDatabase || x.Name == archiveManifest || strings.HasPrefix(x.Name, archiveObjects) || !fs.ValidPath(x.Name) || len(x.Content) > maxExtra {
			return m, fmt.Errorf("backup: extra file %q refused", x.Name)
		}
		if err := tw.WriteHeader(&tar.Header{Name: x.Name, Mode: 0o600, Size: int64(len(x.Content)), ModTime: m.CreatedAt, Format: tar.FormatPAX}); err != nil {
			return m, err
		}
		if _, err := tw.Write(x.Content); err != nil {
			return m, err
		}
		sum := sha256.Sum256(x.Content)
		m.Extras = append(m.Extras, ArchivedFile{Name: x.Name, Size: int64(len(x.Content)), SHA256: hex.EncodeToString(sum[:])})
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, err
	}
	if err := tw.WriteHeader(&tar.Header{Name: archiveManifest, Mode: 0o600, Size: int64(len(b)), ModTime: m.CreatedAt, Format: tar.FormatPAX}); err != nil {
		return m, err
	}
	if _, err := tw.Write(b); err != nil {
		return m, err
	}
	return m, tw.Close()
}

// addFile writes f as name, hashing it: the size its Stat gave when opened. An object
// still being uploaded (never one a record refers to) is archived as far as it was.
func addFile(tw *tar.Writer, name string, f fs.File) (ArchivedFile, error) {
	st, err := f.Stat()
	if err != nil {
		return ArchivedFile{}, err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: st.Size(), ModTime: st.ModTime(), Format: tar.FormatPAX}); err != nil {
		return ArchivedFile{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tw, h), io.LimitReader(f, st.Size()))
	if err != nil {
		return ArchivedFile{}, err
	}
	if n != st.Size() {
		return ArchivedFile{}, fmt.Errorf("%s shrank while it was read", name)
	}
	return ArchivedFile{Name: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// RestoreTarget receives what an archive holds.
type RestoreTarget struct {
	// Database is where the database file is written; it must not exist.
	Database string
	// Put stores one object.
	Put func(ctx context.Context, key string, r io.Reader) error
	// Extra receives an extra file; nil refuses archives that have any.
	Extra func(name string, content []byte) error
}

// ReadArchive reads an archive from r into t and checks it against its manifest:
// every file listed, none more, each with its size and SHA-256. On any error the
// caller must discard what was written (restore refuses a non-empty target, so
// removing it is safe).
func ReadArchive(ctx context.Context, r io.Reader, t RestoreTarget) (Manifest, error) {
	var m Manifest
	tr := tar.NewReader(r)
	got := map[string]ArchivedFile{}
	var haveManifest, haveDB bool
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return m, fmt.Errorf("restore: read the archive: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return m, err
		}
		if haveManifest {
			return m, fmt.Errorf("restore: %s after the manifest: not an archive qingfeng wrote", hdr.Name)
		}
		switch {
		case hdr.Name == archiveManifest:
			if err := json.NewDecoder(io.LimitReader(tr, 256<<20)).Decode(&m); err != nil {
				return m, fmt.Errorf("restore: the manifest: %w", err)
			}
			haveManifest = true
		case hdr.Name == archiveDatabase:
			if haveDB {
				return m, errors.New("restore: two databases in the archive")
			}
			haveDB = true
			f, err := os.OpenFile(t.Database, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return m, fmt.Errorf("restore: %w", err)
			}
			af, err := hashCopy(f, tr)
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return m, fmt.Errorf("restore: the database: %w", err)
			}
			got[archiveDatabase] = af
		case strings.HasPrefix(hdr.Name, archiveObjects):
			key := strings.TrimPrefix(hdr.Name, archiveObjects)
			if !fs.ValidPath(key) || key == "." || path.Clean(key) != key {
				return m, fmt.Errorf("restore: object name %q refused", hdr.Name)
			}
			if _, dup := got[hdr.Name]; dup {
				return m, fmt.Errorf("restore: object %s twice in the archive", key)
			}
			h := sha256.New()
			cr := &countingReader{r: io.TeeReader(tr, h)}
			if err := t.Put(ctx, key, cr); err != nil {
				return m, fmt.Errorf("restore: object %s: %w", key, err)
			}
			got[hdr.Name] = ArchivedFile{Name: key, Size: cr.n, SHA256: hex.EncodeToString(h.Sum(nil))}
		default:
			if t.Extra == nil || !fs.ValidPath(hdr.Name) || hdr.Size > maxExtra {
				return m, fmt.Errorf("restore: unexpected file %q in the archive", hdr.Name)
			}
			if _, dup := got[hdr.Name]; dup {
				return m, fmt.Errorf("restore: %s twice in the archive", hdr.Name)
			}
			b, err := io.ReadAll(io.LimitReader(tr, maxExtra))
			if err != nil {
				return m, fmt.Errorf("restore: %s: %w", hdr.Name, err)
			}
			if err := t.Extra(hdr.Name, b); err != nil {
				return m, fmt.Errorf("restore: %w", err)
			}
			sum := sha256.Sum256(b)
			got[hdr.Name] = ArchivedFile{Name: hdr.Name, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}
		}
	}
	if !haveManifest {
		return m, errors.New("restore: the archive has no manifest (cut short?)")
	}
	if m.Format != ArchiveFormat {
		return m, fmt.Errorf("restore: archive format %q, want %q", m.Format, ArchiveFormat)
	}
	want := map[string]ArchivedFile{archiveDatabase: {Name: archiveDatabase, Size: m.Database.Size, SHA256: m.Database.SHA256}}
	for _, o := range m.Objects {
		want[archiveObjects+o.Name] = o
	}
	for _, x := range m.Extras {
		want[x.Name] = x
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			return m, fmt.Errorf("restore: %s is in the manifest but not in the archive", name)
		}
		if g.Size != w.Size || g.SHA256 != w.SHA256 {
			return m, fmt.Errorf("restore: %s: %d bytes with SHA-256 %s, the manifest says %d bytes with %s", name, g.Size, g.SHA256, w.Size, w.SHA256)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			return m, fmt.Errorf("restore: %s is in the archive but not in the manifest", name)
		}
	}
	return m, nil
}

func hashCopy(w io.Writer, r io.Reader) (ArchivedFile, error) {
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), r)
	return ArchivedFile{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// CheckObjects checks that every object s's records refer to is in objects with the
// SHA-256 its record keeps (a sealed original: present). It returns how many it
// checked; a *MismatchError names the first that is not.
func CheckObjects(ctx context.Context, s Store, objects Objects) (int64, error) {
	var n int64
	err := eachObject(ctx, s, func(_ string, o object) error {
		got, err := hashObject(ctx, objects, o.key)
		if err != nil {
			return &MismatchError{Kind: "objects", Key: o.key, Reason: "missing: " + err.Error()}
		}
		if o.sha256 != "" && got != o.sha256 {
			return &MismatchError{Kind: "objects", Key: o.key, Reason: "SHA-256 " + got + ", the case records " + o.sha256}
		}
		n++
		return nil
	})
	return n, err
}
