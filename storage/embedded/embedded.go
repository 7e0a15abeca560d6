// Package embedded runs in-process servers under one data directory, listening on
// loopback only: an S3 server (gofakes3 on the local file system), which the
// zero-config default keeps its evidence objects in (StartS3), and a MongoDB-compatible
// server (FerretDB v1.24 on SQLite, Start), which the default used to keep its
// database in. FerretDB now serves two purposes only: storage/mongo's tests, which need
// a MongoDB-wire server and there is none on these machines, and reading a data
// directory an earlier release wrote, to migrate it (qingfeng migrate). The zero-config
// database itself is storage/sqlite's file (FerretDB decodes every document in Go for
// any filter but an _id equality, issue 12).
//
// The point of the S3 server is that a single binary with no configuration works while
// the evidence still goes through the same S3 client code that production uses against
// MinIO. This package therefore only starts and stops servers; it must not grow a
// storage API of its own.
//
// What is laid out under the data directory:
//
//	<dir>/lock        held (flock) while servers run: one server per directory
//	<dir>/ferretdb/   FerretDB's SQLite files, one per database (Start only)
//	<dir>/s3/         buckets/<bucket>/<key> and metadata/
//
// Neither server authenticates: anything that can reach 127.0.0.1 on the machine can
// read the data, exactly as it can read the data directory. The S3 side refuses
// browser requests (see guard) so a web page cannot reach evidence through the user's
// browser.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
	"github.com/spf13/afero"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
)

// ErrDirInUse is the data directory locked by another process: a running server (or
// another command) holds its embedded database.
var ErrDirInUse = errors.New("the data directory is in use")

// Local S3 credentials. gofakes3 does not verify signatures; the client still has to
// sign with these (guard checks the access key), so a misconfigured client fails here
// the same way it would against MinIO instead of only in production.
const (
	accessKey = "qingfeng-embedded"
	secretKey = "qingfeng-embedded-not-a-secret"
)

// Timeouts. startTimeout bounds how long Start waits for FerretDB to answer a ping when
// the caller's context has no deadline; opening SQLite files is quick, so a server that
// does not answer within it is broken, not slow.
const (
	startTimeout    = 30 * time.Second
	shutdownTimeout = 10 * time.Second
)

// newFerretDBMu serializes ferretdb.New: it writes package-level state
// (version.Get().Package) without synchronization, which races when two Starts run
// at once (parallel tests).
var newFerretDBMu sync.Mutex

// testHookFerretDBStarted lets a test see FerretDB's address when Start fails later.
var testHookFerretDBStarted func(uri string)

// Servers is a running pair of embedded servers. Close stops both.
type Servers struct {
	mongoURI string
	s3Addr   string

	stopFerret context.CancelFunc
	ferretDone chan struct{}

	s3Server *http.Server
	s3Done   chan error

	unlockDir func() error

	closeOnce sync.Once
	closeErr  error
}

// Start starts FerretDB and the S3 server storing under dir (created with mode 0700 if
// missing) and returns once FerretDB answers a ping. ctx bounds start-up only; the
// servers run until Close. logger receives both servers' warnings and errors (their
// info-level chatter is dropped); nil means slog.Default().
//
// If Start returns an error, nothing it started is left running.
func Start(ctx context.Context, dir string, logger *slog.Logger) (*Servers, error) {
	return start(ctx, dir, logger, true)
}

// StartS3 starts only the S3 server storing under dir/s3, holding dir's lock as Start
// does: the embedded default keeps its database in storage/sqlite's file beside it.
func StartS3(ctx context.Context, dir string, logger *slog.Logger) (*Servers, error) {
	return start(ctx, dir, logger, false)
}

func start(ctx context.Context, dir string, logger *slog.Logger, withFerretDB bool) (*Servers, error) {
	if logger == nil {
		logger = slog.Default()
	}
	logger = slog.New(minLevelHandler{logger.Handler(), slog.LevelWarn})

	if dir == "" {
		return nil, errors.New("embedded: empty data directory")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded: data directory: %w", err)
	}
	// FerretDB receives the directory inside an SQLite URI that it does not escape;
	// these characters would be read as URI syntax and point SQLite somewhere else.
	if strings.ContainsAny(dir, "?#%") {
		return nil, fmt.Errorf("embedded: data directory %q must not contain '?', '#' or '%%'", dir)
	}
	ferretDir := filepath.Join(dir, "ferretdb")
	s3Dir := filepath.Join(dir, "s3")
	dirs := []string{dir, s3Dir}
	if withFerretDB {
		dirs = append(dirs, ferretDir)
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("embedded: create %s: %w", d, err)
		}
	}

	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Servers{unlockDir: unlock}
	ferretLogger := slog.New(ferretLogHandler{logger.Handler()}).With("component", "ferretdb")
	if withFerretDB {
		if err := s.startFerretDB(ctx, ferretDir, ferretLogger); err != nil {
			_ = s.Close() // Close stops whatever a half-built Servers started
			return nil, err
		}
	}
	if err := s.startS3(s3Dir, logger.With("component", "s3")); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// ObjectFS is the objects of bucket under data directory dir as files, read without
