// Package loop runs the server's background jobs (escalation, the outbox relay,
// donation warnings, retention, the orphan sweeper, routing refresh, expiry purges):
// each a function called at once and then every interval, in a Group that stops them
// all and waits until every one has returned. It exists so that shutdown can close
// the database only after the last job is done with it, and so that the ticking is
// written once.
//
// It must not know what the jobs do: they are plain functions of a context.
package loop

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Group is a set of background jobs sharing one lifetime. The zero Group is not
// usable; use New.
type Group struct {
	ctx    context.Context
	cancel context.CancelFunc
	log    *slog.Logger
	wg     sync.WaitGroup
}

// New returns a Group whose jobs run until Stop (or until parent is done). Job
// errors are logged to log under the job's name.
func New(parent context.Context, log *slog.Logger) *Group {
	ctx, cancel := context.WithCancel(parent)
	return &Group{ctx: ctx, cancel: cancel, log: log}
}

// Go starts job name: fn runs at once, then every interval after the previous run
// ended, until the Group stops. An error fn returns is logged, unless the Group is
// stopping (a cancelled run is not a failure). fn must return promptly once its
// context is done.
func (g *Group) Go(name string, interval time.Duration, fn func(ctx context.Context) error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if err := fn(g.ctx); err != nil && g.ctx.Err() == nil {
				g.log.Error("background job failed", "job", name, "err", err)
			}
			select {
			case <-g.ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// Stop cancels every job and waits until all have returned, or until ctx is done;
// it reports false if some job was still running then.
func (g *Group) Stop(ctx context.Context) bool {
	g.cancel()
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}
