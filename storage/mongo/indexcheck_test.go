package mongo

// The index check: every command the stores send while this package's tests run is
// recorded (the driver's command monitor, installed by TestMain through
// testCommandMonitor), and after the tests each find, aggregate, count, distinct,
// update, delete and findAndModify is checked against declaredIndexes with the ESR
// rule. The embedded FerretDB uses no secondary index, so nothing here would show a
// missing one; on a city's caseload in MongoDB a missing one is a collection scan per
// queue page. The check needs no MongoDB: it reads the commands, not the query plans.
//
// Commands sent from a _test.go file directly (a test counting documents, say) are not
// the stores' queries and are not checked; a command is attributed to the innermost
// frame of this package on its goroutine's stack.

import (
	"context"
	"fmt"
	"maps"
	"os"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
)

// allowedScans are the queries allowed without an index, by the store method that
// sends them, collection and shape (see shape), each with the reason. Keep it short: a
// query on a collection that grows with the caseload belongs in declaredIndexes.
var allowedScans = map[string]string{
	"(*OrgStore).EachOrganization organizations eq[] range[] sort[]": "reads every organization once, into the in-memory routing.Orgs at start; no index makes reading all of them cheaper",
	"(*UnitStore).Units units eq[] range[] sort[]":                   "reads the whole unit registry (hundreds of units) into the router at start and on reload",
	"(*DB).ReferencedObjects cases eq[] range[] sort[]":              "the orphan sweeper keeps every object any case names: it must read every case (only the keys are projected)",
	"(*DB).ReferencedObjects ledger_photos eq[] range[] sort[]":      "the orphan sweeper keeps every ledger photo: it must read every photo batch",
	"(*DB).EnsureIndexes cases eq[] range[evidence_keys] sort[]":     "fillDerived of evidence_keys, once per start: the cases stored before evidence_keys (none after the first start); an index on evidence_keys for it alone would cost every upload a write",
	"(*CaseStore).Stats cases eq[] range[] sort[]":                   "statistics over all cases, for an admin, count every case; an index cannot make reading all of them cheaper (a unit or a period is served by unit_queue, division_received or all_queue)",
}

// narrowingFields are equality fields a store method may add to a query whose other
// fields an index serves: the documents the index finds, in its order, are read and
// those fields compared. Indexing every combination with each scope and order would
// take dozens of indexes.
var narrowingFields = map[string][]string{
	// GET /v1/cases?status=&category=&assignee=&new_activity=: a staff member's or a
	// liaison's queue is bounded by their unit's or their own caseload (a unit's
	// new_activity has its own indexes). An admin's unscoped list filtered this way
	// can read every case for a page with few matches.
	// A liaison's own filings searched by organization ("org_keys@filed_by": org_keys
	// narrows only a query with filed_by) are read in filed_by_queue's order likewise;
	// a unit's search, or an admin's, must be served by the org indexes.
	"(*CaseStore).ListCases cases": {"status", "category", "assignee", "new_activity", "org_keys@filed_by"},
}

// A query is the part of a command an index can serve.
type query struct {
	coll   string
	cmd    string
	filter bson.Raw // nil: no filter
	sort   bson.Raw // nil: no sort
	// metaCount is a count with no filter, answered from collection metadata.
	metaCount bool
	// firstOne is a query with no filter and no sort for one document: it reads one.
	firstOne bool
}

// keyDir is one index key or sort key.
type keyDir struct {
	field string
	dir   int // 1 or -1
}

// conj is one conjunction of a filter in disjunctive normal form.
type conj struct {
	eq, rng map[string]bool
}

