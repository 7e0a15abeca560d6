package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/qingfeng-zj/qingfeng/intake"
)

// Intake throughput: tip-offs per second through the whole service (HTTP, JSON,
// validation, numbering, receipt, routing, sealing, FerretDB) against the official
// MongoDB driver v2 inserting equivalent case documents into the same embedded
// database, both at a concurrency of 32.
//
//	go test -run '^$' -bench 'Intake' -benchtime 2000x -count 3 ./cmd/qingfeng/
//
// BenchmarkIntakeHTTP and BenchmarkIntakeRawDriver run one after the other and each
// logs the ratio to the last run of the other; BenchmarkIntakeRatio interleaves the
// two in rounds on one server (b.N rounds of benchIntakeRound reports each way), so
// that machine noise hits both sides alike, and reports the ratios as metrics:
//
//	go test -run '^$' -bench 'IntakeRatio' -benchtime 5x -count 3 ./cmd/qingfeng/
//
// What the raw side does per tip-off ("the same work"): the case-number counter's
// findOneAndUpdate (upsert, return after; serialized in the process, see counterMu)
// and the insert of a bson.M case document of
// the same fields and size as the stored one (for real-name reports, with an identity
// of random bytes the size of the sealed one), into scratch collections with the same
// indexes as counters and cases. The "insert-only" variant drops the counter.
//
// Deliberate costs: sealing is set aside by comparing anonymous reports (the
// "realname" ratio is reported too). The receipt hash (HMAC-SHA256 under the pepper)
// is computed on both sides — the raw side computes one for the receipt_hash field of
// each document — so it cancels; BenchmarkIntakeServiceInMemory/receipt-only in
// ./intake shows it is about a microsecond anyway.
const (
	benchConcurrency = 32
	benchIntakeRound = 500 // reports per side and variant in one round of BenchmarkIntakeRatio
)

// benchIntake is one server (Main on the embedded default) with an HTTP client sized
// for the concurrency, and a raw driver client on the same embedded FerretDB.
type benchIntake struct {
	m       *Main
	url     string
	client  *http.Client
	mc      *mongodrv.Client
	raw     *mongodrv.Collection // scratch: same indexes as cases
	counter *mongodrv.Collection // scratch counters
	bodies  map[string][]byte    // JSON request bodies by variant
	sealed  *intake.SealedIdentity
	pepper  []byte
	// counterMu serializes the raw side's counter updates, as storage/mongo's lockDoc
	// does on FerretDB: FerretDB v1 applies an update by reading, changing in Go and
	// writing back, so unserialized concurrent $inc hand out the same number twice (and
	// concurrent first upserts collide) — E11000 on the unique number index.
	counterMu sync.Mutex
}

