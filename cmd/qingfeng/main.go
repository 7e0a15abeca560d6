// Command qingfeng is the Qingfeng intake server.
//
//	qingfeng            run the server (configuration from the environment; see README)
//	qingfeng useradd    create an account (the first admin) in the configured database
//	qingfeng retention  purge cases closed longer ago than QF_RETENTION
//	qingfeng calendar   add a year's holiday calendar (holiday-cn JSON) to the database
//	qingfeng import     import social organizations (CSV, JSON) or supervisory units (JSON)
//	qingfeng audit      verify the audit log's hash chain (qingfeng audit verify)
//	qingfeng migrate    copy everything between a data directory and MongoDB, verified
//	qingfeng backup     write one archive of the embedded default (while it runs)
//	qingfeng restore    restore such an archive into a new data directory
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/audit"
	qfcrypto "github.com/qingfeng-zj/qingfeng/crypto"
	"github.com/qingfeng-zj/qingfeng/custody"
	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/handlers"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/internal/loop"
	"github.com/qingfeng-zj/qingfeng/outbox"
	"github.com/qingfeng-zj/qingfeng/pow"
	"github.com/qingfeng-zj/qingfeng/retention"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/storage/blob"
	"github.com/qingfeng-zj/qingfeng/storage/embedded"
	"github.com/qingfeng-zj/qingfeng/storage/mongo"
	"github.com/qingfeng-zj/qingfeng/storage/sqlite"
	"github.com/qingfeng-zj/qingfeng/triage"
)

