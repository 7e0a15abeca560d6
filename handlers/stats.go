package handlers

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/stats"
)

// exportTimeout bounds the database side of one CSV export; the server's write
// timeout bounds the client side.
const exportTimeout = 5 * time.Minute

// statsView is the body of GET /v1/stats.
type statsView struct {
	UnitID     string           `json:"unit_id,omitempty"` // absent: every unit
	From       string           `json:"from,omitempty"`
	To         string           `json:"to,omitempty"`
	Total      int64            `json:"total"`
	ByCategory map[string]int64 `json:"by_category"`
	ByDivision map[string]int64 `json:"by_division"`
	ByStatus   map[string]int64 `json:"by_status"`
	ByMonth    map[string]int64 `json:"by_month"`
	OnTime     onTimeViews      `json:"on_time"`
}

type onTimeViews struct {
	Acceptance onTimeView `json:"acceptance"`
	Feedback   onTimeView `json:"feedback"`
}

// onTimeView is how one deadline was kept. rate is null while no case is decided
// (met + missed = 0), so that "none yet" does not read as "none on time".
type onTimeView struct {
	Due     int64    `json:"due"`
	Met     int64    `json:"met"`
	Missed  int64    `json:"missed"`
	Pending int64    `json:"pending"`
	Rate    *float64 `json:"rate"`
}

func onTimeOf(o stats.OnTime) onTimeView {
	v := onTimeView{Due: o.Due, Met: o.Met, Missed: o.Missed, Pending: o.Pending}
	if o.Met+o.Missed > 0 {
		r := o.Rate
		v.Rate = &r
	}
	return v
}

// statsQuery is what GET /v1/stats and /v1/stats/cases.csv were asked for, after the
// caller's scope was applied.
type statsQuery struct {
	f        stats.Filter
	from, to string // as given, YYYY-MM-DD
}

// auditDetail is what the audit entry records of the query: unit ("*" for every
// unit) and dates.
func (q statsQuery) auditDetail() map[string]string {
	d := map[string]string{"unit": q.f.UnitID, "from": q.from, "to": q.to}
	if q.f.UnitID == "" {
		d["unit"] = "*"
	}
	return d
}

// statsQueryOf reads ?from=&to=&unit= and applies the caller's scope: staff count
// their own unit (naming another is 403); administrators count every unit, or the one
// named. Other roles never get here (the route admits admin and staff only), and are
// refused if they do.
func (s *Server) statsQueryOf(c fiber.Ctx) (statsQuery, error) {
	p := principalOf(c)
	if p == nil || p.user == nil {
		return statsQuery{}, qingfeng.ErrUnauthorized
	}
	q := statsQuery{from: c.Query("from"), to: c.Query("to")}
	from, err := queryDate("from", q.from)
	if err != nil {
		return q, err
	}
	to, err := queryDate("to", q.to)
	if err != nil {
		return q, err
	}
	if !from.IsZero() && !to.IsZero() && from.After(to) {
		return q, fieldInvalid("from", "after_to", "开始日期不能晚于结束日期", "from must not be after to")
	}
	q.f.From = from
	if !to.IsZero() {
		q.f.To = to.AddDate(0, 0, 1) // to is inclusive: up to the end of its day
	}

	unit := c.Query("unit")
	switch p.user.Role {
	case accounts.RoleAdmin:
		if unit != "" {
			known := len(unit) <= 64
			if known && s.d.UnitName != nil {
				_, known = s.d.UnitName(unit)
			}
			if !known {
				return q, fieldInvalid("unit", "unknown_unit", "单位不存在", "no such unit")
			}
		}
		q.f.UnitID = unit
	case accounts.RoleStaff:
		// Never "every unit" for staff: an account without a unit sees nothing.
		if p.user.UnitID == "" || unit != "" && unit != p.user.UnitID {
			return q, qingfeng.ErrForbidden
		}
		q.f.UnitID = p.user.UnitID
	default:
		return q, qingfeng.ErrForbidden
	}
	return q, nil
}

// queryDate parses a YYYY-MM-DD query parameter as the start of that day in
// Asia/Shanghai; "" is the zero time (unbounded).
func queryDate(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	d, err := time.ParseInLocation(time.DateOnly, v, qingfeng.Shanghai)
	if err != nil || d.Year() < 2000 || d.Year() > 2999 {
		return time.Time{}, fieldInvalid(name, "invalid_date", "日期格式应为 YYYY-MM-DD", "must be a date, YYYY-MM-DD")
	}
	return d, nil
}