func startBenchIntake(b *testing.B) *benchIntake {
	b.Helper()
	ctx := context.Background()
	cfg := testConfig(b, b.TempDir(), nil)
	// Production's log settings (JSON, info): every request formats an access-log line
	// and every filing a "case registered" line; they are written to nowhere.
	m := &Main{Config: cfg, Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), Stderr: io.Discard}
	if err := m.Run(ctx); err != nil {
		_ = m.Close()
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := m.Close(); err != nil {
			b.Error(err)
		}
	})
	if m.emb == nil {
		b.Skip("the database is not the embedded FerretDB")
	}
	bi := &benchIntake{m: m, url: "http://" + m.Addr() + "/v1/reports"}
	bi.client = &http.Client{Transport: &http.Transport{
		MaxIdleConns: 2 * benchConcurrency, MaxIdleConnsPerHost: 2 * benchConcurrency, DisableCompression: true,
	}}
	b.Cleanup(bi.client.CloseIdleConnections)

	// The raw side: the driver's defaults, on the same server and database.
	mc, err := mongodrv.Connect(options.Client().ApplyURI(m.emb.MongoDBURI()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = mc.Disconnect(context.Background()) })
	bi.mc = mc
	db := mc.Database(cfg.MongoDatabase)
	bi.raw, bi.counter = db.Collection("bench_raw_cases"), db.Collection("bench_raw_counters")
	for _, ix := range []mongodrv.IndexModel{ // as storage/mongo's indexes on cases, one per command
		{Keys: bson.D{{Key: "number", Value: 1}}, Options: options.Index().SetName("number_unique").SetUnique(true)},
		{Keys: bson.D{{Key: "receipt_hash", Value: 1}}, Options: options.Index().SetName("receipt_hash_unique").SetUnique(true)},
		{Keys: bson.D{{Key: "unit_id", Value: 1}, {Key: "received_at", Value: -1}, {Key: "_id", Value: 1}}, Options: options.Index().SetName("unit_received")},
		{Keys: bson.D{{Key: "location.division", Value: 1}, {Key: "received_at", Value: -1}, {Key: "_id", Value: 1}}, Options: options.Index().SetName("division_received")},
		{Keys: bson.D{{Key: "filed_by", Value: 1}, {Key: "received_at", Value: -1}, {Key: "_id", Value: 1}}, Options: options.Index().SetName("filed_by_received")},
		{Keys: bson.D{{Key: "received_at", Value: -1}, {Key: "_id", Value: 1}}, Options: options.Index().SetName("received")},
	} {
		if _, err := bi.raw.Indexes().CreateOne(ctx, ix); err != nil {
			b.Fatal(err)
		}
	}

	anon := anonymousReport()
	realName := anonymousReport()
	delete(realName, "anonymous")
	realName["identity"] = map[string]any{"name": "张三", "mobile": "13800000000", "preferred_contact": "phone"}
	bi.bodies = map[string][]byte{}
	for name, v := range map[string]any{"anonymous": anon, "realname": realName} {
		if bi.bodies[name], err = json.Marshal(v); err != nil {
			b.Fatal(err)
		}
	}
	// A sealed identity as the service makes it (the demo custodian), for the size of
	// the raw side's real-name documents; its bytes are reused, not re-sealed.
	plain, _ := json.Marshal(map[string]any{"v": 1, "name": "张三", "mobile": "13800000000", "preferred_contact": "phone"})
	if bi.sealed, err = m.Intake.Sealer.Seal(ctx, "330782", plain); err != nil {
		b.Fatal(err)
	}
	bi.pepper = make([]byte, 32)
	rand.Read(bi.pepper)
	return bi
}

// run does n units of work with benchConcurrency workers and returns the wall time.
func runConcurrently(b *testing.B, n int, work func(i int) error) time.Duration {
	b.Helper()
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		first sync.Once
		fail  error
	)
	start := time.Now()
	for range benchConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := work(i); err != nil {
					first.Do(func() { fail = err })
					next.Store(int64(n)) // stop the others
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if fail != nil {
		b.Fatal(fail)
	}
	return elapsed
}

// fileHTTP files one report of variant through POST /v1/reports.
func (bi *benchIntake) fileHTTP(variant string) error {
	resp, err := bi.client.Post(bi.url, "application/json", bytes.NewReader(bi.bodies[variant]))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST /v1/reports: status %d: %s", resp.StatusCode, body)
	}
	return nil
}

// insertRaw stores one case document of variant with the bare driver, numbering it
// from the scratch counter first when counter is set.
func (bi *benchIntake) insertRaw(ctx context.Context, variant string, counter bool) error {
	seq := int64(0)
	if counter {
		var c struct {
			Seq int64 `bson:"seq"`
		}
		bi.counterMu.Lock()
		err := bi.counter.FindOneAndUpdate(ctx, bson.M{"_id": "case:330782:2026"}, bson.M{"$inc": bson.M{"seq": int64(1)}},
			options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)).Decode(&c)
		bi.counterMu.Unlock()
		if err != nil {
			return fmt.Errorf("counter: %w", err)
		}
		seq = c.Seq
	}
	_, err := bi.raw.InsertOne(ctx, bi.rawCaseDoc(variant, seq))
	return err
}

