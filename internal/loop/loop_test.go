package loop

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestStopWaitsForEveryJob: Stop returns only after every job's last run has ended,
// even a run that is slow to notice the cancellation, and no job runs after.
func TestStopWaitsForEveryJob(t *testing.T) {
	var log bytes.Buffer
	g := New(context.Background(), slog.New(slog.NewTextHandler(&log, nil)))
	var (
		runs   [5]atomic.Int64
		exited [5]atomic.Bool
		start  sync.WaitGroup
	)
	start.Add(len(runs))
	for i := range runs {
		g.Go("job", time.Millisecond, func(ctx context.Context) error {
			if runs[i].Add(1) == 1 {
				start.Done()
			}
			<-ctx.Done()
			time.Sleep(time.Duration(i*20) * time.Millisecond) // slow to wind down
			exited[i].Store(true)
			return ctx.Err()
		})
	}
	start.Wait()
	if !g.Stop(context.Background()) {
		t.Fatal("Stop gave up")
	}
	for i := range exited {
		if !exited[i].Load() {
			t.Errorf("job %d still running after Stop", i)
		}
	}
	before := runs[0].Load()
	time.Sleep(20 * time.Millisecond)
	if runs[0].Load() != before {
		t.Error("a job ran after Stop")
	}
	if log.Len() != 0 {
		t.Errorf("a cancelled run was logged as a failure: %s", log.String())
	}
}

func TestRunsAtOnceThenEveryIntervalAndLogsErrors(t *testing.T) {
	var log syncBuf
	g := New(context.Background(), slog.New(slog.NewTextHandler(&log, nil)))
	var n atomic.Int64
	g.Go("ticker", 10*time.Millisecond, func(context.Context) error {
		n.Add(1)
		return errors.New("backend down")
	})
	deadline := time.Now().Add(5 * time.Second)
	for n.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	g.Stop(context.Background())
	if n.Load() < 3 {
		t.Fatalf("%d runs", n.Load())
	}
	if !strings.Contains(log.String(), "job=ticker") || !strings.Contains(log.String(), "backend down") {
		t.Errorf("log: %s", log.String())
	}
}

func TestStopGivesUpAtItsDeadline(t *testing.T) {
	g := New(context.Background(), slog.New(slog.DiscardHandler))
	release := make(chan struct{})
	started := make(chan struct{})
	g.Go("stuck", time.Hour, func(context.Context) error { close(started); <-release; return nil })
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if g.Stop(ctx) {
		t.Error("Stop reported success while a job was stuck")
	}
	close(release)
	if !g.Stop(context.Background()) {
		t.Error("Stop after the job returned")
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
