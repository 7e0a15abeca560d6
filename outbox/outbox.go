// Package outbox delivers case events to webhooks (a staff app, an SMS gateway for
// staff) with retries. Events are written by the case store in the same
// single-document update as the state change they describe (the case document carries
// its undelivered events), so a change and its event are never separated; a relay
// moves them into the events collection, and a deliverer POSTs each to every
// configured webhook until it answers 2xx, backing off between attempts.
//
// Nothing is ever pushed to reporters: a push would identify them. Events carry the
// case number, unit and what happened — never a reporter's identity or contact.
package outbox

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/qingfeng-zj/qingfeng"
)

// Event is one thing that happened to a case.
type Event struct {
	ID   string            `json:"id"`
	Type string            `json:"type"` // case.registered, case.transition, case.transfer, case.rerouted, case.overdue
	Case string            `json:"case"` // case number
	Unit string            `json:"unit"` // the owning unit after the event
	At   time.Time         `json:"at"`
	Data map[string]string `json:"data,omitempty"`
}

// Webhook is a subscriber.
type Webhook struct {
	Name   string
	URL    string
	Secret string // signs each body: X-Qingfeng-Signature: sha256=<hex HMAC>
}

// ParseWebhooks reads "name=https://host/path|secret;name2=…" (the secret optional).
func ParseWebhooks(s string) ([]Webhook, error) {
	var out []Webhook
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, rest, ok := strings.Cut(part, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("webhook %q: want name=url[|secret]", part)
		}
		raw, secret, _ := strings.Cut(rest, "|")
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("webhook %s: %q is not an http(s) URL", name, raw)
		}
		if seen[name] {
			return nil, fmt.Errorf("webhook %s listed twice", name)
		}
		seen[name] = true
		out = append(out, Webhook{Name: name, URL: raw, Secret: secret})
	}
	return out, nil
}

// Delivery is the state of one event for one webhook.
type Delivery struct {
	EventID  string
	Webhook  string
	Attempts int
	Event    Event
}

// Store is what relaying and delivering need of the database.
type Store interface {
	// Relay moves up to limit undelivered events from case documents into the events
	// collection, one delivery per webhook, and returns how many it moved.
	Relay(ctx context.Context, webhooks []string, now time.Time, limit int) (int, error)
	// Due lists deliveries whose next attempt is due.
	Due(ctx context.Context, now time.Time, limit int) ([]Delivery, error)
	// Delivered and Failed record an attempt's result; Failed schedules the next
	// attempt at next, or gives up when next is zero.
	Delivered(ctx context.Context, d Delivery, at time.Time) error
	Failed(ctx context.Context, d Delivery, at, next time.Time, reason string) error
}

// Leases is what the dispatcher needs of the lease store (storage/*'s LeaseStore).
type Leases interface {
	AcquireLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error)
}

// Dispatcher relays and delivers. Several instances may run it: a lease lets one
// work at a time. Delivery is at least once: a webhook dedupes by the event id.
type Dispatcher struct {
	Store       Store
	Leases      Leases
	Webhooks    []Webhook
	Client      *http.Client
	Log         *slog.Logger
	Now         func() time.Time
	MaxAttempts int // then the delivery is given up (default 12)
	holder      string
}

func (d *Dispatcher) now() time.Time {
	if d.Now != nil {
		return d.Now().UTC()
	}
	return time.Now().UTC()
}

// Backoff is the wait after the n-th failed attempt: 30 s doubling, at most an hour.
func Backoff(n int) time.Duration {
	b := 30 * time.Second << min(n-1, 7)
	return min(b, time.Hour)
}

// RunOnce relays pending events and attempts the due deliveries. It returns how many
// deliveries succeeded.
func (d *Dispatcher) RunOnce(ctx context.Context) (int, error) {
	if len(d.Webhooks) == 0 {
		return 0, nil
	}
	if d.holder == "" {
		d.holder = "outbox-" + rand.Text()[:10]
	}
	now := d.now()
	if ok, err := d.Leases.AcquireLease(ctx, "outbox", d.holder, now, now.Add(2*time.Minute)); err != nil || !ok {
		return 0, err
	}
	names := make([]string, len(d.Webhooks))
	hooks := map[string]Webhook{}
	for i, w := range d.Webhooks {
		names[i], hooks[w.Name] = w.Name, w
	}
	for range 50 {
		n, err := d.Store.Relay(ctx, names, now, 200)
		if err != nil {
			return 0, err
		}
		if n < 200 {
			break
		}
	}
	due, err := d.Store.Due(ctx, now, 200)
	if err != nil {
		return 0, err
	}
	ok := 0
	maxAttempts := d.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = 12
	}
	for _, dl := range due {
		w, known := hooks[dl.Webhook]
		if !known {
			continue // a webhook removed from the configuration
		}
		err := d.post(ctx, w, dl.Event)
		at := d.now()
		if err == nil {
			ok++
			if err := d.Store.Delivered(ctx, dl, at); err != nil {
				return ok, err
			}
			continue
		}
		next := at.Add(Backoff(dl.Attempts + 1))
		if dl.Attempts+1 >= maxAttempts {
			next = time.Time{}
		}
		if d.Log != nil {
			d.Log.Warn("webhook delivery failed", "webhook", w.Name, "event", dl.EventID, "attempt", dl.Attempts+1, "err", err, "gave_up", next.IsZero())
		}
		if err := d.Store.Failed(ctx, dl, at, next, err.Error()); err != nil {
			return ok, err
		}
	}
	return ok, nil
}

// wireEvent is an Event as webhooks receive it: its time as every time on the wire is
// written (qingfeng.WireTime, +08:00).
type wireEvent struct {
	ID   string            `json:"id"`
	Type string            `json:"type"`
	Case string            `json:"case"`
	Unit string            `json:"unit"`
	At   string            `json:"at"`
	Data map[string]string `json:"data,omitempty"`
}

func (d *Dispatcher) post(ctx context.Context, w Webhook, e Event) error {
	body, err := json.Marshal(wireEvent{ID: e.ID, Type: e.Type, Case: e.Case, Unit: e.Unit, At: qingfeng.WireTime(e.At), Data: e.Data})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Qingfeng-Event", e.Type)
	req.Header.Set("X-Qingfeng-Delivery", e.ID)
	if w.Secret != "" {
		req.Header.Set("X-Qingfeng-Signature", "sha256="+Sign(w.Secret, body))
	}
	client := d.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// Sign is the hex HMAC-SHA256 of body under secret, as sent in X-Qingfeng-Signature.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}
