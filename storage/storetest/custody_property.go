package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	qfcrypto "github.com/qingfeng-zj/qingfeng/crypto"
	"github.com/qingfeng-zj/qingfeng/custody"
	"github.com/qingfeng-zj/qingfeng/intake"
)

// CustodyProperty is the custody invariant of issue 9, on the real store: over random sequences of custodian additions, revocations,
// transfers and re-seal task completions — stale, repeated and concurrent ones
// included — once every task is done, every open case's identity opens with every
// current custodian key of its jurisdiction (and of its owning unit's), and with no
// revoked key and no retired demo key. It runs the custody services on the real store
// and opens the real ciphertexts; the model below computes the expected recipients
// independently of custody.Reseals.Want.
//
// It runs 200 random sequences (20 with -short), each on the stores fresh returns,
// which must be empty; its parts run one after the other, so that fresh may clear and
// reuse one database. It also checks that the start-up sweep recovers a re-seal
// interrupted between the claim and the replacement.
func CustodyProperty(t *testing.T, fresh func(t *testing.T) CustodyStores) {
	t.Run("Sequences", func(t *testing.T) { testCustodySequences(t, fresh) })
	t.Run("SweepRecoversInterruptedTask", func(t *testing.T) { testResealSweepRecoversInterruptedTask(t, fresh) })
	t.Run("TwoProcesses", func(t *testing.T) { testResealTwoProcesses(t, fresh) })
}

// Two jurisdictions: Yiwu (a county) and Hangzhou (a city: its custodians are bound to
// 330100, prefix 3301, and cover 330102).
var propUnits = map[string]string{"u-yw": "330782", "u-hz": "330100"}

type propKey struct {
	id, identity, recipient, jurisdiction string // jurisdiction is a user's division
	revoked                               bool
}

type propWorld struct {
	t       *testing.T
	rng     *rand.Rand
	keys    *custody.Keys
	reseals *custody.Reseals
	cases   CustodyCaseStore
	users   map[string]*accounts.User
	held    []*propKey // every custodian key ever registered
	demoID  string     // the demo key's private half ("on the server")
	demoRcp string
	caseIDs []string
	// downloads are identities fetched for a task and not yet uploaded: uploading
	// them later is what makes a stale upload.
	downloads []propDownload
}

type propDownload struct {
	task     string
	division string
	sealed   []byte
	resealTo []string
}

func prefixOf(division string) string {
	for _, p := range []string{"3301", "330782"} {
		if strings.HasPrefix(division, p) {
			return p
		}
	}
	return division
}

// current is the model: the active custodians bound to the division's jurisdiction,
// or the demo key where none was ever registered.
func (w *propWorld) current(division string) []string {
	var out []string
	ever := false
	for _, k := range w.held {
		if prefixOf(k.jurisdiction) == prefixOf(division) {
			ever = true
			if !k.revoked {
				out = append(out, k.recipient)
			}
		}
	}
	if !ever {
		return []string{w.demoRcp}
	}
	return out
}

// want is the model's recipient set for a case: its division's custodians and its
// owning unit's (never the demo key for the unit's sake).
func (w *propWorld) want(c *intake.Case) []string {
	out := w.current(c.Location.Division)
	for _, r := range w.current(propUnits[c.UnitID]) {
		if r != w.demoRcp && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

func sameRecipients(a, b []string) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(x string) bool { return !slices.Contains(b, x) })
}

