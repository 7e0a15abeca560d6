// Package handlers is the HTTP API: routes, authentication middleware, request and
// response types, and the one error handler. Fiber lives only here; handlers read the
// same way (identity → params → load → decode → validate → apply → respond) and hand
// domain work to the intake and accounts services with a context.Context.
//
// It also serves the public web pages (pages*.go; package web renders them) through the
// same services, decoders and error vocabulary as the API: the pages only do HTTP —
// forms, CSRF tokens, the follow-up cookie, the security headers.
//
// Reporter routes never see, log or store a client address, user agent or device id:
// the access log records no client attributes on any route.
package handlers

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/gofiber/fiber/v3"
	"github.com/gofiber/fiber/v3/middleware/adaptor"
	"github.com/gofiber/fiber/v3/middleware/recover"
	"github.com/gofiber/fiber/v3/middleware/requestid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/audit"
	"github.com/qingfeng-zj/qingfeng/custody"
	"github.com/qingfeng-zj/qingfeng/donations"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/pow"
	"github.com/qingfeng-zj/qingfeng/routing"
	"github.com/qingfeng-zj/qingfeng/stats"
	"github.com/qingfeng-zj/qingfeng/triage"
	"github.com/qingfeng-zj/qingfeng/web"
)

// Deps is what the API needs; cmd/qingfeng wires it.
type Deps struct {
	Intake   *intake.Service
	Accounts *accounts.Service
	Tokens   accounts.TokenSigner
	// PoW prices anonymous look-ups and filing (package pow); Backoff slows password
	// guessing per staff account. Nil (tests): in-memory ones with a random key.
	PoW     *pow.Guard
	Backoff *accounts.Backoff
	// Ready reports whether every backend is reachable.
	Ready func(ctx context.Context) error
	// UnitName names a unit id, ok=false for an unknown unit.
	UnitName func(id string) (string, bool)
	// Routing changes the routing rules.
	Routing *routing.Admin
	// Triage runs the case workflow; Counts counts a unit's cases per status.
	Triage *triage.Service
	Counts func(ctx context.Context, unitID string) (map[intake.Status]int64, error)
	// CountNewActivity counts a unit's cases with reporter activity it has not read.
	CountNewActivity func(ctx context.Context, unitID string) (int64, error)
	// Transfers hands cases between units.
	Transfers *triage.Transfers
	// Keys and Disclosures: custodians' and staff's recipients, and identity disclosure.
	Keys        *custody.Keys
	Disclosures *custody.Disclosures
	Reseals     *custody.Reseals
	// Ledger is the donation ledger; Orgs finds a registered organization by credit code.
	Ledger *donations.Ledger
	Orgs   func(code string) (routing.Organization, bool)
	// Audit is the hash-chained audit log.
	Audit *audit.Log
	// Calendar adds holiday calendars.
	Calendar CalendarAdmin
	// Notifications lists a unit's overdue-step notifications, newest first.
	Notifications func(ctx context.Context, unitID string, limit int) ([]triage.Notification, error)
	// Stats counts cases and streams the de-identified case export.
	Stats stats.Source
	// ValidDivision reports whether a division code exists.
	ValidDivision func(code string) bool
	Log           *slog.Logger
	Registry      *prometheus.Registry
	FollowUpTTL   time.Duration
	MaxJSONBytes  int
	MaxUploadBody int64 // whole multipart request
	// MaxImportBody bounds a registry import upload (spooled to the system's temporary
	// directory).
	MaxImportBody int64
	// PublicURL is the service's public base URL (QF_PUBLIC_URL): QR codes and page
	// links use it, never the request's Host header.
	PublicURL string
	// FormKey signs the web forms' CSRF tokens. Nil (tests): a random one.
	FormKey []byte
}

// Server is the Fiber application with its routes.
type Server struct {
	App *fiber.App
	d   Deps
	m   *metrics
	// routes is what methodGuard matches against, listed at the first request.
	routeOnce sync.Once
	routes    []routePattern
	pages     *web.Pages
}