// queriesOf extracts the queries in a command: one per update or delete statement,
// none for commands that are not queries (createIndexes, getMore, insert, …).
func queriesOf(cmdName string, cmd bson.Raw) ([]query, error) {
	coll, _ := cmd.Lookup(cmdName).StringValueOK()
	q := query{coll: coll, cmd: cmdName}
	doc := func(key string) bson.Raw {
		v, err := cmd.LookupErr(key)
		if err != nil {
			return nil
		}
		d, ok := v.DocumentOK()
		if !ok {
			return nil
		}
		return d
	}
	switch cmdName {
	case "find":
		q.filter, q.sort = doc("filter"), doc("sort")
		if l, ok := cmd.Lookup("limit").AsInt64OK(); ok && l == 1 && len(fieldsOf(q.filter)) == 0 && q.sort == nil {
			q.firstOne = true
		}
	case "count":
		q.filter = doc("query")
		q.metaCount = len(fieldsOf(q.filter)) == 0
	case "distinct":
		q.filter = doc("query")
	case "findAndModify":
		q.filter, q.sort = doc("query"), doc("sort")
	case "aggregate":
		pipe, ok := cmd.Lookup("pipeline").ArrayOK()
		if !ok {
			return nil, fmt.Errorf("aggregate on %s without a pipeline", coll)
		}
		stages, err := pipe.Values()
		if err != nil {
			return nil, err
		}
		// The leading $match stages are the filter; a $sort right after them is the sort.
		var matches bson.A
		for _, st := range stages {
			sd, ok := st.DocumentOK()
			if !ok {
				break
			}
			if m, ok := sd.Lookup("$match").DocumentOK(); ok {
				matches = append(matches, m)
				continue
			}
			if s, ok := sd.Lookup("$sort").DocumentOK(); ok {
				q.sort = s
			}
			if l, ok := sd.Lookup("$limit").AsInt64OK(); ok && l == 1 && q.sort == nil {
				// Only the stages before the $limit filter; none that sort.
				q.firstOne = true
				for _, m := range matches {
					md, _ := m.(bson.Raw)
					q.firstOne = q.firstOne && len(fieldsOf(md)) == 0
				}
			}
			break
		}
		if len(matches) > 0 {
			f, err := bson.Marshal(bson.D{{Key: "$and", Value: matches}})
			if err != nil {
				return nil, err
			}
			q.filter = f
		}
	case "update", "delete":
		arr, field := "updates", "q"
		if cmdName == "delete" {
			arr = "deletes"
		}
		v, err := cmd.LookupErr(arr)
		if err != nil {
			return nil, fmt.Errorf("%s on %s without %s", cmdName, coll, arr)
		}
		a, ok := v.ArrayOK()
		if !ok {
			return nil, fmt.Errorf("%s on %s: %s is not an array", cmdName, coll, arr)
		}
		vals, err := a.Values()
		if err != nil {
			return nil, err
		}
		var out []query
		for _, st := range vals {
			d, _ := st.DocumentOK()
			f, _ := d.Lookup(field).DocumentOK()
			out = append(out, query{coll: coll, cmd: cmdName, filter: f})
		}
		return out, nil
	default:
		return nil, nil
	}
	return []query{q}, nil
}

func fieldsOf(d bson.Raw) []bson.RawElement {
	if d == nil {
		return nil
	}
	els, _ := d.Elements()
	return els
}

// conjunctions puts filter in disjunctive normal form: a query is served when every
// conjunction is.
func conjunctions(filter bson.Raw) ([]conj, error) {
	out := []conj{{eq: map[string]bool{}, rng: map[string]bool{}}}
	for _, el := range fieldsOf(filter) {
		key, val := el.Key(), el.Value()
		switch key {
		case "$and", "$or":
			arr, ok := val.ArrayOK()
			if !ok {
				return nil, fmt.Errorf("%s is not an array", key)
			}
			vals, err := arr.Values()
			if err != nil {
				return nil, err
			}
			var branches [][]conj
			for _, v := range vals {
				d, ok := v.DocumentOK()
				if !ok {
					return nil, fmt.Errorf("%s holds a non-document", key)
				}
				c, err := conjunctions(d)
				if err != nil {
					return nil, err
				}
				branches = append(branches, c)
			}
			if key == "$and" {
				for _, b := range branches {
					out = product(out, b)
				}
			} else {
				var union []conj
				for _, b := range branches {
					union = append(union, b...)
				}
				out = product(out, union)
			}
		default:
			if strings.HasPrefix(key, "$") {
				// $nor, $expr, $where, $text, …: no index bounds from these.
				return nil, fmt.Errorf("top-level %s cannot use an index", key)
			}
			kind := "eq"
			if d, ok := val.DocumentOK(); ok {
				ops := fieldsOf(d)
				if len(ops) > 0 && strings.HasPrefix(ops[0].Key(), "$") {
					kind = ""
					for _, op := range ops {
						switch op.Key() {
						case "$eq", "$in":
							kind = "eq"
						default:
							if kind == "" {
								kind = "range"
							}
						}
					}
				}
			}
			for i := range out {
				if kind == "eq" {
					out[i].eq[key] = true
				} else {
					out[i].rng[key] = true
				}
			}
		}
	}
	for i := range out {
		for f := range out[i].eq {
			delete(out[i].rng, f)
		}
	}
	return out, nil
}