// rawCaseDoc is a case document of the shape and size storage/mongo stores for the
// API tests' anonymous report (caseDoc is unexported there): the same fields, values
// of the same lengths. Numbers without a counter are random, as they must be unique.
func (bi *benchIntake) rawCaseDoc(variant string, seq int64) bson.M {
	id := intake.NewID()
	number := fmt.Sprintf("QF-330782-2026-%06d", seq)
	if seq == 0 {
		number = "QF-330782-2026-" + id[:6]
	}
	now := time.Now().UTC()
	receipt := make([]byte, 16)
	rand.Read(receipt)
	mac := hmac.New(sha256.New, bi.pepper) // the receipt hash, on both sides
	mac.Write(receipt)
	d := bson.M{
		"_id": id, "number": number, "source": "app", "category": "arbitrary_fees",
		"subject":     bson.M{"kind": "organization", "organization": bson.M{"credit_code": "51330782MJ0000018J", "name": "义乌市某行业协会"}},
		"description": "该协会以“会员服务费”名义向会员企业收取费用，没有收费依据，也不开具票据。",
		"location":    bson.M{"division": "330782", "address": "义乌市稠城街道"},
		"occurred_on": "2026-10", "real_name": false, "receipt_hash": mac.Sum(nil), "status": "registered", "unit_id": "330782-mz",
		"decision": bson.M{"unit_id": "330782-mz", "unit_name": "义乌市民政局",
			"reason": "社会组织（统一社会信用代码登记管理机关代码 5）由其登记管理机关受理；按信用代码登记地（浙江省金华市义乌市）交义乌市民政局",
			"router": "first-version/1", "inputs": bson.M{"category": "arbitrary_fees", "division": "330782", "credit_code": "51330782MJ0000018J"},
			"decided_at": now},
		"warnings": bson.A{}, "received_at": now, "evidence": bson.A{}, "evidence_bytes": int64(0), "version": int64(1), "updated_at": now,
	}
	if variant == "realname" {
		d["real_name"] = true
		d["identity"] = bson.M{"ciphertext": bi.sealed.Ciphertext, "recipients": bi.sealed.Recipients, "sealed_on_device": false, "sealed_at": now}
		d["acceptance_due"] = "2026-12-14"
	}
	return d
}

var benchIntakeResults struct {
	sync.Mutex
	http, raw map[string]float64 // tips/s of the last run, by variant
}

func recordIntake(results *map[string]float64, variant string, tipsPerSec float64) {
	benchIntakeResults.Lock()
	defer benchIntakeResults.Unlock()
	if *results == nil {
		*results = map[string]float64{}
	}
	(*results)[variant] = tipsPerSec
}

// BenchmarkIntakeHTTP files b.N reports through POST /v1/reports (JSON) from 32
// concurrent clients: anonymous, and real-name (identity sealed with age PQ hybrid).
func BenchmarkIntakeHTTP(b *testing.B) {
	for _, variant := range []string{"anonymous", "realname"} {
		b.Run(variant, func(b *testing.B) {
			bi := startBenchIntake(b)
			runConcurrently(b, 2*benchConcurrency, func(int) error { return bi.fileHTTP(variant) }) // warm connections
			b.ResetTimer()
			elapsed := runConcurrently(b, b.N, func(int) error { return bi.fileHTTP(variant) })
			b.StopTimer()
			tps := float64(b.N) / elapsed.Seconds()
			b.ReportMetric(tps, "tips/s")
			if b.N >= benchConcurrency { // not the framework's b.N = 1 probe
				recordIntake(&benchIntakeResults.http, variant, tps)
				benchLogRatio(b, variant)
			}
		})
	}
}