// the S3 server and without dir's lock: how `qingfeng backup` reads the objects of a
// running server. The S3 server writes an object in place, so a file being uploaded
// can be read half-written; only objects a stored record refers to (written before
// the record) are whole.
func ObjectFS(dir, bucket string) fs.FS {
	return os.DirFS(filepath.Join(dir, "s3", "buckets", bucket))
}

// SQLitePragmas are the SQLite settings of the embedded database.
const SQLitePragmas = "_pragma=secure_delete(1)&_pragma=wal_autocheckpoint(1)&_pragma=journal_size_limit(0)"

func (s *Servers) startFerretDB(ctx context.Context, dir string, logger *slog.Logger) error {
	newFerretDBMu.Lock()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Logger:   logger,
		Handler:  "sqlite",
		// secure_delete overwrites deleted content, and checkpointing after every write
		// with a truncated journal keeps purged values (crypto-shredded identities,
		// anonymised cases) from lingering in the write-ahead log. Each write costs a
		// checkpoint; the embedded default trades that for what a disk copy can reveal.
		SQLiteURL: "file:" + filepath.ToSlash(dir) + "/?" + SQLitePragmas,
	})
	newFerretDBMu.Unlock()
	if err != nil {
		return fmt.Errorf("embedded: start FerretDB in %s: %w", dir, err)
	}

	// The listener is bound by New; Run starts accepting and, when its context is
	// cancelled, closes all connections and the SQLite backend before returning.
	runCtx, cancel := context.WithCancel(context.Background())
	s.stopFerret = cancel
	s.ferretDone = make(chan struct{})
	go func() {
		defer close(s.ferretDone)
		if err := f.Run(runCtx); err != nil {
			logger.Error("FerretDB stopped", "err", err)
		}
	}()
	// MongoDBURI would block forever without a TCP listener; we always configure one.
	// FerretDB accepts a transaction number but does not deduplicate by it, so a write
	// the driver retried after a network error could be applied twice ($inc included).
	// Over loopback such errors essentially mean shutdown; we prefer the error.
	s.mongoURI = f.MongoDBURI() + "?retryWrites=false"
	if testHookFerretDBStarted != nil {
		testHookFerretDBStarted(s.mongoURI)
	}

	return s.waitFerretDB(ctx)
}

// waitFerretDB pings through the driver: a TCP connect alone would succeed against
// the kernel's backlog before FerretDB has opened its backend.
func (s *Servers) waitFerretDB(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, startTimeout)
		defer cancel()
	}
	client, err := mongodrv.Connect(options.Client().ApplyURI(s.mongoURI).
		SetDirect(true).
		SetServerSelectionTimeout(startTimeout))
	if err != nil {
		return fmt.Errorf("embedded: connect to FerretDB at %s: %w", s.mongoURI, err)
	}
	defer client.Disconnect(context.Background()) //nolint:errcheck // readiness probe only

	pingErr := make(chan error, 1)
	go func() { pingErr <- client.Ping(ctx, readpref.Primary()) }()
	select {
	case err = <-pingErr:
	case <-s.ferretDone:
		err = errors.New("server exited during start-up")
	}
	if err != nil {
		return fmt.Errorf("embedded: FerretDB at %s not ready: %w", s.mongoURI, err)
	}
	return nil
}

func (s *Servers) startS3(dir string, logger *slog.Logger) error {
	backend, err := s3afero.MultiBucket(afero.NewBasePathFs(afero.NewOsFs(), dir))
	if err != nil {
		return fmt.Errorf("embedded: S3 backend in %s: %w", dir, err)
	}
	faker := gofakes3.New(backend,
		gofakes3.WithLogger(s3Logger{logger}),
		// Bucket creation is the client's job (storage/blob), as it is against MinIO.
		gofakes3.WithAutoBucket(false),
	)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("embedded: S3 listener: %w", err)
	}
	s.s3Addr = ln.Addr().String()
	s.s3Server = &http.Server{
		Handler:           guard(s.s3Addr, faker.Server()),
		ReadHeaderTimeout: 10 * time.Second,
		// Evidence bodies are streamed through these connections; the limits only
		// stop a stuck peer from holding a connection forever.
		ReadTimeout:    10 * time.Minute,
		WriteTimeout:   10 * time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	s.s3Done = make(chan error, 1)
	go func() {
		err := s.s3Server.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.s3Done <- err
	}()
	return nil
}

