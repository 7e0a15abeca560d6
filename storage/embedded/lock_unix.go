//go:build unix

package embedded

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes an exclusive lock on dir for the life of the servers. Two FerretDB
// instances on one SQLite directory would each cache the collection metadata and
// serialize updates with their own process's locks (see storage/mongo), so a second
// server, or a qfctl started against the same data directory, must be refused.
func lockDir(dir string) (unlock func() error, err error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("embedded: lock data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("embedded: data directory %s is in use by another server: %w", dir, ErrDirInUse)
		}
		return nil, fmt.Errorf("embedded: lock data directory: %w", err)
	}
	// Closing the file releases the lock.
	return f.Close, nil
}
