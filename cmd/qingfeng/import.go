package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/routing"
)

const importUsage = `usage: qingfeng import orgs  [--format csv|json|jsonl] [--errors FILE] [--server URL [--token-file F]] FILE
       qingfeng import units [--format json|jsonl] [--errors FILE] [--no-defaults] [--server URL [--token-file F]] FILE

Imports social organizations (CSV with a header row, a JSON array or JSON Lines) or
supervisory units (JSON). Rows are upserted by credit code (units by id), so importing
a file again updates it.

With --server URL the file goes to a running server's admin route
(POST /v1/admin/import/...), which refreshes its registry at once: the way to import
while the server runs. It needs an administrator's access token, from --token-file F
(a file holding only the token) or $QF_TOKEN, as set by
  eval "$(qfctl login --server URL --username ADMIN --totp CODE)"

Without --server the import opens the configured database itself: the embedded
default when MONGODB_URI is not set, which only works while no server runs on the
data directory (it holds the database; the command says so and stops). A server on
MongoDB picks such direct changes up within a few minutes.

FILE - reads standard input (give --format). Row numbers in the error report count
data rows from 1; the CSV header is not counted.

Exit status: 0 every row imported, 1 some rows rejected (the others are imported) or
the import failed, 2 usage error.

Flags:
`

// runImport is `qingfeng import`; it returns the exit status.
func runImport(cfg Config, log *slog.Logger, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, importUsage)
		fs.PrintDefaults()
	}
	format := fs.String("format", "", "csv, json or jsonl (default: from the file name's extension)")
	errorsPath := fs.String("errors", "", "write rejected rows to this CSV file (row,field,code,message) instead of stderr")
	noDefaults := fs.Bool("no-defaults", false, "units: do not load the default units into an empty registry first")
	server := fs.String("server", "", "import through the running server at this URL (http(s)://host:port)")
	tokenFile := fs.String("token-file", "", "with --server: a file holding an administrator's access token (default $QF_TOKEN)")
	// Flags may come before or after the positional arguments.
	var pos []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos, rest = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	usage := func(msg string, a ...any) int {
		fmt.Fprintf(stderr, "qingfeng import: "+msg+"\n", a...)
		fs.Usage()
		return 2
	}
	if len(pos) != 2 || (pos[0] != "orgs" && pos[0] != "units") {
		return usage("want orgs or units and one FILE")
	}
	what, path := pos[0], pos[1]
	fmtName, err := importFormat(path, *format)
	if err != nil {
		return usage("%v", err)
	}
	if what == "units" && fmtName == "csv" {
		return usage("units are imported from JSON (an array of units, or JSON Lines)")
	}
	if *server == "" && *tokenFile != "" {
		return usage("--token-file is for --server")
	}
	if *server != "" && *noDefaults {
		return usage("--no-defaults cannot be used with --server: the server loads the default units into an empty registry, as on its first start")
	}

	var in io.Reader = stdin
	var size int64
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintln(stderr, "qingfeng import:", err)
			return 1
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
		in = f
	}

	var report *errorReport
	if *errorsPath != "" {
		f, err := os.Create(*errorsPath)
		if err != nil {
			fmt.Fprintln(stderr, "qingfeng import:", err)
			return 1
		}
		report = newErrorReport(f)
		defer func() {
			if err := report.close(); err != nil {
				fmt.Fprintln(stderr, "qingfeng import: error report:", err)
			}
		}()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *server != "" {
		return remoteImport(ctx, remoteImportArgs{server: *server, tokenFile: *tokenFile, what: what, format: fmtName,
			in: in, size: size, report: report, errorsPath: *errorsPath}, stdout, stderr)
	}
	m := &Main{Config: cfg, Log: log}
	defer m.Close()
	if err := m.openDatabase(ctx); err != nil {
		fmt.Fprintln(stderr, "qingfeng import:", err)
		return 1
	}

	bar := newProgress(stderr, isTerminal(stderr), size)
	reject := func(row int, errs map[string]qingfeng.FieldError) error {
		if report != nil {
			return report.write(row, errs)
		}
		for _, f := range routing.SortFields(errs) {
			bar.println(fmt.Sprintf("row %d: %s: %s", row, f, errs[f].Message))
		}
		return nil
	}
	opts := routing.ImportOptions{Progress: bar.update, Reject: reject}
	start := time.Now()
	var st routing.ImportStats
	switch what {
	case "orgs":
		if opts.Units, err = routing.StoredUnits(ctx, m.st.units); err != nil {
			fmt.Fprintln(stderr, "qingfeng import:", err)
			return 1
		}
		st, err = routing.ImportOrganizations(ctx, m.st.orgs, in, fmtName, opts)
	case "units":
		opts.SeedDefaults = !*noDefaults
		st, err = routing.ImportUnits(ctx, m.st.units, in, fmtName, opts)
	}
	bar.finish()
	fmt.Fprintf(stdout, "%s: %s (%.1f s)\n", what, st, time.Since(start).Seconds())
	if err != nil {
		fmt.Fprintln(stderr, "qingfeng import:", err)
		return 1
	}
	if st.Rejected > 0 {
		if report != nil {
			fmt.Fprintf(stderr, "qingfeng import: %d rows rejected, listed in %s\n", st.Rejected, *errorsPath)
		}
		return 1
	}
	return 0
}