// guard rejects what no legitimate client of the embedded S3 server sends:
//   - an Origin header: only browsers send it, and gofakes3 answers every origin with
//     permissive CORS headers, so a web page could otherwise read evidence through the
//     user's browser;
//   - a Host other than the listener address: DNS rebinding (evil.example resolving to
//     127.0.0.1) arrives with the attacker's host name;
//   - a request not signed with our access key, header or presigned form.
func guard(addr string, next http.Handler) http.Handler {
	credential := "Credential=" + accessKey + "/"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get("Origin") != "":
			http.Error(w, "cross-origin requests are not served", http.StatusForbidden)
		case r.Host != addr:
			http.Error(w, "unexpected host", http.StatusMisdirectedRequest)
		case !strings.Contains(r.Header.Get("Authorization"), credential) &&
			!strings.HasPrefix(r.URL.Query().Get("X-Amz-Credential"), accessKey+"/"):
			http.Error(w, "request not signed with the embedded access key", http.StatusForbidden)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// MongoDBURI is the connection string of the embedded FerretDB, e.g.
// mongodb://127.0.0.1:41234/?retryWrites=false.
func (s *Servers) MongoDBURI() string { return s.mongoURI }

// S3Endpoint is the host:port of the embedded S3 server (plain HTTP).
func (s *Servers) S3Endpoint() string { return s.s3Addr }

// S3AccessKey is the access key S3 clients must sign with.
func (s *Servers) S3AccessKey() string { return accessKey }

// S3SecretKey is the secret key paired with S3AccessKey. It protects nothing (the
// server is loopback-only and does not verify signatures) and is not secret.
func (s *Servers) S3SecretKey() string { return secretKey }

// Close stops both servers and waits for their goroutines; it releases both ports
// and the SQLite files. Clients should disconnect first: FerretDB gives connections
// still open a few seconds before cutting them. Calling Close again returns the
// first result.
func (s *Servers) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.s3Server != nil {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			if err := s.s3Server.Shutdown(ctx); err != nil {
				// Shutdown gave up on active requests; cut them so Serve returns.
				_ = s.s3Server.Close()
				errs = append(errs, fmt.Errorf("embedded: stop S3 server: %w", err))
			}
			cancel()
			if err := <-s.s3Done; err != nil {
				errs = append(errs, fmt.Errorf("embedded: S3 server: %w", err))
			}
		}
		if s.stopFerret != nil {
			s.stopFerret()
			<-s.ferretDone
		}
		// Only once both servers are down may another take the directory.
		if s.unlockDir != nil {
			if err := s.unlockDir(); err != nil {
				errs = append(errs, fmt.Errorf("embedded: unlock data directory: %w", err))
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// minLevelHandler drops records below min, so the embedded servers' per-connection and
// per-request info logs do not drown the service's own logs.
type minLevelHandler struct {
	slog.Handler
	min slog.Level
}

func (h minLevelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevelHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < h.min {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h minLevelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevelHandler{h.Handler.WithAttrs(attrs), h.min}
}

func (h minLevelHandler) WithGroup(name string) slog.Handler {
	return minLevelHandler{h.Handler.WithGroup(name), h.min}
}

// ferretLogHandler drops FerretDB's dump of every failed command ("Response header:",
// "Response message:", logged at Warn). Failed commands are routine for us -- a
// duplicate key is how a conflict is detected, and the driver's endSessions on
// disconnect is not implemented -- and the driver already returns each failure to the
// code that issued it, which logs what matters. Responses logged at Error (FerretDB
// closing the connection) are kept.
type ferretLogHandler struct{ slog.Handler }

func (h ferretLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelError && strings.HasPrefix(r.Message, "Response ") {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h ferretLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return ferretLogHandler{h.Handler.WithAttrs(attrs)}
}

func (h ferretLogHandler) WithGroup(name string) slog.Handler {
	return ferretLogHandler{h.Handler.WithGroup(name)}
}

// s3Logger adapts gofakes3's printf-style logger to slog.
type s3Logger struct{ l *slog.Logger }

func (a s3Logger) Print(level gofakes3.LogLevel, v ...any) {
	var l slog.Level
	switch level {
	case gofakes3.LogErr:
		l = slog.LevelError
	case gofakes3.LogWarn:
		l = slog.LevelWarn
	case gofakes3.LogInfo:
		l = slog.LevelInfo
	default:
		l = slog.LevelDebug
	}
	a.l.Log(context.Background(), l, strings.TrimSpace(fmt.Sprintln(v...)))
}
