package main

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/outbox"
	"github.com/qingfeng-zj/qingfeng/retention"
)

// Config is every setting of the server. It is read from environment variables by
// ConfigFromEnv; each variable is documented in the README's table (a test keeps the
// two in step). Secrets also have a *_FILE variant naming a file to read instead.
type Config struct {
	Addr            string
	PublicURL       string // the public base URL: QR codes and page links, never the Host header
	DataDir         string
	MongoURI        string
	MongoDatabase   string
	S3Endpoint      string
	S3AccessKey     string
	S3SecretKey     string
	S3Bucket        string
	S3Region        string
	S3UseSSL        bool
	Custodians      string // "division=recipient,recipient;division=..."
	SigningKeyPEM   string
	ReceiptPepper   string
	MaxFileBytes    int64
	MaxCaseBytes    int64
	MaxUploadBytes  int64
	MaxImportBytes  int64
	KeepOriginals   bool
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	FollowUpTTL     time.Duration
	// PoWNormalRate is the normal rate of failed anonymous look-ups (and of public
	// filings) a minute; at this rate and above, a proof of work is required (package pow).
	PoWNormalRate   int
	DisclosureTTL   time.Duration
	ShutdownTimeout time.Duration
	LogLevel        string
	LogFormat       string
	Webhooks        []outbox.Webhook
	RetentionPeriod time.Duration // 0: never purge
	AlertLargeFen   int64         // donation alert (预警): a single donation of at least this many fen
	AlertGoodsDays  int           // donation alert (预警): goods unverified after this many days
	Require2FA      map[accounts.Role]bool
	OrphanGrace     time.Duration // unreferenced objects older than this are deleted
}

// setting is one row of the configuration table.
type setting struct {
	env    string
	def    string
	secret bool // has a *_FILE variant and is never printed
	doc    string
	set    func(c *Config, v string) error
}

func str(dst func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *dst(c) = v; return nil }
}

func size(dst func(*Config) *int64) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := parseSize(v)
		if err != nil {
			return err
		}
		*dst(c) = n
		return nil
	}
}

func dur(dst func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("want a positive duration like 15m, got %q", v)
		}
		*dst(c) = d
		return nil
	}
}

func boolean(dst func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", v)
		}
		*dst(c) = b
		return nil
	}
}