func newPropWorld(t *testing.T, s CustodyStores, rng *rand.Rand) *propWorld {
	ctx := context.Background()
	demoID, demoRcp, err := qfcrypto.GenerateCustodianKey()
	if err != nil {
		t.Fatal(err)
	}
	w := &propWorld{t: t, rng: rng, cases: s.Cases, users: map[string]*accounts.User{}, demoID: demoID, demoRcp: demoRcp}
	store := s.Recipients
	w.keys = &custody.Keys{Store: store, Demo: demoRcp, Sealer: &custody.LiveSealer{}, NewID: intake.NewID,
		User: func(_ context.Context, id string) (*accounts.User, error) { return w.users[id], nil }}
	w.reseals = &custody.Reseals{Store: store, Keys: w.keys, NewID: intake.NewID, Case: w.cases.CaseByID,
		OpenCases: w.cases.OpenCasesWithIdentity, UnitDivision: func(id string) string { return propUnits[id] }}
	w.keys.CustodiansChanged = func(ctx context.Context, j string) error {
		_, err := w.reseals.AfterCustodiansChanged(ctx, j)
		return err
	}
	if err := w.keys.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	// Some jurisdictions start with a real custodian, some on the demo key.
	for _, j := range []string{"330782", "330100"} {
		if rng.IntN(2) == 0 {
			w.addCustodian(j)
		}
	}
	for i, loc := range []struct{ div, unit string }{{"330782", "u-yw"}, {"330782001", "u-yw"}, {"330102", "u-hz"}} {
		sealed, err := w.keys.Sealer.Seal(ctx, loc.div, fmt.Appendf(nil, `{"name":"举报人%d"}`, i))
		if err != nil {
			t.Fatal(err)
		}
		c := &intake.Case{ID: intake.NewID(), Number: fmt.Sprintf("QF-%s-2026-%06d", loc.div[:6], rng.IntN(1e6)), RealName: true,
			Identity: sealed, ReceiptHash: []byte(intake.NewID()), Status: intake.StatusRegistered, UnitID: loc.unit,
			Decision: intake.Decision{UnitID: loc.unit}, Location: intake.Location{Division: loc.div}, ReceivedAt: time.Now().UTC()}
		if err := w.cases.CreateCase(ctx, c); err != nil {
			t.Fatal(err)
		}
		w.caseIDs = append(w.caseIDs, c.ID)
	}
	return w
}

func (w *propWorld) custodianOf(division string) *accounts.User {
	j := "330782"
	if prefixOf(division) == "3301" {
		j = "330100"
	}
	return &accounts.User{ID: "worker-" + j, Role: accounts.RoleCustodian, Division: j}
}

func (w *propWorld) addCustodian(j string) string {
	id, rcp, err := qfcrypto.GenerateCustodianKey()
	if err != nil {
		w.t.Fatal(err)
	}
	u := &accounts.User{ID: intake.NewID(), Role: accounts.RoleCustodian, Division: j}
	w.users[u.ID] = u
	r, err := w.keys.Register(context.Background(), "admin", u.ID, rcp, "")
	if err != nil {
		w.t.Fatalf("register a custodian for %s: %v", j, err)
	}
	w.held = append(w.held, &propKey{id: r.ID, identity: id, recipient: r.Recipient, jurisdiction: j})
	return fmt.Sprintf("add %s", j)
}

func (w *propWorld) revoke() string {
	var active []*propKey
	for _, k := range w.held {
		if !k.revoked {
			active = append(active, k)
		}
	}
	if len(active) == 0 {
		return "revoke: none"
	}
	k := active[w.rng.IntN(len(active))]
	last := len(w.current(k.jurisdiction)) == 1
	_, err := w.keys.Revoke(context.Background(), k.id, "admin")
	switch {
	case last && qingfeng.ErrorCode(err) == qingfeng.ECONFLICT:
		return "revoke last: refused"
	case last || err != nil:
		w.t.Fatalf("revoking a key (last of its jurisdiction: %v): %v", last, err)
	}
	k.revoked = true
	return "revoke " + k.jurisdiction
}

func (w *propWorld) transfer() string {
	ctx := context.Background()
	c, err := w.cases.CaseByID(ctx, w.caseIDs[w.rng.IntN(len(w.caseIDs))])
	if err != nil {
		w.t.Fatal(err)
	}
	to := "u-hz"
	if c.UnitID == "u-hz" {
		to = "u-yw"
	}
	err = w.cases.Hand(ctx, c, intake.Decision{UnitID: to, DecidedAt: time.Now().UTC()}, nil,
		intake.Transition{Action: "transfer", From: c.Status, To: c.Status, By: "staff", At: time.Now().UTC()})
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.reseals.AfterTransfer(ctx, c, propUnits[to]); err != nil {
		w.t.Fatal(err)
	}
	return "transfer to " + to
}