// importFormat picks the input format from --format or the file name.
func importFormat(path, flagValue string) (string, error) {
	f := strings.ToLower(strings.TrimPrefix(flagValue, "."))
	if f == "" {
		if path == "-" {
			return "", errors.New("reading stdin: give --format")
		}
		f = strings.ToLower(strings.TrimPrefix(filepath.Ext(path), "."))
	}
	switch f {
	case "csv", "json", "jsonl":
		return f, nil
	case "ndjson":
		return "jsonl", nil
	}
	return "", fmt.Errorf("cannot tell the format of %q: give --format csv, json or jsonl", path)
}

// errorReport writes rejected rows as CSV: row,field,code,message. It starts with a
// UTF-8 byte-order mark so that Excel, which the registry staff use, shows the Chinese.
type errorReport struct {
	f   *os.File
	w   *csv.Writer
	err error
}

func newErrorReport(f *os.File) *errorReport {
	r := &errorReport{f: f, w: csv.NewWriter(f)}
	_, r.err = f.WriteString("\ufeff")
	if r.err == nil {
		r.err = r.w.Write([]string{"row", "field", "code", "message"})
	}
	return r
}

func (r *errorReport) write(row int, errs map[string]qingfeng.FieldError) error {
	for _, f := range routing.SortFields(errs) {
		if r.err != nil {
			return r.err
		}
		r.err = r.w.Write([]string{fmt.Sprint(row), f, errs[f].Code, errs[f].Message})
	}
	return r.err
}

func (r *errorReport) close() error {
	r.w.Flush()
	return errors.Join(r.err, r.w.Error(), r.f.Close())
}

// isTerminal reports whether w is a terminal (a character device), without a
// dependency on golang.org/x/term.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progress draws an import's progress on w: on a terminal, a bar redrawn in place (at
// most ten times a second); otherwise, for logs, a line at every tenth of the input
// (every 10,000 rows when the size is unknown). A nil *progress draws nothing.
type progress struct {
	w     io.Writer
	tty   bool
	total int64 // input bytes, 0 if unknown
	start time.Time
	drawn int // width of the bar on screen, to clear it
	last  time.Time
	step  int64 // last tenth (or 10,000 rows) reported
	rows  int
	now   func() time.Time
}

func newProgress(w io.Writer, tty bool, total int64) *progress {
	return &progress{w: w, tty: tty, total: total, start: time.Now(), now: time.Now}
}

func (p *progress) update(done int64, rows int) {
	if p == nil {
		return
	}
	p.rows = rows
	now := p.now()
	if p.tty {
		if now.Sub(p.last) < 100*time.Millisecond {
			return
		}
		p.last = now
		p.draw(done)
		return
	}
	step := int64(rows / 10000)
	if p.total > 0 {
		step = done * 10 / p.total
	}
	if step > p.step {
		p.step = step
		fmt.Fprintln(p.w, p.line(done))
	}
}

func (p *progress) line(done int64) string {
	rate := float64(p.rows) / max(p.now().Sub(p.start).Seconds(), 1e-3)
	if p.total <= 0 {
		return fmt.Sprintf("%d rows  %.0f rows/s", p.rows, rate)
	}
	pct := min(100, int(done*100/p.total))
	return fmt.Sprintf("%3d%%  %d rows  %.0f rows/s", pct, p.rows, rate)
}

func (p *progress) draw(done int64) {
	s := p.line(done)
	if p.total > 0 {
		const width = 30
		filled := min(width, int(done*width/p.total))
		s = "[" + strings.Repeat("=", filled) + strings.Repeat(" ", width-filled) + "] " + s
	}
	pad := ""
	if n := len(s); n < p.drawn {
		pad = strings.Repeat(" ", p.drawn-n)
	}
	fmt.Fprint(p.w, "\r"+s+pad)
	p.drawn = len(s)
}

// println prints a line (a rejected row) above the bar.
func (p *progress) println(s string) {
	if p == nil {
		return
	}
	if p.tty && p.drawn > 0 {
		fmt.Fprint(p.w, "\r"+strings.Repeat(" ", p.drawn)+"\r")
		p.drawn = 0
		p.last = time.Time{} // redraw at the next update
	}
	fmt.Fprintln(p.w, s)
}

// finish ends the bar's line.
func (p *progress) finish() {
	if p == nil || !p.tty {
		return
	}
	if p.total > 0 {
		p.draw(p.total)
	} else {
		p.draw(0)
	}
	fmt.Fprintln(p.w)
}
