package main

import (
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/storage/embedded"
	"github.com/qingfeng-zj/qingfeng/storage/mongo"
)

const importUsage = `usage: qingfeng import orgs  [--format csv|json|jsonl] [--errors FILE] FILE
       qingfeng import units [--format json|jsonl] [--errors FILE] [--no-defaults] FILE

Imports social organizations (CSV with a header row, a JSON array or JSON Lines) or
supervisory units (JSON) into the configured database, the embedded default when
MONGODB_URI is not set: stop the server first, it holds the data directory. Rows are
upserted by credit code (units by id), so importing a file again updates it. A server
on MongoDB picks the changes up within a few minutes.

FILE - reads standard input (give --format). Row numbers in the error report count
data rows from 1; the CSV header is not counted.

Exit status: 0 every row imported, 1 some rows rejected (the others are imported) or
the import failed, 2 usage error.

Flags:
`

// importBatch is how many rows are normalized and stored at a time.
const importBatch = 1000

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
	m := &Main{Config: cfg, Log: log}
	defer m.Close()
	if err := m.openDatabaseOnly(ctx); err != nil {
		fmt.Fprintln(stderr, "qingfeng import:", err)
		return 1
	}

	bar := newProgress(stderr, isTerminal(stderr), size)
	reject := func(row int, errs map[string]qingfeng.FieldError) error {
		if report != nil {
			return report.write(row, errs)
		}
		for _, f := range sortedFields(errs) {
			bar.println(fmt.Sprintf("row %d: %s: %s", row, f, errs[f].Message))
		}
		return nil
	}
	opts := importOptions{Progress: bar, Reject: reject}
	start := time.Now()
	var st importStats
	switch what {
	case "orgs":
		if opts.Units, err = registryUnits(ctx, mongo.NewUnitStore(m.db)); err != nil {
			fmt.Fprintln(stderr, "qingfeng import:", err)
			return 1
		}
		st, err = importOrganizations(ctx, mongo.NewOrgStore(m.db), in, fmtName, opts)
	case "units":
		opts.SeedDefaults = !*noDefaults
		st, err = importUnits(ctx, mongo.NewUnitStore(m.db), in, fmtName, opts)
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

// mergeAliases is have followed by the aliases of add it lacks, compared as routing
// compares names.
func mergeAliases(have, add []string) []string {
	out := slices.Clone(have)
	for _, a := range add {
		if !slices.ContainsFunc(out, func(h string) bool { return routing.NormalizeName(h) == routing.NormalizeName(a) }) {
			out = append(out, a)
		}
	}
	return out
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

// openDatabaseOnly opens the configured database, or starts the embedded default, and
// nothing else: an import needs neither the object store nor the keys. Close closes it.
func (m *Main) openDatabaseOnly(ctx context.Context) error {
	c := m.Config
	uri := c.MongoURI
	if uri == "" {
		if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
			return fmt.Errorf("QF_DATA_DIR: %w", err)
		}
		emb, err := embedded.Start(ctx, c.DataDir, m.Log)
		if err != nil {
			return fmt.Errorf("start the embedded database (is the server running on %s? stop it first): %w", c.DataDir, err)
		}
		m.emb, uri = emb, emb.MongoDBURI()
	}
	db, err := mongo.Open(ctx, uri, c.MongoDatabase)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	m.db = db
	if err := db.EnsureIndexes(ctx); err != nil {
		return fmt.Errorf("ensure indexes: %w", err)
	}
	return nil
}

// registryUnits is the registry imported organizations are checked against: the stored
// units, or the defaults that the server loads on its first start when there are none.
func registryUnits(ctx context.Context, store interface {
	Units(context.Context) ([]routing.RegistryUnit, error)
}) (*routing.Units, error) {
	list, err := store.Units(ctx)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		list = routing.DefaultUnits()
	}
	u, err := routing.NewUnits(list)
	if err != nil {
		return nil, fmt.Errorf("the stored unit registry is inconsistent: %w", err)
	}
	return u, nil
}

// orgWriter is what importOrganizations needs of storage (mongo.OrgStore).
type orgWriter interface {
	UpsertOrganizations(ctx context.Context, orgs []routing.Organization) (inserted, updated int, err error)
}

// unitWriter is what importUnits needs of storage (mongo.UnitStore).
type unitWriter interface {
	Units(ctx context.Context) ([]routing.RegistryUnit, error)
	SeedUnits(ctx context.Context, units []routing.RegistryUnit) (int, error)
	UpsertUnits(ctx context.Context, units []routing.RegistryUnit) (inserted, updated int, err error)
}