// New builds the application and registers every route.
func New(d Deps) *Server {
	if d.FollowUpTTL == 0 {
		d.FollowUpTTL = 30 * time.Minute
	}
	if d.MaxJSONBytes == 0 {
		d.MaxJSONBytes = 64 << 10
	}
	if d.MaxUploadBody == 0 {
		d.MaxUploadBody = 210 << 20
	}
	if d.MaxImportBody == 0 {
		d.MaxImportBody = 64 << 20
	}
	if d.PoW == nil {
		d.PoW = newRandomGuard()
	}
	if d.Backoff == nil {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		d.Backoff = &accounts.Backoff{Key: key}
	}
	s := &Server{d: d, m: newMetrics(d.Registry)}
	s.App = fiber.New(fiber.Config{
		AppName:      "qingfeng",
		ErrorHandler: s.handleError,
		// Values read from the context are copied, so nothing dangles after a handler
		// returns and Fiber reuses its buffers.
		Immutable: true,
		// Bodies stream to handlers once past this size: uploads are never buffered
		// whole; JSON handlers read with their own limit.
		BodyLimit:         1 << 20,
		StreamRequestBody: true,
		// Multipart bodies are parsed by the upload handlers as streams.
		DisablePreParseMultipartForm: true,
		ReadTimeout:                  5 * time.Minute,
		WriteTimeout:                 5 * time.Minute,
		IdleTimeout:                  2 * time.Minute,
	})
	s.App.Use(recover.New(recover.Config{EnableStackTrace: true, StackTraceHandler: func(c fiber.Ctx, e any) {
		d.Log.Error("panic", "request_id", requestid.FromContext(c), "panic", e)
	}}))
	s.App.Use(requestid.New())
	s.App.Use(s.accessLog)
	s.App.Use(s.methodGuard)

	s.App.Get("/healthz", func(c fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	s.App.Get("/readyz", s.readyz)
	s.App.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{})))

	v1 := s.App.Group("/v1")
	v1.Get("/categories", s.categories)

	// Reporters: no account. Filing needs nothing; follow-up needs the receipt. Both,
	// and the donor check, carry a proof of work while guessing is above normal.
	v1.Get("/pow/challenge", s.powChallenge)
	v1.Post("/reports", s.fileReport)
	v1.Post("/reports/:case/evidence", s.anyPrincipal, s.addEvidence)
	v1.Post("/followup/session", s.followUpSession)
	v1.Delete("/followup/session", s.followUpAuth, s.endFollowUp)
	v1.Get("/followup/case", s.followUpAuth, s.followUpCase)
	v1.Post("/followup/messages", s.followUpAuth, s.followUpMessage)

	// Staff accounts.
	v1.Post("/auth/login", s.login)
	v1.Post("/auth/refresh", s.refresh)
	// An account that must change its password, or enrol a second factor, may do only
	// that (and see itself, and log out).
	mustChange, mustEnrol := accounts.ErrPasswordChangeRequired, accounts.ErrTOTPEnrollmentRequired
	v1.Post("/auth/logout", s.restrictedAuth(mustChange, mustEnrol), s.logout)
	v1.Get("/auth/me", s.restrictedAuth(mustChange, mustEnrol), s.me)
	v1.Post("/auth/password", s.restrictedAuth(mustChange, mustEnrol), s.changePassword)
	v1.Post("/auth/totp/enroll", s.restrictedAuth(mustEnrol), s.enrollTOTP)
	v1.Post("/auth/totp/confirm", s.restrictedAuth(mustEnrol), s.confirmTOTP)

	v1.Get("/admin/users", s.staffAuth(accounts.RoleAdmin), s.listUsers)
	v1.Post("/admin/users", s.staffAuth(accounts.RoleAdmin), s.createUser)
	v1.Patch("/admin/users/:id", s.staffAuth(accounts.RoleAdmin), s.updateUser)
	v1.Post("/admin/users/:id/password-reset", s.staffAuth(accounts.RoleAdmin), s.resetPassword)
	v1.Post("/admin/users/:id/totp-reset", s.staffAuth(accounts.RoleAdmin), s.resetTOTP)
	v1.Post("/admin/users/:id/unlock", s.staffAuth(accounts.RoleAdmin), s.unlockUser)
	v1.Get("/admin/calendar", s.staffAuth(accounts.RoleAdmin), s.calendarYears)
	v1.Get("/admin/audit", s.staffAuth(accounts.RoleAdmin), s.auditList)
	v1.Get("/keys", s.publicKeys)
	v1.Get("/admin/recipients", s.staffAuth(accounts.RoleAdmin), s.listRecipients)
	v1.Post("/admin/recipients", s.staffAuth(accounts.RoleAdmin), s.registerRecipient)
	v1.Post("/admin/recipients/:id/revoke", s.staffAuth(accounts.RoleAdmin), s.revokeRecipient)
	v1.Get("/disclosures", s.staffAuth(accounts.RoleCustodian), s.openDisclosures)
	v1.Post("/disclosures/:id/approve", s.staffAuth(accounts.RoleCustodian), s.decideDisclosure(true))
	v1.Post("/disclosures/:id/deny", s.staffAuth(accounts.RoleCustodian), s.decideDisclosure(false))
	v1.Get("/disclosures/:id/sealed-identity", s.staffAuth(accounts.RoleCustodian), s.sealedIdentity)
	v1.Put("/disclosures/:id/resealed", s.staffAuth(accounts.RoleCustodian), s.putResealed)
	v1.Get("/disclosures/:id/identity", s.staffAuth(accounts.RoleStaff), s.disclosedIdentity)
	v1.Get("/reseal-tasks", s.staffAuth(accounts.RoleCustodian), s.resealTasks)
	ledger := v1.Group("/orgs/:code/ledger", s.staffAuth(accounts.RoleLiaison, accounts.RoleStaff, accounts.RoleAdmin))
	ledger.Post("/entries", s.appendEntry)
	ledger.Get("/entries", s.listEntries)
	ledger.Post("/entries/:id/reversal", s.reverseEntry)
	ledger.Post("/entries/:id/verification", s.verifyEntry)
	ledger.Get("/balance", s.ledgerBalance)
	ledger.Get("/export.csv", s.ledgerCSV)
	ledger.Post("/photos", s.uploadLedgerPhotos)
	ledger.Post("/statements/:month/publish", s.publishStatement)
	v1.Get("/public/orgs/:code", s.publicOrgPage)
	v1.Get("/public/orgs/:code/donations", s.publicStatement)
	v1.Get("/public/orgs/:code/donations/check", s.publicReceiptCheck)
	v1.Get("/public/orgs/:code/qr.png", s.publicQR)
	v1.Get("/reseal-tasks/:id/sealed-identity", s.staffAuth(accounts.RoleCustodian), s.resealTaskIdentity)
	v1.Put("/reseal-tasks/:id/resealed", s.staffAuth(accounts.RoleCustodian), s.putResealTask)
	v1.Get("/admin/audit/verify", s.staffAuth(accounts.RoleAdmin), s.auditVerify)
	v1.Put("/admin/calendar/:year", s.staffAuth(accounts.RoleAdmin), s.putCalendarYear)
	v1.Post("/admin/import/orgs", s.staffAuth(accounts.RoleAdmin), s.importRegistry("orgs"))
	v1.Post("/admin/import/units", s.staffAuth(accounts.RoleAdmin), s.importRegistry("units"))

	rt := v1.Group("/routing")
	rt.Get("/rules", s.staffAuth(accounts.RoleAdmin), s.listRules)
	rt.Post("/rules", s.staffAuth(accounts.RoleAdmin), s.createRule)
	rt.Post("/rules/:id/retire", s.staffAuth(accounts.RoleAdmin), s.retireRule)
	rt.Post("/units", s.staffAuth(accounts.RoleAdmin), s.createUnit)
	rt.Get("/units/:id", s.staffAuth(accounts.RoleAdmin), s.getUnit)
	rt.Put("/units/:id", s.staffAuth(accounts.RoleAdmin), s.updateUnit)
	rt.Post("/units/:id/aliases", s.staffAuth(accounts.RoleAdmin), s.addUnitAlias)
	rt.Delete("/units/:id/aliases/:alias", s.staffAuth(accounts.RoleAdmin), s.removeUnitAlias)
	rt.Post("/explain", s.staffAuth(accounts.RoleAdmin, accounts.RoleStaff), s.explain)
	rt.Get("/cases/:case", s.staffAuth(accounts.RoleAdmin, accounts.RoleStaff), s.caseRouting)
	rt.Post("/cases/:case/reroute", s.staffAuth(accounts.RoleAdmin, accounts.RoleStaff), s.reroute)

	cases := v1.Group("/cases", s.staffAuth(accounts.RoleStaff, accounts.RoleLiaison))
	cases.Get("/", s.listCases)
	cases.Get("/counts", s.caseCounts)
	cases.Get("/:case", s.getCase)
	cases.Post("/:case/transitions", s.transition)
	cases.Put("/:case/assignee", s.assign)
	cases.Delete("/:case/assignee", s.unassign)
	cases.Post("/:case/disclosures", s.requestDisclosure)
	cases.Get("/:case/disclosures", s.caseDisclosures)
	cases.Post("/:case/transfer", s.transfer("transfer"))
	cases.Post("/:case/transfer/accept", s.transfer("accept"))
	cases.Post("/:case/transfer/return", s.transfer("return"))
	v1.Get("/notifications", s.staffAuth(accounts.RoleStaff), s.notifications)
	v1.Get("/stats", s.staffAuth(accounts.RoleAdmin, accounts.RoleStaff), s.caseStats)
	v1.Get("/stats/cases.csv", s.staffAuth(accounts.RoleAdmin, accounts.RoleStaff), s.casesCSV)
	cases.Post("/:case/messages", s.staffMessage)
	cases.Get("/:case/evidence/:evidence", s.downloadEvidence)

	s.registerPages()
	return s
}

