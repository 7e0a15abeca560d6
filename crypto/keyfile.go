package crypto

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// maxSecretFileBytes bounds what is read from a secret file: a pepper or a PEM key is
// well under 1 KiB, and a wrong path must not make start-up read a disk image.
const maxSecretFileBytes = 64 << 10

// loadOrCreateSecret returns the contents of the secret file at path, creating it from
// generate() with mode 0600 if it does not exist. Creation is atomic and never replaces
// an existing file: if two processes start on the same data directory at once, both
// end up with the one secret that won — losing a pepper or signing key silently would
// orphan every receipt or log everybody out.
func loadOrCreateSecret(path string, generate func() ([]byte, error)) ([]byte, error) {
	data, err := readSecretFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return data, err
	}
	fresh, err := generate()
	if err != nil {
		return nil, err
	}
	if err := createSecretFile(path, fresh); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readSecretFile(path)
		}
		return nil, err
	}
	return fresh, nil
}

// readSecretFile reads a secret file, refusing one that group or others may read or
// write: such a file may already have been copied, and the operator should know.
// Windows has no such mode bits, so the check is skipped there.
func readSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secret file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("secret file %s has mode %04o, readable or writable by others; run `chmod 600 %s` (and consider whether it leaked)", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read secret file %s: %w", path, err)
	}
	if len(data) > maxSecretFileBytes {
		return nil, fmt.Errorf("secret file %s is larger than %d bytes; is it the right file?", path, maxSecretFileBytes)
	}
	return data, nil
}

// createSecretFile writes data to a new file at path with mode 0600. It fails with an
// fs.ErrExist error if path exists. The data is written to a temporary file first and
// hard-linked into place, so no reader ever sees a half-written secret; where hard
// links are not supported it falls back to an exclusive create.
func createSecretFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create secret file %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("create secret file %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if err := writeAndSync(tmp, data); err != nil {
		return fmt.Errorf("create secret file %s: %w", path, err)
	}
	err = os.Link(tmpName, path)
	if errors.Is(err, fs.ErrExist) {
		return err
	}
	if err != nil {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if err := writeAndSync(f, data); err != nil {
			os.Remove(path)
			return fmt.Errorf("create secret file %s: %w", path, err)
		}
	}
	// Make the new directory entry durable: a secret that vanishes in a power cut after
	// receipts were issued under it is as bad as a lost one.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // not supported everywhere (e.g. Windows); best effort
		d.Close()
	}
	return nil
}

func writeAndSync(f *os.File, data []byte) error {
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
