//go:build !unix

package embedded

// lockDir does nothing where flock is not available: running two servers on one data
// directory is then the operator's mistake to avoid.
func lockDir(dir string) (unlock func() error, err error) {
	return func() error { return nil }, nil
}