// settings is the configuration table: name, default, documentation, parser.
var settings = []setting{
	{env: "QF_ADDR", def: ":8080", doc: "Address the HTTP API listens on.", set: str(func(c *Config) *string { return &c.Addr })},
	{env: "QF_PUBLIC_URL", def: "http://localhost:8080", doc: "Public base URL of the service (https://… in production), without a trailing path: organization QR codes and the web pages' links use it, never the request's Host header.", set: func(c *Config, v string) error {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return fmt.Errorf("want an absolute http(s) URL without a path, like https://qingfeng.example.gov.cn, got %q", v)
		}
		c.PublicURL = strings.TrimRight(v, "/")
		return nil
	}},
	{env: "QF_DATA_DIR", def: "./data", doc: "Directory for the embedded database and object store, and for generated keys.", set: str(func(c *Config) *string { return &c.DataDir })},
	{env: "MONGODB_URI", secret: true, doc: "MongoDB connection string (replica set in production). Empty: start the embedded FerretDB (SQLite) under QF_DATA_DIR.", set: str(func(c *Config) *string { return &c.MongoURI })},
	{env: "MONGODB_DATABASE", def: "qingfeng", doc: "Database name.", set: str(func(c *Config) *string { return &c.MongoDatabase })},
	{env: "S3_ENDPOINT", doc: "MinIO/S3 endpoint as host:port. Empty: start the embedded S3 server under QF_DATA_DIR.", set: str(func(c *Config) *string { return &c.S3Endpoint })},
	{env: "S3_ACCESS_KEY", secret: true, doc: "S3 access key (required with S3_ENDPOINT).", set: str(func(c *Config) *string { return &c.S3AccessKey })},
	{env: "S3_SECRET_KEY", secret: true, doc: "S3 secret key (required with S3_ENDPOINT).", set: str(func(c *Config) *string { return &c.S3SecretKey })},
	{env: "S3_BUCKET", def: "qingfeng-evidence", doc: "Bucket for evidence; created if missing.", set: str(func(c *Config) *string { return &c.S3Bucket })},
	{env: "S3_REGION", doc: "S3 region, if the server needs one.", set: str(func(c *Config) *string { return &c.S3Region })},
	{env: "S3_USE_SSL", def: "false", doc: "Use HTTPS to reach S3_ENDPOINT.", set: boolean(func(c *Config) *bool { return &c.S3UseSSL })},
	{env: "QF_CUSTODIAN_RECIPIENTS", secret: true, doc: "Custodians' age post-quantum recipients by jurisdiction: `330782=age1pq1…,age1pq1…;33=age1pq1…` (`*` = every division). Required with MONGODB_URI; the embedded default generates a demo custodian key under QF_DATA_DIR when empty, used only where no real custodian was ever registered.", set: str(func(c *Config) *string { return &c.Custodians })},
	{env: "QF_JWT_SIGNING_KEY", secret: true, doc: "Ed25519 private key (PKCS#8 PEM) signing access tokens; all instances share it. Empty: generated into QF_DATA_DIR/jwt-ed25519.pem.", set: str(func(c *Config) *string { return &c.SigningKeyPEM })},
	{env: "QF_RECEIPT_PEPPER", secret: true, doc: "Base64 secret (≥32 bytes) keying receipt hashes; a database copy without it cannot test receipts. Empty: generated into QF_DATA_DIR/receipt-pepper.", set: str(func(c *Config) *string { return &c.ReceiptPepper })},
	{env: "QF_MAX_FILE_BYTES", def: "50MiB", doc: "Largest evidence file.", set: size(func(c *Config) *int64 { return &c.MaxFileBytes })},
	{env: "QF_MAX_CASE_BYTES", def: "200MiB", doc: "Largest total of a case's evidence.", set: size(func(c *Config) *int64 { return &c.MaxCaseBytes })},
	{env: "QF_MAX_UPLOAD_BYTES", def: "210MiB", doc: "Largest multipart request.", set: size(func(c *Config) *int64 { return &c.MaxUploadBytes })},
	{env: "QF_MAX_IMPORT_BYTES", def: "64MiB", doc: "Largest registry file uploaded to POST /v1/admin/import/orgs or /units (spooled to a temporary file, never held in memory).", set: size(func(c *Config) *int64 { return &c.MaxImportBytes })},
	{env: "QF_KEEP_ORIGINALS", def: "false", doc: "Keep each evidence original, with its metadata, sealed to the custodians (otherwise it is discarded).", set: boolean(func(c *Config) *bool { return &c.KeepOriginals })},
	{env: "QF_ACCESS_TOKEN_TTL", def: "15m", doc: "Lifetime of a staff access token.", set: dur(func(c *Config) *time.Duration { return &c.AccessTokenTTL })},
	{env: "QF_REQUIRE_2FA", def: "admin,custodian", doc: "Roles that must set up a second factor (TOTP) before doing anything, comma-separated from admin, custodian, staff, liaison; `none` for no role. admin and custodian should stay in the list.", set: func(c *Config, v string) error {
		c.Require2FA = map[accounts.Role]bool{}
		if v == "none" {
			return nil
		}
		for _, r := range strings.Split(v, ",") {
			role := accounts.Role(strings.TrimSpace(r))
			if !role.Valid() {
				return fmt.Errorf("want roles from admin, custodian, staff, liaison separated by commas, or none; got %q", r)
			}
			c.Require2FA[role] = true
		}
		return nil
	}},
	{env: "QF_REFRESH_TOKEN_TTL", def: "12h", doc: "Lifetime of a staff session (refresh token).", set: dur(func(c *Config) *time.Duration { return &c.RefreshTokenTTL })},
	{env: "QF_DISCLOSURE_TTL", def: "168h", doc: "How long a request to disclose a reporter's identity stays open for a custodian to decide and complete.", set: dur(func(c *Config) *time.Duration { return &c.DisclosureTTL })},
	{env: "QF_FOLLOWUP_TOKEN_TTL", def: "30m", doc: "Lifetime of a reporter's follow-up token.", set: dur(func(c *Config) *time.Duration { return &c.FollowUpTTL })},
	{env: "QF_POW_NORMAL_PER_MINUTE", def: "30", doc: "Normal rate, per minute and instance, of wrong receipt codes, donor checks that find nothing, and public filings. Below it no proof of work is asked; from it up the difficulty rises stepwise (README: Guessing without locking anyone out).", set: func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 1_000_000 {
			return fmt.Errorf("want 1–1000000 a minute, got %q", v)
		}
		c.PoWNormalRate = n
		return nil
	}},
	{env: "QF_SHUTDOWN_TIMEOUT", def: "20s", doc: "How long SIGTERM waits for in-flight requests.", set: dur(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
	{env: "QF_LOG_LEVEL", def: "info", doc: "debug, info, warn or error.", set: func(c *Config, v string) error {
		switch v {
		case "debug", "info", "warn", "error":
			c.LogLevel = v
			return nil
		}
		return fmt.Errorf("want debug, info, warn or error, got %q", v)
	}},
	{env: "QF_LOG_FORMAT", def: "json", doc: "json or text.", set: func(c *Config, v string) error {
		if v != "json" && v != "text" {
			return fmt.Errorf("want json or text, got %q", v)
		}
		c.LogFormat = v
		return nil
	}},
	{env: "QF_RETENTION", def: "0", doc: "How long a case is kept after it is closed before it is purged (identity destroyed, evidence deleted, case anonymised; an audit entry stays): years (5y), days (1827d) or hours (43800h). 0: never.", set: func(c *Config, v string) error {
		d, err := retention.ParsePeriod(v)
		if err != nil {
			return err
		}
		c.RetentionPeriod = d
		return nil
	}},
	{env: "QF_ORPHAN_GRACE", def: "48h", doc: "Evidence objects that no case or ledger photo refers to (an upload cut off by a crash) are deleted once they are this old; at least 1h, so that no upload in progress is touched.", set: func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		if d < time.Hour {
			return fmt.Errorf("at least 1h, got %s", v)
		}
		c.OrphanGrace = d
		return nil
	}},
	{env: "QF_ALERT_LARGE_DONATION_FEN", def: "5000000", doc: "Donation alert (预警): a single donation of at least this many fen (default 50,000 yuan) opens a case.", set: func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("want a positive number of fen, got %q", v)
		}
		c.AlertLargeFen = n
		return nil
	}},
	{env: "QF_ALERT_UNVERIFIED_GOODS_DAYS", def: "7", doc: "Donation alert (预警): goods not verified by a second person after this many days open a case.", set: func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 365 {
			return fmt.Errorf("want 1–365 days, got %q", v)
		}
		c.AlertGoodsDays = n
		return nil
	}},
	{env: "QF_WEBHOOKS", secret: true, doc: "Webhooks that receive case events (never reporter data), name=https://host/path|secret separated by ;. The secret signs each body (X-Qingfeng-Signature: sha256=HMAC). Empty: none.", set: func(c *Config, v string) error {
		ws, err := outbox.ParseWebhooks(v)
		if err != nil {
			return err
		}
		c.Webhooks = ws
		return nil
	}},
}