func (s *Server) readyz(c fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.Context(), 3*time.Second)
	defer cancel()
	if err := s.d.Ready(ctx); err != nil {
		s.d.Log.Warn("not ready", "err", err)
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable"})
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

func (s *Server) categories(c fiber.Ctx) error {
	return c.JSON(fiber.Map{"categories": intake.Categories})
}

// accessLog records one structured line per request: method, route pattern, status,
// duration, size and request id. It never records the client's address, user agent,
// or any header, on any route.
func (s *Server) accessLog(c fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		if herr := s.handleError(c, err); herr != nil {
			return herr
		}
	}
	s.finishBody(c)
	route := c.Route().Path
	status := c.Response().StatusCode()
	elapsed := time.Since(start)
	s.m.observe(c.Method(), route, status, elapsed)
	// A streamed body (evidence, the CSV export) is not read here: Body() would read
	// the whole stream into memory. Its length is logged as -1 when unknown.
	bytesOut := c.Response().Header.ContentLength()
	if !c.Response().IsBodyStream() {
		bytesOut = len(c.Response().Body())
	}
	s.d.Log.Info("request", "method", c.Method(), "route", route, "status", status,
		"duration_ms", float64(elapsed.Microseconds())/1000, "bytes_out", bytesOut,
		"request_id", requestid.FromContext(c))
	return nil
}

// finishBody makes sure no unread request body is left on the connection. With
// streamed bodies, a handler that refuses a request early (bad type, a case over its
// evidence limit) leaves the rest unread, and the server would parse it as the next
// request. A remainder within the upload limit is drained, so the client — often a
// phone still sending — reads the answer instead of a reset connection; anything
// longer closes the connection.
func (s *Server) finishBody(c fiber.Ctx) {
	req := c.Request()
	if !req.IsBodyStream() {
		return
	}
	if _, err := io.CopyN(io.Discard, req.BodyStream(), s.d.MaxUploadBody); err != io.EOF {
		c.RequestCtx().SetConnectionClose()
	}
}

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "qingfeng_http_requests_total", Help: "HTTP requests by route and status."}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "qingfeng_http_request_duration_seconds", Help: "HTTP request duration by route.", Buckets: prometheus.DefBuckets}, []string{"method", "route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

func (m *metrics) observe(method, route string, status int, d time.Duration) {
	m.requests.WithLabelValues(method, route, statusClass(status)).Inc()
	m.duration.WithLabelValues(method, route).Observe(d.Seconds())
}

func statusClass(s int) string {
	return string(rune('0'+s/100)) + "xx"
}
