// Command qfctl is the operator client. It runs on a custodian's or operator's own
// machine: private keys it makes never go to the server, and identities it opens are
// shown only on this machine.
//
//	qfctl keys new [-o FILE]      make a custodian key pair (age, post-quantum hybrid);
//	                              prints the public recipient to register with an admin
//	qfctl open -i KEYFILE [FILE]  open a sealed identity (age file) with your key
//	qfctl login --username NAME   sign in (password on stdin); prints
//	                              `export QF_SERVER=... QF_TOKEN=...` for eval, stores nothing
//	qfctl disclose list|approve|deny|reseal|request|fetch ...
//	                              the identity-disclosure flow (qfctl disclose for usage)
//	qfctl reseal list|do TASK --key FILE
//	                              re-seal tasks after transfers and custodian changes
//
// The server is --server URL or $QF_SERVER; the access token is $QF_TOKEN.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	qfcrypto "github.com/qingfeng-zj/qingfeng/crypto"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	usage := func() int {
		fmt.Fprintln(stderr, "usage: qfctl keys new [-o FILE] | qfctl open -i KEYFILE [SEALED_FILE] |\n"+
			"       qfctl login [--server URL] --username NAME | qfctl disclose list|approve|deny|reseal|request|fetch ... |\n"+
			"       qfctl reseal list|do TASK --key FILE")
		return 2
	}
	if len(args) == 0 {
		return usage()
	}
	switch {
	case len(args) >= 2 && args[0] == "keys" && args[1] == "new":
		return keysNew(args[2:], stdout, stderr)
	case args[0] == "open":
		return open(args[1:], stdin, stdout, stderr)
	case args[0] == "login":
		return login(args[1:], stdin, stdout, stderr)
	case args[0] == "disclose":
		return disclose(args[1:], stdout, stderr)
	case args[0] == "reseal":
		return resealTasks(args[1:], stdout, stderr)
	}
	return usage()
}

func keysNew(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keys new", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "write the private key to this file (0600) instead of stdout")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	identity, recipient, err := qfcrypto.GenerateCustodianKey()
	if err != nil {
		fmt.Fprintln(stderr, "qfctl:", err)
		return 1
	}
	content := fmt.Sprintf("# created by qfctl keys new\n# public key: %s\n%s\n", recipient, identity)
	if *out == "" {
		fmt.Fprint(stdout, content)
		return 0
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		fmt.Fprintln(stderr, "qfctl:", err)
		return 1
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		fmt.Fprintln(stderr, "qfctl:", err)
		return 1
	}
	if err := f.Close(); err != nil {
		fmt.Fprintln(stderr, "qfctl:", err)
		return 1
	}
	fmt.Fprintf(stderr, "private key written to %s; register this public key with an administrator:\n", *out)
	fmt.Fprintln(stdout, recipient)
	return 0
}

func open(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("open", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyFile := fs.String("i", "", "your key file (from qfctl keys new)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *keyFile == "" {
		fmt.Fprintln(stderr, "qfctl open: -i KEYFILE is required")
		return 2
	}
	identity, err := loadKey(*keyFile, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "qfctl:", err)
		return 1
	}
	in := stdin
	if fs.NArg() > 0 {
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			fmt.Fprintln(stderr, "qfctl:", err)
			return 1
		}
		defer f.Close()
		in = f
	}
	sealed, err := io.ReadAll(io.LimitReader(in, 1<<20))
	if err != nil {
		fmt.Fprintln(stderr, "qfctl:", err)
		return 1
	}
	plain, err := openSealed(identity, sealed)
	if err != nil {
		fmt.Fprintln(stderr, "qfctl:", err)
		return 1
	}
	defer clear(plain)
	printIdentity(stdout, plain)
	return 0
}