type importOptions struct {
	// Units checks organizations' registration authority and supervisory unit; nil
	// leaves them unchecked.
	Units *routing.Units
	// BatchSize is how many rows are stored at a time; 0 means importBatch.
	BatchSize int
	// Progress, if not nil, is told how far the import is after each batch.
	Progress *progress
	// Reject, if not nil, receives each rejected row's errors, in row order. An error
	// stops the import.
	Reject func(row int, errs map[string]qingfeng.FieldError) error
	// SeedDefaults makes importUnits load routing.DefaultUnits into an empty registry
	// first, as the server's first start would: a few units imported into an empty
	// registry would otherwise stop the defaults from ever being loaded.
	SeedDefaults bool
}

type importStats struct {
	Read, Inserted, Updated, Rejected int
	// CheckWarnings counts imported organizations whose credit code fails its check
	// characters: accepted, since some genuine early codes do.
	CheckWarnings int
	// Seeded is how many default units were loaded first.
	Seeded int
}

func (s importStats) String() string {
	out := fmt.Sprintf("read %d, inserted %d, updated %d, rejected %d", s.Read, s.Inserted, s.Updated, s.Rejected)
	if s.CheckWarnings > 0 {
		out += fmt.Sprintf(", %d credit codes failing their check character (imported)", s.CheckWarnings)
	}
	if s.Seeded > 0 {
		out += fmt.Sprintf("; %d default units loaded first", s.Seeded)
	}
	return out
}

// importOrganizations reads organizations in format (csv, json or jsonl) from r,
// normalizes each (routing.NormalizeOrganization) and upserts the valid ones in
// batches. A credit code seen earlier in the same input is rejected. Rejected rows go
// to opts.Reject; the returned error is for a failure that stopped the import (a
// malformed file, the database), after which the batches already stored stay stored.
func importOrganizations(ctx context.Context, store orgWriter, r io.Reader, format string, opts importOptions) (importStats, error) {
	var st importStats
	read := routing.ReadOrganizationsJSON
	switch format {
	case "csv":
		read = routing.ReadOrganizationsCSV
	case "json", "jsonl":
	default:
		return st, fmt.Errorf("unknown format %q", format)
	}
	size := cmp.Or(opts.BatchSize, importBatch)
	cr := &countingReader{r: r}
	batch := make([]routing.Organization, 0, size)
	seen := map[string]int{} // credit code → row
	storeFailed := false
	flush := func() error {
		if len(batch) > 0 {
			ins, upd, err := store.UpsertOrganizations(ctx, batch)
			st.Inserted, st.Updated = st.Inserted+ins, st.Updated+upd
			batch = batch[:0]
			if err != nil {
				storeFailed = true
				return err
			}
		}
		opts.Progress.update(cr.n, st.Read)
		return nil
	}
	reject := func(row int, errs map[string]qingfeng.FieldError) error {
		st.Rejected++
		if opts.Reject == nil {
			return nil
		}
		return opts.Reject(row, errs)
	}
	err := read(cr, func(row int, in routing.Organization, errs map[string]qingfeng.FieldError) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		st.Read++
		if _, whole := errs[routing.FieldRow]; whole {
			return reject(row, errs)
		}
		o, nerrs := routing.NormalizeOrganization(in, opts.Units)
		for f, e := range errs { // what the reader found wins over what normalizing made of it
			if nerrs == nil {
				nerrs = map[string]qingfeng.FieldError{}
			}
			nerrs[f] = e
		}
		if nerrs == nil {
			if first, dup := seen[o.CreditCode]; dup {
				nerrs = map[string]qingfeng.FieldError{routing.FieldCreditCode: {Code: "duplicate",
					Message: fmt.Sprintf("与第%d行的统一社会信用代码相同", first),
					English: fmt.Sprintf("the same credit code as row %d", first)}}
			}
		}
		if nerrs != nil {
			return reject(row, nerrs)
		}
		seen[o.CreditCode] = row
		if cc, err := routing.ParseCreditCode(o.CreditCode); err == nil && !cc.CheckValid {
			st.CheckWarnings++
		}
		batch = append(batch, o)
		if len(batch) == size {
			return flush()
		}
		return nil
	})
	if err != nil {
		// A malformed file: the valid rows before the fault are imported, like those of
		// the batches already stored.
		if len(batch) > 0 && ctx.Err() == nil && !storeFailed {
			err = errors.Join(err, flush())
		}
		return st, err
	}
	return st, flush()
}

