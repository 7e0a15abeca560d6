package mongo

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// TestIndexChecker feeds the checker synthetic commands: the ones no declared index
// serves must be rejected, so that the check after the tests can fail.
func TestIndexChecker(t *testing.T) {
	raw := func(d bson.D) bson.Raw {
		b, err := bson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	find := func(coll string, filter, sort bson.D) bson.Raw {
		cmd := bson.D{{Key: "find", Value: coll}, {Key: "filter", Value: filter}}
		if sort != nil {
			cmd = append(cmd, bson.E{Key: "sort", Value: sort})
		}
		return raw(cmd)
	}
	m := func(k string, v any) bson.E { return bson.E{Key: k, Value: v} }
	gt := func(v any) bson.D { return bson.D{m("$gt", v)} }
	newest := bson.D{desc("received_at"), asc("_id")}
	tests := []struct {
		name  string
		cmd   string
		body  bson.Raw
		allow map[string]string
		fn    string
		ok    bool
	}{
		{"queue of a unit", "find", find(collCases, bson.D{m("unit_id", "u")}, newest), nil, "", true},
		{"queue of a unit, sort reversed", "find", find(collCases, bson.D{m("unit_id", "u")}, bson.D{asc("received_at"), desc("_id")}), nil, "", true},
		{"queue of a unit, mixed directions", "find", find(collCases, bson.D{m("unit_id", "u")}, bson.D{desc("received_at"), desc("_id")}), nil, "", false},
		{"queue of a unit, sort keys swapped", "find", find(collCases, bson.D{m("unit_id", "u")}, bson.D{asc("_id"), desc("received_at")}), nil, "", false},
		{"queue of a unit within a division", "find", find(collCases, bson.D{m("unit_id", "u"), m("location.division", bson.D{m("$gte", "3301"), m("$lt", "3302")})}, newest), nil, "", true},
		{"equality not a prefix", "find", find(collCases, bson.D{m("status", "registered")}, newest), nil, "", false},
		{"equality on a field after the prefix", "find", find(collCases, bson.D{m("unit_id", "u"), m("filed_by", "x")}, newest), nil, "", false},
		{"range before the sort", "find", find(collCases, bson.D{m("unit_id", "u"), m("received_at", gt(1))}, bson.D{asc("_id")}), nil, "", false},
		{"range on the sort field", "find", find(collCases, bson.D{m("unit_id", "u"), m("received_at", gt(1))}, newest), nil, "", true},
		{"$in is equality", "find", find(collCases, bson.D{m("unit_id", bson.D{m("$in", bson.A{"a", "b"})})}, newest), nil, "", true},
		{"by _id with anything else", "find", find(collCases, bson.D{m("_id", "c"), m("version", 3), m("x", gt(1))}, nil), nil, "", true},
		{"_id range alone", "find", find(collCases, bson.D{m("_id", gt("c"))}, nil), nil, "", true},
		{"empty filter", "find", find(collCases, bson.D{}, nil), nil, "", false},
		{"empty filter, first document", "find", raw(bson.D{m("find", collCases), m("filter", bson.D{}), m("limit", int64(1))}), nil, "", true},
		{"empty filter, sorted by an index", "find", find(collCases, bson.D{}, newest), nil, "", true},
		{"unknown collection", "find", find("nowhere", bson.D{m("a", 1)}, nil), nil, "", false},
		{"$or, both branches served", "find", find(collCases, bson.D{m("unit_id", "u"), m("$or", bson.A{
			bson.D{m("received_at", bson.D{m("$lt", 5)})},
			bson.D{m("received_at", 5), m("_id", gt("c"))},
		})}, newest), nil, "", true},
		{"$or, one branch not served", "find", find(collCases, bson.D{m("$or", bson.A{
			bson.D{m("unit_id", "u")},
			bson.D{m("assignee", "a")},
		})}, nil), nil, "", false},
		{"$nor", "find", find(collCases, bson.D{m("$nor", bson.A{bson.D{m("unit_id", "u")}})}, nil), nil, "", false},
		{"$expr", "find", find(collCases, bson.D{m("$expr", bson.D{m("$eq", bson.A{"$a", "$b"})})}, nil), nil, "", false},
		{"aggregate after a served $match", "aggregate", raw(bson.D{m("aggregate", collCases), m("pipeline", bson.A{
			bson.D{m("$match", bson.D{m("unit_id", "u"), m("received_at", gt(1))})},
			bson.D{m("$group", bson.D{m("_id", "$status"), m("n", bson.D{m("$sum", 1)})})},
		})}), nil, "", true},
		{"aggregate with no $match", "aggregate", raw(bson.D{m("aggregate", collCases), m("pipeline", bson.A{
			bson.D{m("$group", bson.D{m("_id", "$status")})},
		})}), nil, "", false},
		{"aggregate $match then unserved $sort", "aggregate", raw(bson.D{m("aggregate", collCases), m("pipeline", bson.A{
			bson.D{m("$match", bson.D{m("unit_id", "u")})},
			bson.D{m("$sort", bson.D{asc("number")})},
		})}), nil, "", false},
		{"countDocuments with an empty filter", "aggregate", raw(bson.D{m("aggregate", collUsers), m("pipeline", bson.A{
			bson.D{m("$match", bson.D{})},
			bson.D{m("$group", bson.D{m("_id", 1), m("n", bson.D{m("$sum", 1)})})},
		})}), nil, "", false},
		{"countDocuments limit 1", "aggregate", raw(bson.D{m("aggregate", collUnits), m("pipeline", bson.A{
			bson.D{m("$match", bson.D{})}, bson.D{m("$limit", int64(1))},
			bson.D{m("$group", bson.D{m("_id", 1), m("n", bson.D{m("$sum", 1)})})},
		})}), nil, "", true},
		{"count from metadata", "count", raw(bson.D{m("count", collUsers)}), nil, "", true},
		{"count with a query", "count", raw(bson.D{m("count", collUsers), m("query", bson.D{m("role", "admin")})}), nil, "", false},
		{"distinct unserved", "distinct", raw(bson.D{m("distinct", collCases), m("key", "unit_id"), m("query", bson.D{m("category", "x")})}), nil, "", false},
		{"update by _id", "update", raw(bson.D{m("update", collCases), m("updates", bson.A{bson.D{m("q", bson.D{m("_id", "c")}), m("u", bson.D{})}})}), nil, "", true},
		{"update, second statement unserved", "update", raw(bson.D{m("update", collCases), m("updates", bson.A{
			bson.D{m("q", bson.D{m("_id", "c")}), m("u", bson.D{})},
			bson.D{m("q", bson.D{m("assignee", "a")}), m("u", bson.D{}), m("multi", true)},
		})}), nil, "", false},
		{"delete unserved", "delete", raw(bson.D{m("delete", collSessions), m("deletes", bson.A{bson.D{m("q", bson.D{m("refresh_hash", "h")}), m("limit", 0)}})}), nil, "", false},
		{"delete sessions of a user but one", "delete", raw(bson.D{m("delete", collSessions), m("deletes", bson.A{bson.D{m("q", bson.D{m("user_id", "u"), m("_id", bson.D{m("$ne", "s")})}), m("limit", 0)}})}), nil, "", true},
		{"findAndModify unserved", "findAndModify", raw(bson.D{m("findAndModify", collCases), m("query", bson.D{m("assignee", "a")})}), nil, "", false},
		{"findAndModify by _id", "findAndModify", raw(bson.D{m("findAndModify", collCounters), m("query", bson.D{m("_id", "n")})}), nil, "", true},
		{"range on a field not in the index", "find", find(collCases, bson.D{m("unit_id", "u"), m("version", gt(1))}, newest), nil, "", false},
		{"queue of a status narrowed by category in ListCases", "find", find(collCases, bson.D{m("unit_id", "u"), m("status", "registered"), m("category", "x")}, newest), nil, "(*CaseStore).ListCases", true},
		{"queue of a status narrowed by category elsewhere", "find", find(collCases, bson.D{m("unit_id", "u"), m("status", "registered"), m("category", "x")}, newest), nil, "(*CaseStore).Other", false},
		{"narrowing alone is a scan", "find", find(collCases, bson.D{m("category", "x")}, nil), nil, "(*CaseStore).ListCases", false},
		{"allowed for its method", "find", find(collCases, bson.D{m("assignee", "a")}, nil),
			map[string]string{"(*CaseStore).X cases eq[assignee] range[] sort[]": "test"}, "(*CaseStore).X", true},
		{"allowed for another method only", "find", find(collCases, bson.D{m("assignee", "a")}, nil),
			map[string]string{"(*CaseStore).X cases eq[assignee] range[] sort[]": "test"}, "(*CaseStore).Y", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			qs, err := queriesOf(tt.cmd, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if len(qs) == 0 {
				t.Fatal("no query extracted")
			}
			var errs []error
			for _, q := range qs {
				if err := checkQuery(declaredIndexes, tt.allow, tt.fn, q); err != nil {
					errs = append(errs, err)
				}
			}
			if ok := len(errs) == 0; ok != tt.ok {
				t.Errorf("served = %v, want %v (%v)", ok, tt.ok, errs)
			}
		})
	}
	// Commands that are not queries are not checked.
	for _, name := range []string{"insert", "getMore", "createIndexes", "ping"} {
		if qs, err := queriesOf(name, raw(bson.D{m(name, "cases")})); len(qs) != 0 || err != nil {
			t.Errorf("%s: %v, %v; want nothing to check", name, qs, err)
		}
	}
}

// TestIndexCheckerSeesWireCommands sends real commands through the driver and checks
// what a command monitor sees: the shapes the driver puts on the wire (the update and
// delete statements, countDocuments' pipeline) are the ones the checker reads.
func TestIndexCheckerSeesWireCommands(t *testing.T) {
	tg := targets[0]
	if tg.err != nil {
		t.Fatal(tg.err)
	}
	var mu sync.Mutex
	var seen []*event.CommandStartedEvent
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, e)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := mongodrv.Connect(options.Client().ApplyURI(tg.uri).SetMonitor(mon))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	dbName := fmt.Sprintf("qftest_wire_%d", time.Now().UnixNano())
	c := client.Database(dbName).Collection(collCases)
	defer client.Database(dbName).Drop(context.Background())

	type op struct {
		name string
		run  func() error
		ok   bool
	}
	ops := []op{
		{"UpdateMany unserved", func() error {
			_, err := c.UpdateMany(ctx, bson.M{"assignee": "a"}, bson.M{"$set": bson.M{"x": 1}})
			return err
		}, false},
		{"UpdateOne by _id", func() error {
			_, err := c.UpdateOne(ctx, bson.M{"_id": "c"}, bson.M{"$set": bson.M{"x": 1}}, options.UpdateOne().SetUpsert(true))
			return err
		}, true},
		{"DeleteMany unserved", func() error { _, err := c.DeleteMany(ctx, bson.M{"category": "x"}); return err }, false},
		{"CountDocuments all", func() error { _, err := c.CountDocuments(ctx, bson.M{}); return err }, false},
		{"CountDocuments of a unit", func() error { _, err := c.CountDocuments(ctx, bson.M{"unit_id": "u"}); return err }, true},
		{"EstimatedDocumentCount", func() error { _, err := c.EstimatedDocumentCount(ctx); return err }, true},
		{"Find unserved sort", func() error {
			_, err := c.Find(ctx, bson.M{"unit_id": "u"}, options.Find().SetSort(bson.D{asc("number")}))
			return err
		}, false},
		{"FindOneAndUpdate unserved", func() error {
			err := c.FindOneAndUpdate(ctx, bson.M{"assignee": "a"}, bson.M{"$set": bson.M{"x": 1}}).Err()
			if err == mongodrv.ErrNoDocuments {
				return nil
			}
			return err
		}, false},
	}
	for _, o := range ops {
		mu.Lock()
		seen = nil
		mu.Unlock()
		if err := o.run(); err != nil {
			t.Fatalf("%s: %v", o.name, err)
		}
		mu.Lock()
		var checked int
		var errs []error
		for _, e := range seen {
			qs, err := queriesOf(e.CommandName, e.Command)
			if err != nil {
				t.Errorf("%s: %v", o.name, err)
			}
			for _, q := range qs {
				checked++
				if err := checkQuery(declaredIndexes, nil, "", q); err != nil {
					errs = append(errs, err)
				}
			}
		}
		mu.Unlock()
		if checked == 0 {
			t.Errorf("%s: no query seen on the wire", o.name)
		} else if ok := len(errs) == 0; ok != o.ok {
			t.Errorf("%s: served = %v, want %v (%v)", o.name, ok, o.ok, errs)
		}
	}
}