// download fetches a random pending task's identity, to upload now or later.
func (w *propWorld) download() string {
	tasks, err := w.reseals.Store.PendingTasks(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	if len(tasks) == 0 {
		return "download: none"
	}
	t := tasks[w.rng.IntN(len(tasks))]
	got, sealed, err := w.reseals.SealedIdentity(context.Background(), t.ID, w.custodianOf(t.Division))
	if qingfeng.ErrorCode(err) == qingfeng.ECONFLICT {
		return "download: stale"
	}
	if err != nil {
		w.t.Fatal(err)
	}
	w.downloads = append(w.downloads, propDownload{task: got.ID, division: got.Division, sealed: sealed, resealTo: got.ResealTo})
	return "download"
}

// reseal does what qfctl reseal does: open with any key the custodians hold (a revoked
// one too: its holder still helps), seal to the task's recipients.
func (w *propWorld) reseal(d propDownload) []byte {
	var plain []byte
	for _, id := range append([]string{w.demoID}, func() (out []string) {
		for _, k := range w.held {
			out = append(out, k.identity)
		}
		return out
	}()...) {
		if p, err := qfcrypto.Open(id, d.sealed); err == nil {
			plain = p
			break
		}
	}
	if plain == nil {
		w.t.Fatalf("no key ever held opens the identity of task %s: it is lost", d.task)
	}
	s, err := qfcrypto.NewSealer(map[string][]string{qfcrypto.FallbackDivision: d.resealTo})
	if err != nil {
		w.t.Fatal(err)
	}
	out, err := s.Seal(context.Background(), "", plain)
	if err != nil {
		w.t.Fatal(err)
	}
	return out.Ciphertext
}

// upload uploads a download n times at once (n > 1: concurrent retries); at most one
// may succeed, and only if its recipients are the case's current ones.
func (w *propWorld) upload(n int) string {
	if len(w.downloads) == 0 {
		return "upload: none"
	}
	i := w.rng.IntN(len(w.downloads))
	d := w.downloads[i]
	if w.rng.IntN(3) > 0 { // sometimes keep it, to upload again (repeated)
		w.downloads = slices.Delete(w.downloads, i, i+1)
	}
	ct := w.reseal(d)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for j := range n {
		wg.Go(func() {
			_, errs[j] = w.reseals.Complete(context.Background(), d.task, w.custodianOf(d.division), ct)
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case qingfeng.ErrorCode(err) != qingfeng.ECONFLICT:
			w.t.Fatalf("upload of task %s: %v", d.task, err)
		}
	}
	if ok > 1 {
		w.t.Fatalf("task %s completed %d times by concurrent uploads", d.task, ok)
	}
	if ok == 1 {
		t, err := w.reseals.Store.Task(context.Background(), d.task)
		if err != nil {
			w.t.Fatal(err)
		}
		c, err := w.cases.CaseByID(context.Background(), t.CaseID)
		if err != nil {
			w.t.Fatal(err)
		}
		if want := w.want(c); !sameRecipients(d.resealTo, want) {
			w.t.Fatalf("a stale upload was accepted: task %s re-sealed to %d recipients, the case's current set has %d", d.task, len(d.resealTo), len(want))
		}
	}
	return fmt.Sprintf("upload x%d: %d ok", n, ok)
}

// checkOnePending: a case never has two pending tasks (two would mean one is stale).
func (w *propWorld) checkOnePending(log []string) {
	tasks, err := w.reseals.Store.PendingTasks(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, t := range tasks {
		if seen[t.CaseID] {
			w.t.Fatalf("case %s has two pending re-seal tasks after %v", t.Case, log)
		}
		seen[t.CaseID] = true
	}
}

// drain does every pending task, as the custodians eventually do.
func (w *propWorld) drain(log []string) {
	ctx := context.Background()
	for round := 0; ; round++ {
		tasks, err := w.reseals.Store.PendingTasks(ctx)
		if err != nil {
			w.t.Fatal(err)
		}
		if len(tasks) == 0 {
			return
		}
		if round > 5 {
			w.t.Fatalf("re-seal tasks do not converge after %v: %d pending", log, len(tasks))
		}
		for _, t := range tasks {
			u := w.custodianOf(t.Division)
			got, sealed, err := w.reseals.SealedIdentity(ctx, t.ID, u)
			if qingfeng.ErrorCode(err) == qingfeng.ECONFLICT {
				continue
			}
			if err != nil {
				w.t.Fatal(err)
			}
			ct := w.reseal(propDownload{task: got.ID, sealed: sealed, resealTo: got.ResealTo})
			if _, err := w.reseals.Complete(ctx, t.ID, u, ct); err != nil {
				w.t.Fatalf("completing the current task %s after %v: %v", t.ID, log, err)
			}
		}
	}
}

// checkInvariant opens every open case's identity with every key.
func (w *propWorld) checkInvariant(log []string) {
	ctx := context.Background()
	for _, id := range w.caseIDs {
		c, err := w.cases.CaseByID(ctx, id)
		if err != nil {
			w.t.Fatal(err)
		}
		want := w.want(c)
		if !sameRecipients(c.Identity.Recipients, want) {
			w.t.Errorf("case %s records %d recipients, its current set has %d, after %v", c.Number, len(c.Identity.Recipients), len(want), log)
		}
		keys := append([]*propKey{{identity: w.demoID, recipient: w.demoRcp, revoked: !slices.Contains(want, w.demoRcp)}}, w.held...)
		for _, k := range keys {
			_, err := qfcrypto.Open(k.identity, c.Identity.Ciphertext)
			current := slices.Contains(want, k.recipient)
			switch {
			case current && err != nil:
				w.t.Fatalf("case %s (division %s, unit %s): a current custodian key of %s does not open it after %v: %v", c.Number, c.Location.Division, c.UnitID, k.jurisdiction, log, err)
			case !current && err == nil && (k.revoked || k.recipient == w.demoRcp):
				w.t.Fatalf("case %s: a revoked or retired key (%s) still opens it after %v", c.Number, k.jurisdiction, log)
			case !current && err == nil:
				w.t.Fatalf("case %s: a key of another jurisdiction (%s) opens it after %v", c.Number, k.jurisdiction, log)
			}
		}
	}
}

func testCustodySequences(t *testing.T, fresh func(t *testing.T) CustodyStores) {
	sequences := 200
	if testing.Short() {
		sequences = 20
	}
	for seed := range sequences {
		rng := rand.New(rand.NewPCG(uint64(seed), 9))
		w := newPropWorld(t, fresh(t), rng)
		var log []string
		for range 6 + rng.IntN(10) {
			var step string
			switch op := rng.IntN(9); op {
			case 0, 1:
				step = w.addCustodian([]string{"330782", "330100"}[rng.IntN(2)])
			case 2:
				step = w.revoke()
			case 3:
				step = w.transfer()
			case 4, 5:
				step = w.download()
			case 6:
				step = w.upload(1)
			case 7:
				step = w.upload([]int{2, 3, 32}[rng.IntN(3)])
			case 8:
				step = w.download()
				if step == "download" {
					step += ", " + w.upload(1)
				}
			}
			log = append(log, step)
			w.checkOnePending(log)
		}
		// Late, stale uploads of whatever was downloaded and not uploaded.
		for len(w.downloads) > 0 {
			log = append(log, "late "+w.upload(1))
		}
		w.drain(log)
		w.checkInvariant(log)
		if t.Failed() {
			t.Fatalf("seed %d", seed)
		}
	}
}

// testResealSweepRecoversInterruptedTask: a re-seal interrupted after its task was
// claimed and before the identity was replaced (a crash) leaves no pending task; the
// start-up sweep (AfterCustodiansChanged for every division) creates a current one.
func testResealSweepRecoversInterruptedTask(t *testing.T, fresh func(t *testing.T) CustodyStores) {
	ctx := context.Background()
	w := newPropWorld(t, fresh(t), rand.New(rand.NewPCG(1, 2)))
	w.addCustodian("330782")
	tasks, err := w.reseals.Store.PendingTasks(ctx)
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no pending task after adding a custodian: %v", err)
	}
	for _, task := range tasks {
		if err := w.reseals.Store.SetTaskStatus(ctx, task.ID, custody.TaskPending, custody.TaskDone, "crashed", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	n, err := w.reseals.AfterCustodiansChanged(ctx, "")
	if err != nil || n != len(tasks) {
		t.Fatalf("the sweep created %d tasks (%v), want %d", n, err, len(tasks))
	}
	if n, _ := w.reseals.AfterCustodiansChanged(ctx, ""); n != 0 {
		t.Errorf("a second sweep created %d more tasks", n)
	}
	w.drain(nil)
	w.checkInvariant(nil)
}

// testResealTwoProcesses: two server processes on one store (each with its own
// custody.Reseals, so its own lock) sweep at the same moment, as two instances
// starting together do, both reading a case's tasks before either writes: every case
// needing a task ends with exactly one pending task (not one per process), and doing
// it leaves none.
func testResealTwoProcesses(t *testing.T, fresh func(t *testing.T) CustodyStores) {
	ctx := context.Background()
	for round := range 3 {
		w := newPropWorld(t, fresh(t), rand.New(rand.NewPCG(uint64(round), 3)))
		w.addCustodian("330782")
		w.addCustodian("330100")
		tasks, err := w.reseals.Store.PendingTasks(ctx)
		if err != nil || len(tasks) == 0 {
			t.Fatalf("no pending task after adding custodians: %v", err)
		}
		// The tasks lost (claimed, then a crash): every case needs a new one.
		for _, task := range tasks {
			if err := w.reseals.Store.SetTaskStatus(ctx, task.ID, custody.TaskPending, custody.TaskDone, "crashed", time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		// Both processes read a case's pending tasks before either writes (the
		// interleaving a lock in one process cannot prevent), through the real store.
		b := &readBarrier{arrived: map[string]int{}}
		b.cond = sync.NewCond(&b.mu)
		store := w.reseals.Store
		w.reseals.Store = barrierStore{store, b}
		other := &custody.Reseals{Store: barrierStore{store, b}, Keys: w.keys, NewID: intake.NewID, Case: w.cases.CaseByID,
			OpenCases: w.cases.OpenCasesWithIdentity, UnitDivision: w.reseals.UnitDivision}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, p := range []*custody.Reseals{w.reseals, other} {
			wg.Go(func() {
				<-start
				if _, err := p.AfterCustodiansChanged(ctx, ""); err != nil {
					t.Errorf("sweep %d: %v", i, err)
				}
			})
		}
		close(start)
		wg.Wait()
		w.reseals.Store = store
		w.checkOnePending([]string{fmt.Sprintf("round %d: two processes sweeping at once", round)})
		pending, err := w.reseals.Store.PendingTasks(ctx)
		if err != nil || len(pending) != len(w.caseIDs) {
			t.Fatalf("%d pending tasks for %d cases (%v)", len(pending), len(w.caseIDs), err)
		}
		w.drain(nil)
		w.checkInvariant(nil)
	}
}

// readBarrier holds each reader of a case's pending tasks until two have read them (or
// a second has passed): the reads of two processes then both come before their writes.
type readBarrier struct {
	mu      sync.Mutex
	cond    *sync.Cond
	arrived map[string]int
}

func (b *readBarrier) wait(caseID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.arrived[caseID]++
	b.cond.Broadcast()
	deadline := time.Now().Add(time.Second)
	for b.arrived[caseID] < 2 && time.Now().Before(deadline) {
		go func() { time.Sleep(10 * time.Millisecond); b.cond.Broadcast() }()
		b.cond.Wait()
	}
}

// barrierStore is the real store with a readBarrier after each PendingCaseTasks.
type barrierStore struct {
	custody.ResealStore
	b *readBarrier
}

func (s barrierStore) PendingCaseTasks(ctx context.Context, caseID string) ([]custody.ResealTask, error) {
	ts, err := s.ResealStore.PendingCaseTasks(ctx, caseID)
	s.b.wait(caseID)
	return ts, err
}