// product is every a AND b.
func product(as, bs []conj) []conj {
	var out []conj
	for _, a := range as {
		for _, b := range bs {
			c := conj{eq: map[string]bool{}, rng: map[string]bool{}}
			for _, m := range []map[string]bool{a.eq, b.eq} {
				for f := range m {
					c.eq[f] = true
				}
			}
			for _, m := range []map[string]bool{a.rng, b.rng} {
				for f := range m {
					c.rng[f] = true
				}
			}
			out = append(out, c)
		}
	}
	return out
}

func sortKeys(s bson.Raw) ([]keyDir, error) {
	var out []keyDir
	for _, el := range fieldsOf(s) {
		v := el.Value()
		var dir int64
		switch v.Type {
		case bson.TypeInt32:
			dir = int64(v.Int32())
		case bson.TypeInt64:
			dir = v.Int64()
		case bson.TypeDouble:
			dir = int64(v.Double())
		default:
			return nil, fmt.Errorf("sort key %s is %s, not 1 or -1", el.Key(), v.Type)
		}
		if dir != 1 && dir != -1 {
			return nil, fmt.Errorf("sort key %s is %d, not 1 or -1", el.Key(), dir)
		}
		out = append(out, keyDir{el.Key(), int(dir)})
	}
	return out, nil
}

func indexKeys(d bson.D) []keyDir {
	out := make([]keyDir, len(d))
	for i, e := range d {
		dir, _ := e.Value.(int)
		out[i] = keyDir{e.Key, dir}
	}
	return out
}

// served reports whether index keys k serve conjunction c sorted by s, by the ESR
// rule: c's equality fields are a prefix of k in any order, then s in order (all in
// the index's directions or all reversed), then c's range fields in any order, among
// the remaining keys (a range on a sort field is served by the sort part). A range
// field not in the index, or before the sort, is not served.
func served(c conj, s []keyDir, k []keyDir) bool {
	// A sort on a field fixed by equality orders nothing.
	s = slices.DeleteFunc(slices.Clone(s), func(kd keyDir) bool { return c.eq[kd.field] })
	n := len(c.eq)
	if n+len(s) > len(k) {
		return false
	}
	for _, kd := range k[:n] {
		if !c.eq[kd.field] {
			return false
		}
	}
	flip := 0
	for i, kd := range s {
		ik := k[n+i]
		if ik.field != kd.field {
			return false
		}
		f := 1
		if ik.dir != kd.dir {
			f = -1
		}
		if flip != 0 && f != flip {
			return false
		}
		flip = f
	}
	inSort := map[string]bool{}
	for _, kd := range s {
		inSort[kd.field] = true
	}
	var rest []string
	for f := range c.rng {
		if !inSort[f] {
			rest = append(rest, f)
		}
	}
	after := k[n+len(s):]
	for _, f := range rest {
		if !slices.ContainsFunc(after, func(kd keyDir) bool { return kd.field == f }) {
			return false
		}
	}
	// Nothing to bound and nothing to order: a collection scan.
	return n+len(s)+len(rest) > 0
}

// unserved returns the shapes of q's conjunctions that neither _id nor any of indexes
// serves.
func unserved(indexes []index, narrowing []string, q query) ([]string, error) {
	if q.metaCount || q.firstOne {
		return nil, nil
	}
	cs, err := conjunctions(q.filter)
	if err != nil {
		return nil, err
	}
	s, err := sortKeys(q.sort)
	if err != nil {
		return nil, err
	}
	keys := [][]keyDir{{{"_id", 1}}}
	for _, ix := range indexes {
		if ix.coll == q.coll {
			keys = append(keys, indexKeys(ix.keys))
		}
	}
	var out []string
	for _, c := range cs {
		ok := c.eq["_id"] // a look-up by _id is one document, however it is sorted
		for _, k := range keys {
			ok = ok || served(c, s, k)
		}
		if !ok && len(narrowing) > 0 {
			// Served once the narrowing fields are left to the documents?
			n := conj{eq: maps.Clone(c.eq), rng: c.rng}
			for _, f := range narrowing {
				if f, scope, _ := strings.Cut(f, "@"); scope == "" || c.eq[scope] {
					delete(n.eq, f)
				}
			}
			for _, k := range keys {
				ok = ok || served(n, s, k)
			}
		}
		if !ok {
			out = append(out, shape(c, s))
		}
	}
	return out, nil
}

// checkQuery returns nil when q, sent by store method fn, is served by one of indexes
// (or _id's) or allowed by allow (fn + " " + collection + " " + shape), else why not.
func checkQuery(indexes []index, allow map[string]string, fn string, q query) error {
	shapes, err := unserved(indexes, narrowingFields[fn+" "+q.coll], q)
	if err != nil {
		return err
	}
	shapes = slices.DeleteFunc(shapes, func(sh string) bool { _, ok := allow[fn+" "+q.coll+" "+sh]; return ok })
	if len(shapes) > 0 {
		return fmt.Errorf("not served by any index on %s: %s", q.coll, strings.Join(shapes, " OR "))
	}
	return nil
}