// TestReadmeListsIndexes checks that the README's production section lists exactly
// declaredIndexes, in order.
func TestReadmeListsIndexes(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile("(?m)^  - `([a-z_]+)\\.([a-z_]+)` `\\{[^`]*\\}`.*$")
	var got []string
	for _, m := range line.FindAllString(string(b), -1) {
		got = append(got, strings.TrimSpace(m))
	}
	var want []string
	for _, ix := range declaredIndexes {
		want = append(want, strings.TrimSpace(readmeIndexLine(ix)))
	}
	if !slices.Equal(got, want) {
		t.Errorf("README's index list differs from declaredIndexes; it should read:\n%s", strings.Join(want, "\n"))
	}
}

// readmeIndexLine is an index as the README lists it.
func readmeIndexLine(ix index) string {
	var ks []string
	for _, k := range ix.keys {
		ks = append(ks, fmt.Sprintf("%s: %v", k.Key, k.Value))
	}
	var attrs []string
	if ix.unique {
		attrs = append(attrs, "unique")
	}
	if ix.ttl {
		attrs = append(attrs, "TTL, MongoDB only")
	}
	s := fmt.Sprintf("  - `%s.%s` `{%s}`", ix.coll, ix.name, strings.Join(ks, ", "))
	if len(attrs) > 0 {
		s += " (" + strings.Join(attrs, ", ") + ")"
	}
	return s + " — " + ix.why
}
