package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"encoding/json"

	"github.com/qingfeng-zj/qingfeng/storage/sqlite"
)

// Intake throughput on the embedded default (storage/sqlite, synchronous=FULL):
// tip-offs per second through the whole service (HTTP, JSON, validation, numbering,
// receipt, routing, sealing, the database's commits) from 32 concurrent clients, with
// the write-ahead log's peak size sampled while it runs and the data directory's size
// per case at the end:
//
//	go test -run '^$' -bench 'IntakeHTTP' -benchtime 5000x ./cmd/qingfeng/
//
// (The earlier comparison with the bare MongoDB driver on FerretDB went with FerretDB:
// against SQLite the figure that matters is the absolute rate, and the goal is 500
// anonymous tip-offs/s.)
const benchConcurrency = 32

// benchIntake is one server (Main on the embedded default) with an HTTP client sized
// for the concurrency.
type benchIntake struct {
	m      *Main
	dir    string
	url    string
	client *http.Client
	bodies map[string][]byte // JSON request bodies by variant
}

func startBenchIntake(b *testing.B) *benchIntake {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	cfg := testConfig(b, dir, nil)
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
	bi := &benchIntake{m: m, dir: dir, url: "http://" + m.Addr() + "/v1/reports"}
	bi.client = &http.Client{Transport: &http.Transport{
		MaxIdleConns: 2 * benchConcurrency, MaxIdleConnsPerHost: 2 * benchConcurrency, DisableCompression: true,
	}}
	b.Cleanup(bi.client.CloseIdleConnections)
	anon := anonymousReport()
	realName := anonymousReport()
	delete(realName, "anonymous")
	realName["identity"] = map[string]any{"name": "张三", "mobile": "13800000000", "preferred_contact": "phone"}
	bi.bodies = map[string][]byte{}
	for name, v := range map[string]any{"anonymous": anon, "realname": realName} {
		var err error
		if bi.bodies[name], err = json.Marshal(v); err != nil {
			b.Fatal(err)
		}
	}
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

// dirBytes is the size of the files under dir.
func dirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// BenchmarkIntakeHTTP files b.N reports through POST /v1/reports (JSON) from 32
// concurrent clients: anonymous, and real-name (identity sealed with age PQ hybrid).
// It reports tips/s, the WAL's peak size while filing (sampled every 10 ms) and the
// database's size per case afterwards (file + WAL, after the server's checkpoint).
func BenchmarkIntakeHTTP(b *testing.B) {
	for _, variant := range []string{"anonymous", "realname"} {
		b.Run(variant, func(b *testing.B) {
			bi := startBenchIntake(b)
			runConcurrently(b, 2*benchConcurrency, func(int) error { return bi.fileHTTP(variant) }) // warm connections
			wal := filepath.Join(bi.dir, sqlite.FileName+"-wal")
			var peak atomic.Int64
			stop := make(chan struct{})
			var sampler sync.WaitGroup
			sampler.Add(1)
			go func() {
				defer sampler.Done()
				t := time.NewTicker(10 * time.Millisecond)
				defer t.Stop()
				for {
					if fi, err := os.Stat(wal); err == nil && fi.Size() > peak.Load() {
						peak.Store(fi.Size())
					}
					select {
					case <-stop:
						return
					case <-t.C:
					}
				}
			}()
			before := caseCountOf(b, bi.m)
			b.ResetTimer()
			elapsed := runConcurrently(b, b.N, func(int) error { return bi.fileHTTP(variant) })
			b.StopTimer()
			close(stop)
			sampler.Wait()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "tips/s")
			b.ReportMetric(float64(peak.Load())/(1<<20), "wal_peak_MiB")
			if err := bi.m.st.sqlite.Checkpoint(context.Background()); err != nil {
				b.Fatal(err)
			}
			cases := caseCountOf(b, bi.m)
			if cases-before != int64(b.N) {
				b.Fatalf("%d cases stored for %d filings", cases-before, b.N)
			}
			db := filepath.Join(bi.dir, sqlite.FileName)
			var size int64
			for _, f := range []string{db, db + "-wal", db + "-shm"} {
				if fi, err := os.Stat(f); err == nil {
					size += fi.Size()
				}
			}
			b.ReportMetric(float64(size)/float64(cases), "db_bytes/case")
			b.ReportMetric(float64(dirBytes(bi.dir))/float64(cases), "datadir_bytes/case")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func caseCountOf(tb testing.TB, m *Main) int64 {
	tb.Helper()
	n, err := sqlite.NewCaseStore(m.st.sqlite).CountCases(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return n
}