// ConfigFromEnv reads the configuration; an error names the variable at fault.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var c Config
	for _, s := range settings {
		v := getenv(s.env)
		if s.secret {
			if f := getenv(s.env + "_FILE"); f != "" {
				if v != "" {
					return c, fmt.Errorf("%s and %s_FILE are both set: use one", s.env, s.env)
				}
				b, err := os.ReadFile(f)
				if err != nil {
					return c, fmt.Errorf("%s_FILE: %w", s.env, err)
				}
				v = strings.TrimSpace(string(b))
			}
		}
		if v == "" {
			v = s.def
		}
		if v == "" {
			continue
		}
		if err := s.set(&c, v); err != nil {
			return c, fmt.Errorf("%s: %w", s.env, err)
		}
	}
	return c, c.validate()
}

func (c Config) validate() error {
	if c.S3Endpoint != "" && (c.S3AccessKey == "" || c.S3SecretKey == "") {
		return fmt.Errorf("S3_ACCESS_KEY and S3_SECRET_KEY: required when S3_ENDPOINT is set")
	}
	if c.S3Endpoint != "" && strings.Contains(c.S3Endpoint, "://") {
		return fmt.Errorf("S3_ENDPOINT: give host:port without a scheme (use S3_USE_SSL for https), got %q", c.S3Endpoint)
	}
	if c.MongoURI != "" && !strings.HasPrefix(c.MongoURI, "mongodb://") && !strings.HasPrefix(c.MongoURI, "mongodb+srv://") {
		return fmt.Errorf("MONGODB_URI: must start with mongodb:// or mongodb+srv://")
	}
	if c.MongoURI != "" && c.Custodians == "" {
		return fmt.Errorf("QF_CUSTODIAN_RECIPIENTS: required with MONGODB_URI (real-name identities must be sealed to custodians' keys)")
	}
	if c.MaxFileBytes > c.MaxCaseBytes {
		return fmt.Errorf("QF_MAX_FILE_BYTES: larger than QF_MAX_CASE_BYTES")
	}
	if c.MaxUploadBytes < c.MaxFileBytes {
		return fmt.Errorf("QF_MAX_UPLOAD_BYTES: smaller than QF_MAX_FILE_BYTES")
	}
	if c.DataDir == "" && (c.MongoURI == "" || c.S3Endpoint == "") {
		return fmt.Errorf("QF_DATA_DIR: required for the embedded default")
	}
	return nil
}

// parseSize reads 50MiB, 10MB, 1GiB or a plain number of bytes.
func parseSize(v string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}
	mult := int64(1)
	num := strings.TrimSpace(v)
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			mult, num = u.mult, strings.TrimSpace(strings.TrimSuffix(num, u.suffix))
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("want a size like 50MiB, got %q", v)
	}
	return n * mult, nil
}

// parseCustodians reads "330782=r1,r2;33=r3" into a map of recipients by jurisdiction.
func parseCustodians(v string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, entry := range strings.FieldsFunc(v, func(r rune) bool { return r == ';' || r == '\n' }) {
		entry = strings.TrimSpace(entry)
		if entry == "" || strings.HasPrefix(entry, "#") {
			continue
		}
		div, recips, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, fmt.Errorf("QF_CUSTODIAN_RECIPIENTS: want division=recipient[,recipient], got %.40q", entry)
		}
		for _, r := range strings.Split(recips, ",") {
			if r = strings.TrimSpace(r); r != "" {
				out[strings.TrimSpace(div)] = append(out[strings.TrimSpace(div)], r)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("QF_CUSTODIAN_RECIPIENTS: no recipients given")
	}
	return out, nil
}
