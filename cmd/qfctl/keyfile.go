package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"filippo.io/age"

	qfcrypto "github.com/qingfeng-zj/qingfeng/crypto"
)

// maxKeyFileBytes bounds what is read from a key file: a hybrid identity is under
// 200 bytes and `qfctl keys new` writes about 2 KiB with its comments.
const maxKeyFileBytes = 64 << 10

// errWrongKey is returned when the key file holds no identity the sealed file was
// sealed to.
var errWrongKey = errors.New("密钥不匹配：此密钥无法打开该文件 / this key cannot open it (it was sealed to other keys)")

// loadKey reads a key file as `qfctl keys new` writes it and returns its identity
// lines (AGE-SECRET-KEY-...). The file's bytes are zeroed once the lines are copied
// out; the key is never written anywhere or sent to the server. A key file that group
// or others may read gets a warning on stderr: it may already have been copied.
func loadKey(path string, stderr io.Writer) (string, error) {
	if path == "" {
		return "", errors.New("--key FILE is required (your private key file from `qfctl keys new`)")
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	defer clear(data)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxKeyFileBytes {
		return "", fmt.Errorf("%s is larger than %d bytes; is it your key file?", path, maxKeyFileBytes)
	}
	var ids []string
	publicOnly := false
	for line := range bytes.Lines(data) {
		line = bytes.TrimSpace(line)
		switch {
		case bytes.HasPrefix(line, []byte("AGE-SECRET-KEY-")):
			ids = append(ids, string(line))
		case bytes.HasPrefix(line, []byte("age1")):
			publicOnly = true
		}
	}
	if len(ids) == 0 {
		if publicOnly {
			return "", fmt.Errorf("%s holds a public key (age1...), not your private key (AGE-SECRET-KEY-...)", path)
		}
		return "", fmt.Errorf("%s holds no AGE-SECRET-KEY line; give the file `qfctl keys new -o FILE` wrote", path)
	}
	// Only a file that does hold a private key is worth the warning.
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		fmt.Fprintf(stderr, "qfctl: 警告：密钥文件 %s 的权限为 %04o，同组或其他用户可以读写；请运行 chmod 600 %s 并考虑该密钥是否已泄露\n"+
			"qfctl: warning: key file %s has mode %04o, readable or writable by others; run `chmod 600 %s` and consider whether it leaked\n",
			path, perm, path, path, perm, path)
	}
	return strings.Join(ids, "\n"), nil
}

// openSealed opens a sealed identity with identity and tells a wrong key (errWrongKey)
// from a damaged or forged file. The caller must clear the plaintext when done.
func openSealed(identity string, sealed []byte) ([]byte, error) {
	plain, err := qfcrypto.Open(identity, sealed)
	if err == nil {
		return plain, nil
	}
	var noMatch *age.NoIdentityMatchError
	if errors.As(err, &noMatch) {
		return nil, errWrongKey
	}
	return nil, fmt.Errorf("密文已损坏或被篡改，无法打开 / the sealed file is damaged or was tampered with: %w", err)
}