// importUnits reads registry units (a JSON array or JSON Lines) from r and upserts the
// valid ones. A unit's parent and stationed_at must be stored or in the same input (and
// valid there); an id seen earlier in the input is rejected. Units files are small (a
// few thousand units at most), so the whole input is read before anything is stored.
func importUnits(ctx context.Context, store unitWriter, r io.Reader, format string, opts importOptions) (importStats, error) {
	var st importStats
	if format != "json" && format != "jsonl" {
		return st, fmt.Errorf("units are imported from JSON, not %q", format)
	}
	type row struct {
		n    int
		unit routing.RegistryUnit
		errs map[string]qingfeng.FieldError
	}
	var rows []row
	cr := &countingReader{r: r}
	err := routing.ReadUnitsJSON(cr, func(n int, u routing.RegistryUnit, errs map[string]qingfeng.FieldError) error {
		st.Read++
		if errs == nil {
			u, errs = routing.NormalizeUnit(u)
		}
		rows = append(rows, row{n: n, unit: u, errs: errs})
		return ctx.Err()
	})
	if err != nil {
		return st, err
	}

	stored, err := store.Units(ctx)
	if err != nil {
		return st, err
	}
	if len(stored) == 0 && opts.SeedDefaults {
		if st.Seeded, err = store.SeedUnits(ctx, routing.DefaultUnits()); err != nil {
			return st, err
		}
		if stored, err = store.Units(ctx); err != nil {
			return st, err
		}
	}
	known := map[string]bool{}
	for _, u := range stored {
		known[u.ID] = true
	}
	inFile := map[string]int{} // id → row of its first valid occurrence
	for i := range rows {
		if rows[i].errs != nil {
			continue
		}
		id := rows[i].unit.ID
		if first, dup := inFile[id]; dup {
			rows[i].errs = map[string]qingfeng.FieldError{"id": {Code: "duplicate",
				Message: fmt.Sprintf("与第%d行的单位编号相同", first), English: fmt.Sprintf("the same id as row %d", first)}}
			continue
		}
		inFile[id] = rows[i].n
	}
	// References resolve against the stored units and the valid units of the file; a
	// unit whose parent is rejected is rejected too, hence the loop.
	valid := func(id string) bool {
		if _, ok := inFile[id]; ok {
			return true
		}
		return known[id]
	}
	for changed := true; changed; {
		changed = false
		for i := range rows {
			if rows[i].errs != nil {
				continue
			}
			if errs := routing.UnitRefsMissing(rows[i].unit, valid); errs != nil {
				rows[i].errs = errs
				if inFile[rows[i].unit.ID] == rows[i].n {
					delete(inFile, rows[i].unit.ID)
				}
				changed = true
			}
		}
	}

	var good []routing.RegistryUnit
	merged := map[string]routing.RegistryUnit{}
	for _, u := range stored {
		merged[u.ID] = u
	}
	for _, r := range rows {
		if r.errs != nil {
			st.Rejected++
			if opts.Reject != nil {
				if err := opts.Reject(r.n, r.errs); err != nil {
					return st, err
				}
			}
			continue
		}
		u := r.unit
		if old, ok := merged[u.ID]; ok {
			// Aliases are kept: one an admin added must not vanish because the file
			// does not list it (recusal depends on it). Remove them through the API.
			u.Aliases = mergeAliases(old.Aliases, u.Aliases)
		}
		good = append(good, u)
		merged[u.ID] = u
	}
	// The registry as it will be must load, or the server would refuse to start.
	if _, err := routing.NewUnits(slices.Collect(maps.Values(merged))); err != nil {
		return st, fmt.Errorf("the registry would be inconsistent, nothing imported: %w", err)
	}
	size := cmp.Or(opts.BatchSize, importBatch)
	for chunk := range slices.Chunk(good, size) {
		ins, upd, err := store.UpsertUnits(ctx, chunk)
		st.Inserted, st.Updated = st.Inserted+ins, st.Updated+upd
		if err != nil {
			return st, err
		}
		opts.Progress.update(cr.n, st.Read)
	}
	return st, nil
}

// sortedFields lists the fields of a row's errors in column order.
func sortedFields(errs map[string]qingfeng.FieldError) []string {
	fields := make([]string, 0, len(errs))
	for f := range errs {
		fields = append(fields, f)
	}
	slices.SortFunc(fields, func(a, b string) int {
		return cmp.Or(cmp.Compare(routing.OrgFieldOrder(a), routing.OrgFieldOrder(b)), cmp.Compare(a, b))
	})
	return fields
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
	for _, f := range sortedFields(errs) {
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

// countingReader counts the bytes read through it, for the progress bar.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
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
