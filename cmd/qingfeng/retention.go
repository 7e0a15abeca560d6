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

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/audit"
	"github.com/qingfeng-zj/qingfeng/retention"
)

const retentionUsage = `usage: qingfeng retention purge [--dry-run]

Purges the closed cases whose retention period (QF_RETENTION, e.g. 5y) has passed
since they were closed: their sealed identities and re-sealed copies are destroyed,
their evidence objects deleted, their messages deleted and the case documents
anonymised; an audit entry (case.retention.purge) records each purge. The server does
this by itself every hour when QF_RETENTION is set; this command runs it once. With the
embedded default (MONGODB_URI not set) stop the server first: it holds the data
directory.

--dry-run lists the cases that would be purged and changes nothing.

Exit status: 0 done, 1 an error (or QF_RETENTION is 0), 2 usage error.
`

// retentionPeriod is the configured retention period. Until config.go has the
// QF_RETENTION setting it reads the variable itself; then it is cfg.RetentionPeriod.
var retentionPeriod = func(cfg Config) (time.Duration, error) {
	return cfg.RetentionPeriod, nil
}

// retentionCommand is `qingfeng retention purge [--dry-run]`; it returns the exit status.
func retentionCommand(cfg Config, log *slog.Logger, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("retention", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dryRun := fs.Bool("dry-run", false, "list the cases that would be purged; change nothing")
	fs.Usage = func() {
		fmt.Fprint(stderr, retentionUsage)
		fs.PrintDefaults()
	}
	// The subcommand comes first: qingfeng retention purge --dry-run.
	if len(args) == 0 || args[0] != "purge" {
		fs.Usage()
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "qingfeng retention: unexpected arguments %q\n", fs.Args())
		return 2
	}
	period, err := retentionPeriod(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "qingfeng retention: QF_RETENTION:", err)
		return 1
	}
	if period <= 0 {
		fmt.Fprintln(stderr, "qingfeng retention: QF_RETENTION is 0 (never purge); set it, e.g. QF_RETENTION=5y")
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := &Main{Config: cfg, Log: log}
	defer m.Close()
	if err := m.backends(ctx); err != nil {
		fmt.Fprintln(stderr, "qingfeng retention:", err)
		return 1
	}
	p := &retention.Purger{Cases: m.st.cases, Leases: m.st.leases, Blobs: m.blobs, Audit: &audit.Log{Store: m.st.audit},
		Period: period, Log: log}

	if *dryRun {
		due, err := p.Due(ctx)
		if err != nil {
			fmt.Fprintln(stderr, "qingfeng retention:", err)
			return 1
		}
		for _, c := range due {
			fmt.Fprintf(stdout, "%s\tclosed %s\t%d evidence\n", c.Number, c.ClosedAt.In(cst).Format(time.DateOnly), c.Evidence)
		}
		fmt.Fprintf(stdout, "%d cases closed before %s would be purged (QF_RETENTION %s); nothing changed\n",
			len(due), time.Now().Add(-period).In(cst).Format(time.DateOnly), period)
		return 0
	}
	n, err := p.RunOnce(ctx)
	if errors.Is(err, retention.ErrLeaseHeld) {
		fmt.Fprintln(stderr, "qingfeng retention: a server is purging right now; try again later")
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "qingfeng retention: %d cases purged, then: %v\n", n, err)
		return 1
	}
	fmt.Fprintf(stdout, "%d cases purged (closed more than %s ago)\n", n, period)
	return 0
}

// cst is China Standard Time, for the dates printed.
var cst = qingfeng.Shanghai
