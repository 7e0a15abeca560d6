package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/qingfeng-zj/qingfeng/audit"
)

const auditUsage = `usage: qingfeng audit verify

Reads the whole audit log of the configured database (the embedded default when
MONGODB_URI is not set: stop the server first, it holds the data directory) and checks
every link of its hash chain. Prints how many entries were checked and, when the chain
is intact, the last entry's hash: write it down somewhere the database's administrators
cannot change, and a later rewrite of the log shows as a different hash for that entry.

Exit status: 0 the chain is intact, 1 it is broken (the first broken entry is named)
or the log could not be read, 2 usage error.
`

// runAudit is `qingfeng audit`; it returns the exit status.
func runAudit(cfg Config, log *slog.Logger, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, auditUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 || fs.Arg(0) != "verify" {
		fmt.Fprintln(stderr, "qingfeng audit: want verify")
		fs.Usage()
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := &Main{Config: cfg, Log: log}
	defer m.Close()
	if err := m.openDatabase(ctx); err != nil {
		fmt.Fprintln(stderr, "qingfeng audit:", err)
		return 1
	}
	start := time.Now()
	r, err := audit.Verify(ctx, m.st.audit)
	if err != nil {
		fmt.Fprintln(stderr, "qingfeng audit:", err)
		return 1
	}
	return printAuditReport(stdout, r, time.Since(start))
}

func printAuditReport(w io.Writer, r audit.Report, took time.Duration) int {
	if !r.OK {
		fmt.Fprintf(w, "audit log BROKEN: %d entries checked (%.1f s)\n", r.Entries, took.Seconds())
		fmt.Fprintf(w, "first broken entry: seq %d: %s\n", r.FirstBroken.Seq, r.FirstBroken.Reason)
		return 1
	}
	fmt.Fprintf(w, "audit log OK: %d entries checked (%.1f s)\n", r.Entries, took.Seconds())
	if r.HeadSeq > 0 {
		fmt.Fprintf(w, "last entry: seq %d sha256 %s\n", r.HeadSeq, r.Head)
	}
	return 0
}