func main() {
	cfg, err := ConfigFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "qingfeng: configuration:", err)
		os.Exit(2)
	}
	log := newLogger(cfg, os.Stderr)
	if len(os.Args) > 1 && os.Args[1] == "useradd" {
		os.Exit(userAdd(cfg, log, os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "retention" {
		os.Exit(retentionCommand(cfg, log, os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "calendar" {
		os.Exit(calendarCommand(cfg, log, os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "import" {
		os.Exit(runImport(cfg, log, os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "audit" {
		os.Exit(runAudit(cfg, log, os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "migrate" {
		os.Exit(runMigrate(cfg, log, os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "backup" {
		os.Exit(runBackup(cfg, log, os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "restore" {
		os.Exit(runRestore(cfg, log, os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 {
		fmt.Fprintf(os.Stderr, "qingfeng: unknown command %q (commands: useradd, import, audit, calendar, retention, migrate, backup, restore)\n", os.Args[1])
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := &Main{Config: cfg, Log: log, Stderr: os.Stderr}
	if err := m.Run(ctx); err != nil {
		log.Error("start failed", "err", err)
		_ = m.Close()
		os.Exit(1)
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down: draining in-flight requests", "timeout", cfg.ShutdownTimeout.String())
	case err := <-m.serveErr:
		log.Error("server stopped", "err", err)
	}
	if err := m.Close(); err != nil {
		log.Error("shutdown", "err", err)
		os.Exit(1)
	}
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// Main is the running server: its backends, services and listener.
type Main struct {
	Config Config
	Log    *slog.Logger
	Stderr io.Writer // where a bootstrap credential is printed, once

	emb         *embedded.Servers
	st          *stores
	blobs       *blob.Store
	s3          blob.Config // the object store in use, embedded or configured
	server      *handlers.Server
	ln          net.Listener
	serveErr    chan error
	Intake      *intake.Service
	Accounts    *accounts.Service
	Audit       *audit.Log
	pow         *pow.Guard
	backoff     *accounts.Backoff
	engine      *routing.Engine
	escalator   *triage.Escalator
	ledger      *donations.Ledger
	calendar    calendarAdmin
	keys        *custody.Keys
	disclosures *custody.Disclosures
	reseals     *custody.Reseals
	routing     *routing.Admin

	jobs    *loop.Group
	sweeper *retention.Sweeper
}

// s3Config is the configured S3 store (S3_*); its Endpoint is empty on the embedded
// default.
func (c Config) s3Config() blob.Config {
	return blob.Config{Endpoint: c.S3Endpoint, AccessKey: c.S3AccessKey, SecretKey: c.S3SecretKey,
		Bucket: c.S3Bucket, Region: c.S3Region, UseSSL: c.S3UseSSL}
}

// backends opens the database and object store: the configured ones, or the embedded
// default under the data directory (storage/sqlite's database file, and an in-process
// S3 server).
func (m *Main) backends(ctx context.Context) error {
	c := m.Config
	s3 := c.s3Config()
	if s3.Endpoint == "" {
		if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
			return fmt.Errorf("QF_DATA_DIR: %w", err)
		}
		emb, err := embedded.StartS3(ctx, c.DataDir, m.Log)
		if err != nil {
			return fmt.Errorf("start the embedded object store: %w", err)
		}
		m.emb = emb
		s3 = blob.Config{Endpoint: emb.S3Endpoint(), AccessKey: emb.S3AccessKey(), SecretKey: emb.S3SecretKey(), Bucket: c.S3Bucket}
	}
	if err := m.openDatabase(ctx); err != nil {
		return err
	}
	var err error
	if m.blobs, err = blob.Open(ctx, s3); err != nil {
		return fmt.Errorf("open object store: %w", err)
	}
	m.s3 = s3
	m.Log.Info("backends ready",
		"database", backendName(c.MongoURI == "", "embedded SQLite "+filepath.Join(c.DataDir, sqlite.FileName), "MongoDB"),
		"object_store", backendName(c.S3Endpoint == "", "embedded S3 (gofakes3) in "+filepath.Join(c.DataDir, "s3"), "S3 at "+c.S3Endpoint))
	return nil
}

// openDatabase opens the configured MongoDB, or the embedded default's SQLite file
// under the data directory (refusing a data directory an earlier release wrote with
// FerretDB until it is migrated), and sets m.st.
func (m *Main) openDatabase(ctx context.Context) error {
	c := m.Config
	if c.MongoURI != "" {
		db, err := mongo.Open(ctx, c.MongoURI, c.MongoDatabase)
		if err != nil {
			return fmt.Errorf("open database: %w", err)
		}
		if err := db.EnsureIndexes(ctx); err != nil {
			_ = db.Close(ctx)
			return fmt.Errorf("ensure indexes: %w", err)
		}
		m.st = mongoStores(db)
		return nil
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("QF_DATA_DIR: %w", err)
	}
	if err := refuseFerretDBDir(c.DataDir); err != nil {
		return err
	}
	db, err := sqlite.Open(ctx, filepath.Join(c.DataDir, sqlite.FileName), m.Log)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	m.st = sqliteStores(db)
	return nil
}

func backendName(embedded bool, emb, real string) string {
	if embedded {
		return emb
	}
	return real
}

// demoKeyFile is where the zero-config default keeps its demo custodian key.
func demoKeyFile(c Config) string { return filepath.Join(c.DataDir, "demo-custodian-key.txt") }

// refuseDemoKey stops a server on a real database that would find a demo custodian
// key in its data directory: that key's private half is on the server, so anything
// sealed to it is readable by whoever can read the disk.
func refuseDemoKey(c Config) error {
	if c.MongoURI == "" {
		return nil
	}
	path := demoKeyFile(c)
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("MONGODB_URI is set but the demo custodian key %s exists (QF_DATA_DIR): a key whose private half sits on the server must never seal real identities; "+
			"register real custodians (qfctl keys new; QF_CUSTODIAN_RECIPIENTS), re-seal what the demo key sealed, then delete the file", path)
	}
	return nil
}

// secrets loads or generates the signing key, receipt pepper and custodian
// recipients; demo is the demo custodian's recipient on the zero-config default.
func (m *Main) secrets() (key []byte, pepper *qfcrypto.Pepper, custodians map[string][]string, demo string, err error) {
	c := m.Config
	signing, err := func() ([]byte, error) {
		if c.SigningKeyPEM != "" {
			k, err := qfcrypto.ParseSigningKey([]byte(c.SigningKeyPEM))
			if err != nil {
				return nil, fmt.Errorf("QF_JWT_SIGNING_KEY: %w", err)
			}
			return k, nil
		}
		path := filepath.Join(c.DataDir, "jwt-ed25519.pem")
		m.Log.Warn("QF_JWT_SIGNING_KEY not set: using a key generated in the data directory (one instance only)", "path", path)
		return qfcrypto.LoadOrCreateSigningKey(path)
	}()
	if err != nil {
		return nil, nil, nil, "", err
	}
	if c.ReceiptPepper != "" {
		if pepper, err = qfcrypto.ParsePepper(c.ReceiptPepper); err != nil {
			return nil, nil, nil, "", fmt.Errorf("QF_RECEIPT_PEPPER: %w", err)
		}
	} else {
		path := filepath.Join(c.DataDir, "receipt-pepper")
		m.Log.Warn("QF_RECEIPT_PEPPER not set: using a pepper generated in the data directory; keep it apart from database backups in production", "path", path)
		if pepper, err = qfcrypto.LoadOrCreatePepper(path); err != nil {
			return nil, nil, nil, "", err
		}
	}
	if c.Custodians != "" {
		custodians, err = parseCustodians(c.Custodians)
		return signing, pepper, custodians, "", err
	}
	// Zero-config only (Config.validate refuses a real database without custodians and
	// refuseDemoKey a real one beside a demo key): a demo custodian whose private key
	// sits beside the data, so the walk-through works. It is not a custodian: it is
	// sealed to only where no real custodian was ever registered (custody.Keys.Demo).
	keyPath := demoKeyFile(c)
	recipient, err := demoCustodian(keyPath)
	if err != nil {
		return nil, nil, nil, "", err
	}
	return signing, pepper, nil, recipient, nil
}

func demoCustodian(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if r, ok := strings.CutPrefix(line, "# public key: "); ok {
				return strings.TrimSpace(r), nil
			}
		}
		return "", fmt.Errorf("%s: no public key line", path)
	}
	identity, recipient, err := qfcrypto.GenerateCustodianKey()
	if err != nil {
		return "", err
	}
	content := fmt.Sprintf("# DEMO custodian key generated by qingfeng for the zero-config default.\n# public key: %s\n%s\n", recipient, identity)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return "", err
	}
	return recipient, nil
}

// Open starts the backends and builds the services, without listening.
func (m *Main) Open(ctx context.Context) error {
	if err := refuseDemoKey(m.Config); err != nil {
		return err
	}
	if err := m.backends(ctx); err != nil {
		return err
	}
	key, pepper, custodians, demo, err := m.secrets()
	if err != nil {
		return err
	}
	if _, err := qfcrypto.NewSealer(custodians); err != nil {
		return fmt.Errorf("QF_CUSTODIAN_RECIPIENTS: %w", err)
	}
	// The configured custodians, plus those registered through the API; reloaded
	// whenever a recipient is registered or revoked.
	sealer := &custody.LiveSealer{}
	recipients := m.st.recipients
	m.keys = &custody.Keys{Store: recipients, Configured: custodians, Demo: demo, Sealer: sealer, NewID: intake.NewID,
		User: func(ctx context.Context, id string) (*accounts.User, error) {
			return m.st.users.UserByID(ctx, id)
		}}
	if err := m.keys.Reload(ctx); err != nil {
		return err
	}
	if use, ok := m.keys.DemoUse(); ok {
		codes := make([]string, 0, len(use.Divisions))
		for _, d := range use.Divisions {
			codes = append(codes, d.Code)
		}
		m.Log.Warn("DEMO custodian key in use: identities reported in these divisions are sealed to a key whose private half is in the data directory; "+
			"register a real custodian for each (it retires the demo key there and creates re-seal tasks); never use this for real reports",
			"key", demoKeyFile(m.Config), "divisions", len(codes), "codes", strings.Join(codes, ","))
	}
	m.disclosures = &custody.Disclosures{Store: recipients, Keys: m.keys, NewID: intake.NewID, TTL: m.Config.DisclosureTTL, UnitDivision: func(id string) string {
		u, _ := m.engine.Units.Get(id)
		return u.Division
	}}
	cases := m.st.cases
	m.reseals = &custody.Reseals{Store: recipients, Keys: m.keys, NewID: intake.NewID, Case: cases.CaseByID,
		OpenCases: cases.OpenCasesWithIdentity, UnitDivision: func(id string) string {
			u, _ := m.engine.Units.Get(id)
			return u.Division
		}}
	m.keys.CustodiansChanged = func(ctx context.Context, jurisdiction string) error {
		_, err := m.reseals.AfterCustodiansChanged(ctx, jurisdiction)
		return err
	}
	signer, err := qfcrypto.NewTokenSigner(key, nil)
	if err != nil {
		return err
	}
	cal, err := triage.NewCalendar()
	if err != nil {
		return err
	}
	m.calendar = calendarAdmin{cal: cal, store: m.st.calendar}
	if err := loadCalendarYears(ctx, m.calendar.store, cal); err != nil {
		return err
	}
	cfg := intake.DefaultConfig
	cfg.MaxFileBytes, cfg.MaxCaseBytes, cfg.KeepOriginals = m.Config.MaxFileBytes, m.Config.MaxCaseBytes, m.Config.KeepOriginals
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := m.openRouting(ctx, reg); err != nil {
		return err
	}
	orphans := prometheus.NewCounter(prometheus.CounterOpts{Name: "qingfeng_orphan_objects_deleted_total",
		Help: "Evidence objects deleted because no case or ledger photo referred to them (uploads cut off by a crash)."})
	reg.MustRegister(orphans)
	m.sweeper = &retention.Sweeper{Objects: m.blobs, Referenced: m.st.referenced, Lease: m.st.leases.AcquireLease,
		Grace: m.Config.OrphanGrace, Deleted: orphans, Log: m.Log}
	m.Intake = &intake.Service{Cases: cases, Blobs: m.blobs, Sealer: sealer, Router: m.engine,
		Calendar: cal, Receipts: qfcrypto.Receipts{Pepper: pepper}, Ref: routing.Reference{}, Config: cfg, Log: m.Log,
		DeadlineDays: m.engine.Units.DeadlineDays}
	m.escalator = &triage.Escalator{Store: cases, Leases: m.st.leases, Log: m.Log, Parent: func(unit string) string {
		if u, ok := m.engine.Units.Get(unit); ok && u.Parent != "" {
			return u.Parent
		}
		return unit
	}}
	m.Accounts = &accounts.Service{Users: m.st.users, Tokens: signer, Passwords: qfcrypto.Passwords{},
		RefreshHash: pepper.HashRefreshToken, RefreshNext: pepper.NextRefreshToken, SecretHash: pepper.KeyedHash,
		Secrets: qfcrypto.TOTPSecrets{Pepper: pepper}, Require2FA: m.Config.Require2FA,
		AccessTTL: m.Config.AccessTokenTTL, RefreshTTL: m.Config.RefreshTokenTTL, Log: m.Log, NewID: intake.NewID}

	// Challenges and device cookies are keyed by the pepper, which every instance shares,
	// so any instance verifies what another issued.
	powCfg := pow.DefaultConfig
	powCfg.Levels = pow.Table(m.Config.PoWNormalRate)
	if m.pow, err = pow.New([]byte(pepper.KeyedHash("qingfeng/pow-challenge/v1")), powCfg); err != nil {
		return err
	}
	m.backoff = &accounts.Backoff{Key: []byte(pepper.KeyedHash("qingfeng/device-cookie/v1"))}
	tri := &triage.Service{Cases: cases, Calendar: cal, Log: m.Log, DeadlineDays: m.engine.Units.DeadlineDays}
	m.Audit = &audit.Log{Store: m.st.audit}
	m.ledger = m.donationLedger()
	m.Intake.Audit = m.Audit
	m.server = handlers.New(handlers.Deps{
		Intake: m.Intake, Accounts: m.Accounts, Tokens: signer,
		PoW: m.pow, Backoff: m.backoff,
		Ready: func(ctx context.Context) error {
			if err := m.st.ping(ctx); err != nil {
				return fmt.Errorf("database: %w", err)
			}
			if err := m.blobs.Probe(ctx); err != nil {
				return fmt.Errorf("object store: %w", err)
			}
			return nil
		},
		UnitName: func(id string) (string, bool) {
			u, ok := m.engine.Units.Get(id)
			return u.Name, ok
		},
		Routing: m.routing,
		Triage:  tri,
		Transfers: &triage.Transfers{Service: tri, Store: cases, Unit: func(id string) (triage.UnitInfo, bool) {
			u, ok := m.engine.Units.Get(id)
			return triage.UnitInfo{ID: u.ID, Name: u.Name, Parent: u.Parent, Division: u.Division, Active: u.Active}, ok
		},
			AfterHand: func(ctx context.Context, c *intake.Case, to triage.UnitInfo) error {
				return m.reseals.AfterTransfer(ctx, c, to.Division)
			}},
		Counts: cases.CountByStatus, CountNewActivity: cases.CountNewActivity,
		Notifications: cases.Notifications,
		Stats:         cases,
		Calendar:      m.calendar,
		Audit:         m.Audit,
		Keys:          m.keys,
		Disclosures:   m.disclosures,
		Reseals:       m.reseals,
		Ledger:        m.ledger,
		Orgs:          m.engine.Orgs.Get,
		ValidDivision: func(code string) bool { _, ok := routing.LookupDivision(code); return ok },
		Log:           m.Log, Registry: reg, FollowUpTTL: m.Config.FollowUpTTL, MaxUploadBody: m.Config.MaxUploadBytes, MaxImportBody: m.Config.MaxImportBytes,
		PublicURL: m.Config.PublicURL, FormKey: []byte(pepper.KeyedHash("qingfeng/web-form/v1")),
	})
	// Every start reconciles every open case with its current recipients: custodians
	// configured differently since the last start, or a re-seal interrupted between
	// claiming its task and replacing the identity, get a (current) task.
	if n, err := m.reseals.AfterCustodiansChanged(ctx, ""); err != nil {
		return fmt.Errorf("reconcile re-seal tasks: %w", err)
	} else if n > 0 {
		m.Log.Warn("identities not sealed to their current custodians: re-seal tasks created", "tasks", n)
	}
	return m.bootstrap(ctx)
}

// bootstrap creates a first admin with a random password on an empty embedded
// database and prints the credential once. With a real database, use `qingfeng useradd`.
func (m *Main) bootstrap(ctx context.Context) error {
	if m.Config.MongoURI != "" {
		return nil
	}
	n, err := m.st.users.CountUsers(ctx)
	if err != nil || n > 0 {
		return err
	}
	pw := randomPassword()
	u, err := m.Accounts.CreateUser(ctx, accounts.NewUser{Username: "admin", DisplayName: "系统管理员", Password: pw, Role: accounts.RoleAdmin, MustChangePassword: true},
		func(string) bool { return false }, func(string) bool { return false })
	if err != nil {
		return fmt.Errorf("bootstrap admin: %w", err)
	}
	m.Log.Warn("created the first admin account; its one-time password is printed on stderr and must be changed at first login", "user", u.ID)
	if m.Stderr != nil {
		fmt.Fprintf(m.Stderr, "\n  首次启动：已创建管理员账号 / first start: admin account created\n  username: admin\n  password: %s\n  (一次性密码，首次登录须修改 / one-time: must be changed at first login; not stored in plaintext)\n\n", pw)
	}
	return nil
}

// Run opens everything and starts serving; it returns once the listener is up.
func (m *Main) Run(ctx context.Context) error {
	if err := m.Open(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", m.Config.Addr)
	if err != nil {
		return fmt.Errorf("QF_ADDR: %w", err)
	}
	m.ln = ln
	m.serveErr = make(chan error, 1)
	go func() {
		err := m.server.App.Listener(ln, fiberListenConfig())
		if err != nil && !errors.Is(err, net.ErrClosed) {
			m.serveErr <- err
		}
	}()
	m.Log.Info("listening", "addr", ln.Addr().String())
	m.startJobs()
	return nil
}

// startJobs starts the background jobs in one loop.Group, which Close stops and
// waits for before it closes the database.
func (m *Main) startJobs() {
	m.jobs = loop.New(context.Background(), m.Log)
	// The embedded database has no TTL indexes, and expired receipts (sealed)
	// should not linger.
	m.jobs.Go("purge expired records", time.Hour, func(ctx context.Context) error {
		n, err := m.st.purgeExpired(ctx)
		if n > 0 {
			m.Log.Info("purged expired records", "count", n)
		}
		return err
	})
	m.jobs.Go("refresh routing", 15*time.Second, m.refreshRouting())
	m.jobs.Go("escalate overdue steps", time.Minute, discardCount(m.escalator.RunOnce))
	// Each run of the alert job releases its lease when it ends, so a restarted or
	// other instance takes over at its next tick.
	m.jobs.Go("donation alerts", 10*time.Minute, discardCount(m.ledger.RunAlerts))
	if m.Config.RetentionPeriod > 0 {
		purger := &retention.Purger{Cases: m.st.cases, Leases: m.st.leases, Blobs: m.blobs, Audit: m.Audit,
			Period: m.Config.RetentionPeriod, Log: m.Log}
		m.jobs.Go("retention", time.Hour, func(ctx context.Context) error {
			if _, err := purger.RunOnce(ctx); !errors.Is(err, retention.ErrLeaseHeld) {
				return err
			}
			return nil
		})
	}
	m.jobs.Go("orphan sweep", time.Hour, func(ctx context.Context) error {
		if _, err := m.sweeper.SweepOnce(ctx); !errors.Is(err, retention.ErrLeaseHeld) {
			return err
		}
		return nil
	})
	if len(m.Config.Webhooks) > 0 {
		relay := &outbox.Dispatcher{Store: m.st.outbox, Leases: m.st.leases, Webhooks: m.Config.Webhooks, Log: m.Log}
		m.jobs.Go("outbox relay", 10*time.Second, discardCount(relay.RunOnce))
	}
}

func discardCount(run func(context.Context) (int, error)) func(context.Context) error {
	return func(ctx context.Context) error { _, err := run(ctx); return err }
}

// Addr is the address the server listens on (useful with QF_ADDR=:0).
func (m *Main) Addr() string { return m.ln.Addr().String() }

// Close shuts down in order: it stops accepting requests and drains those in flight
// (up to the shutdown timeout), stops the background jobs and waits for each to
// return (up to the same timeout again), and only then closes the database and the
// embedded servers, so that nothing still running meets a closed client.
func (m *Main) Close() error {
	var errs []error
	if m.server != nil && m.ln != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
		errs = append(errs, m.server.App.ShutdownWithContext(ctx))
		cancel()
	}
	if m.jobs != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
		if !m.jobs.Stop(ctx) {
			errs = append(errs, errors.New("background jobs still running after QF_SHUTDOWN_TIMEOUT"))
		}
		cancel()
	}
	if m.st != nil {
		errs = append(errs, m.st.close())
	}
	if m.emb != nil {
		errs = append(errs, m.emb.Close())
	}
	return errors.Join(errs...)
}

var (
	_ accounts.Passwords = qfcrypto.Passwords{}
	_ intake.Receipts    = qfcrypto.Receipts{}
)