// caseStats is GET /v1/stats: cases counted by category, county, status and month
// received, and how acceptance and feedback deadlines were kept. Staff count their
// unit; administrators every unit or ?unit=. The read is recorded and fails closed.
func (s *Server) caseStats(c fiber.Ctx) error {
	q, err := s.statsQueryOf(c)
	if err != nil {
		return err
	}
	st, err := s.d.Stats.Stats(c.Context(), q.f)
	if err != nil {
		return err
	}
	detail := q.auditDetail()
	detail["total"] = strconv.FormatInt(st.Total, 10)
	if err := s.record(c, "stats.read", "", detail); err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(statsView{UnitID: q.f.UnitID, From: q.from, To: q.to, Total: st.Total,
		ByCategory: nonNilMap(st.ByCategory), ByDivision: nonNilMap(st.ByDivision), ByStatus: nonNilMap(st.ByStatus),
		ByMonth: nonNilMap(st.ByMonth),
		OnTime:  onTimeViews{Acceptance: onTimeOf(st.OnTime[stats.KindAcceptance]), Feedback: onTimeOf(st.OnTime[stats.KindFeedback])}})
}

func nonNilMap(m map[string]int64) map[string]int64 {
	if m == nil {
		return map[string]int64{}
	}
	return m
}

// errExportInterrupted ends a CSV export that failed after its first row was sent: the
// response is cut short (no final chunk), so that a client cannot take a partial file
// for a whole one. The cause is logged, never sent.
var errExportInterrupted = errors.New("export interrupted")

// casesCSV is GET /v1/stats/cases.csv: the cases of the same scope and dates as
// GET /v1/stats, one row each, oldest first, as UTF-8 CSV with a byte order mark (so
// that Excel reads the encoding). Rows carry codes, dates and flags only (see
// stats.ExportRow): never an identity, description, subject, address or reporter data.
//
// The export is recorded before anything is sent and fails closed. Rows stream from
// the database cursor through a pipe; an error before the first row is an ordinary
// error response, one after it cuts the response short.
func (s *Server) casesCSV(c fiber.Ctx) error {
	q, err := s.statsQueryOf(c)
	if err != nil {
		return err
	}
	if err := s.record(c, "stats.export", "", q.auditDetail()); err != nil {
		return err
	}

	pr, pw := io.Pipe()
	started := make(chan error, 1)
	// The writer outlives this handler (Fiber reuses c once the handler returns), so
	// it gets its own context and never touches c.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Context()), exportTimeout)
	src, log := s.d.Stats, s.d.Log
	go func() {
		defer cancel()
		begun := false
		err := writeCasesCSV(ctx, src, q.f, pw, func() { begun = true; started <- nil })
		var we writeError
		switch {
		case !begun: // nothing sent yet: the handler answers with the error
			started <- err
			pw.Close()
			return
		case errors.As(err, &we): // the response was closed: the client went away
			log.Info("case export not finished: the client went away", "err", err)
		case err != nil:
			log.Error("case export failed", "err", err)
			err = errExportInterrupted
		}
		pw.CloseWithError(err) // nil: the reader sees the end of the file
	}()
	if err := <-started; err != nil {
		pr.Close()
		return err
	}

	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="qingfeng-cases-`+time.Now().In(qingfeng.Shanghai).Format("20060102")+`.csv"`)
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set(fiber.HeaderCacheControl, "no-store")
	// fasthttp reads the pipe while writing the response and closes it when done or
	// when the client goes away, which ends the writer.
	return c.SendStream(pr)
}

// writeError is a failure to write the response, as opposed to reading the cases.
type writeError struct{ error }

func (e writeError) Unwrap() error { return e.error }

// writeCasesCSV writes the export to w: a byte order mark, the header row, then a row
// per case. It calls begin once, before writing anything: when the first row is read,
// or when the export turns out empty. Failures to write to w are writeErrors.
func writeCasesCSV(ctx context.Context, src stats.Source, f stats.Filter, w io.Writer, begin func()) error {
	bw := bufio.NewWriterSize(w, 16<<10)
	cw := csv.NewWriter(bw)
	begun := false
	header := func() error {
		begun = true
		begin()
		if _, err := bw.WriteString("\uFEFF"); err != nil {
			return writeError{err}
		}
		if err := cw.Write(stats.CSVHeader()); err != nil {
			return writeError{err}
		}
		return nil
	}
	err := src.ExportCases(ctx, f, func(r stats.ExportRow) error {
		if !begun {
			if err := header(); err != nil {
				return err
			}
		}
		if err := cw.Write(r.CSVRecord()); err != nil {
			return writeError{err}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !begun { // no cases: the header alone
		if err := header(); err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return writeError{err}
	}
	if err := bw.Flush(); err != nil {
		return writeError{err}
	}
	return nil
}