// BenchmarkIntakeRawDriver inserts b.N equivalent case documents with the driver from
// 32 goroutines, numbering each from a counter ("anonymous", "realname": the
// documents' shapes) or not ("insert-only", anonymous-shaped).
func BenchmarkIntakeRawDriver(b *testing.B) {
	for _, v := range []struct {
		name, variant string
		counter       bool
	}{{"anonymous", "anonymous", true}, {"realname", "realname", true}, {"insert-only", "anonymous", false}} {
		b.Run(v.name, func(b *testing.B) {
			bi := startBenchIntake(b)
			ctx := context.Background()
			runConcurrently(b, 2*benchConcurrency, func(int) error { return bi.insertRaw(ctx, v.variant, v.counter) })
			b.ResetTimer()
			elapsed := runConcurrently(b, b.N, func(int) error { return bi.insertRaw(ctx, v.variant, v.counter) })
			b.StopTimer()
			tps := float64(b.N) / elapsed.Seconds()
			b.ReportMetric(tps, "tips/s")
			if b.N >= benchConcurrency { // not the framework's b.N = 1 probe
				recordIntake(&benchIntakeResults.raw, v.name, tps)
				benchLogRatio(b, v.name)
				if v.name == "anonymous" {
					bi.logDocSizes(b)
				}
			}
		})
	}
}

func benchLogRatio(b *testing.B, variant string) {
	benchIntakeResults.Lock()
	defer benchIntakeResults.Unlock()
	ours, raw := benchIntakeResults.http[variant], benchIntakeResults.raw[variant]
	if ours > 0 && raw > 0 {
		b.Logf("%s: ours %.0f tips/s, raw driver %.0f tips/s, ratio ours/raw %.2f (last runs of each)", variant, ours, raw, ours/raw)
	}
}

// logDocSizes compares the raw documents' BSON size with a case the service stored.
func (bi *benchIntake) logDocSizes(b *testing.B) {
	ctx := context.Background()
	if err := bi.fileHTTP("anonymous"); err != nil {
		b.Fatal(err)
	}
	var stored bson.Raw
	if err := bi.mc.Database(bi.m.Config.MongoDatabase).Collection("cases").FindOne(ctx, bson.M{}).Decode(&stored); err != nil {
		b.Fatal(err)
	}
	raw, err := bson.Marshal(bi.rawCaseDoc("anonymous", 1))
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("document size: stored case %d bytes, raw benchmark document %d bytes", len(stored), len(raw))
}

// BenchmarkIntakeRatio alternates, on one server, rounds of benchIntakeRound reports
// each way: HTTP anonymous, raw anonymous, HTTP real-name, raw real-name (raw with the
// counter). Each b.N iteration is one round; the metrics are throughput ratios over all
// rounds (ours/raw, higher is better; the goal is ≥ 0.8 for anonymous).
func BenchmarkIntakeRatio(b *testing.B) {
	bi := startBenchIntake(b)
	ctx := context.Background()
	runConcurrently(b, 2*benchConcurrency, func(int) error { return bi.fileHTTP("anonymous") })
	runConcurrently(b, 2*benchConcurrency, func(int) error { return bi.insertRaw(ctx, "anonymous", true) })
	var ours, raw [2]time.Duration
	variants := [2]string{"anonymous", "realname"}
	b.ResetTimer()
	for b.Loop() {
		for k, variant := range variants {
			ours[k] += runConcurrently(b, benchIntakeRound, func(int) error { return bi.fileHTTP(variant) })
			raw[k] += runConcurrently(b, benchIntakeRound, func(int) error { return bi.insertRaw(ctx, variant, true) })
		}
	}
	n := float64(b.N * benchIntakeRound)
	for k, variant := range variants {
		b.ReportMetric(n/ours[k].Seconds(), variant+"-tips/s")
		b.ReportMetric(n/raw[k].Seconds(), variant+"-raw-tips/s")
		b.ReportMetric(raw[k].Seconds()/ours[k].Seconds(), variant+"-ours/raw")
	}
}