// shape describes a conjunction and sort without values, e.g.
// "eq[unit_id] range[due_at] sort[received_at:-1,_id:1]".
func shape(c conj, s []keyDir) string {
	set := func(m map[string]bool) string {
		var fs []string
		for f := range m {
			fs = append(fs, f)
		}
		sort.Strings(fs)
		return strings.Join(fs, ",")
	}
	var ss []string
	for _, kd := range s {
		ss = append(ss, fmt.Sprintf("%s:%d", kd.field, kd.dir))
	}
	return fmt.Sprintf("eq[%s] range[%s] sort[%s]", set(c.eq), set(c.rng), strings.Join(ss, ","))
}

// The recorder.

var recorded = struct {
	sync.Mutex
	seen  map[string]bool // command name, collection, shape and caller already checked
	fails []string
	count int
}{seen: map[string]bool{}}

var pkgPrefix = func() string {
	name := runtime.FuncForPC(reflect.ValueOf(Open).Pointer()).Name()
	return strings.TrimSuffix(name, "Open")
}()

// caller names the innermost frames of this package on the current stack (where) and
// the outermost of those (fn, the store method, past helpers such as findAll), and
// whether the innermost one is in a test file.
func caller() (where, fn string, inTest bool) {
	pcs := make([]uintptr, 128)
	n := runtime.Callers(1, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	var chain []string
	for {
		f, more := frames.Next()
		if strings.HasPrefix(f.Function, pkgPrefix) && !strings.HasSuffix(f.File, "/indexcheck_test.go") {
			if strings.HasSuffix(f.File, "_test.go") {
				if len(chain) == 0 {
					return "", "", true
				}
				break
			}
			file := f.File[strings.LastIndex(f.File, "/")+1:]
			fn = strings.TrimPrefix(f.Function, pkgPrefix)
			if i := strings.Index(fn, ".func"); i > 0 {
				fn = fn[:i] // a closure: its method
			}
			chain = append(chain, fmt.Sprintf("%s (%s:%d)", fn, file, f.Line))
			if !strings.HasPrefix(fn, "findAll") && !strings.HasPrefix(fn, "(*DB).") {
				break
			}
			if len(chain) == 3 {
				break
			}
		}
		if !more {
			break
		}
	}
	if len(chain) == 0 {
		return "an unknown caller", "", false
	}
	return strings.Join(chain, " ← "), fn, false
}

func recordCommand(e *event.CommandStartedEvent) {
	qs, err := queriesOf(e.CommandName, e.Command)
	if len(qs) == 0 && err == nil {
		return
	}
	where, fn, inTest := caller()
	if inTest {
		return
	}
	recorded.Lock()
	defer recorded.Unlock()
	if err != nil {
		recorded.fails = append(recorded.fails, fmt.Sprintf("%s: %v", where, err))
		return
	}
	for _, q := range qs {
		recorded.count++
		cs, _ := conjunctions(q.filter)
		s, _ := sortKeys(q.sort)
		var shapes []string
		for _, c := range cs {
			shapes = append(shapes, shape(c, s))
		}
		key := q.cmd + " " + q.coll + " " + strings.Join(shapes, "|") + " " + where
		if recorded.seen[key] {
			continue
		}
		recorded.seen[key] = true
		if err := checkQuery(declaredIndexes, allowedScans, fn, q); err != nil {
			recorded.fails = append(recorded.fails, fmt.Sprintf("%s %s from %s: %v", q.cmd, q.coll, where, err))
		}
	}
}

// recordCommands installs the recorder for every DB opened from now on.
func recordCommands() {
	testCommandMonitor = &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) { recordCommand(e) }}
}

// reportIndexCheck prints the queries no declared index serves and returns whether
// there were none.
func reportIndexCheck() bool {
	recorded.Lock()
	defer recorded.Unlock()
	if len(recorded.fails) == 0 {
		fmt.Fprintf(os.Stderr, "index check: %d queries (%d distinct by caller and shape), all served by declared indexes\n", recorded.count, len(recorded.seen))
		return true
	}
	fails := slices.Clone(recorded.fails)
	sort.Strings(fails)
	fmt.Fprintf(os.Stderr, "FAIL index check: %d queries the stores sent are not served by an index in declaredIndexes (mongo.go):\n", len(fails))
	for _, f := range fails {
		fmt.Fprintln(os.Stderr, "  "+f)
	}
	return false
}
