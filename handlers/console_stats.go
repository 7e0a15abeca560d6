package handlers

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/stats"
	"github.com/qingfeng-zj/qingfeng/web"
)

// consoleStats is GET /console/stats: the API's statistics (same scope, same audit
// entry) as tables and a server-rendered SVG chart of cases by month, with the CSV
// export of the same query.
func (s *Server) consoleStats(c fiber.Ctx) error {
	pg := web.StatsPage{ConsolePage: s.consolePage(c, "统计", "/console/stats"), From: c.Query("from"), To: c.Query("to")}
	q, err := s.statsQueryOf(c)
	if err != nil {
		var f web.Form
		consoleFormErrors(&f, err)
		pg.Notice = f.Notice
		for _, fe := range f.Summary {
			pg.Notice += fe.Message + "；"
		}
		return s.render(c, statusForForm(err), "console/stats", pg)
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
	pg.Total = st.Total
	for _, k := range sortedKeys(st.ByCategory) {
		pg.ByCategory = append(pg.ByCategory, web.KV{Label: categoryOf(intake.Category(k)).Label, Value: strconv.FormatInt(st.ByCategory[k], 10)})
	}
	for _, k := range sortedKeys(st.ByDivision) {
		pg.ByCounty = append(pg.ByCounty, web.KV{Label: divisionName(k), Value: strconv.FormatInt(st.ByDivision[k], 10)})
	}
	months := sortedKeys(st.ByMonth)
	for _, k := range months {
		pg.ByMonth = append(pg.ByMonth, web.KV{Label: k, Value: strconv.FormatInt(st.ByMonth[k], 10)})
	}
	for _, k := range []struct{ kind, label string }{{stats.KindAcceptance, "受理告知"}, {stats.KindFeedback, "结果反馈"}} {
		o := st.OnTime[k.kind]
		v := fmt.Sprintf("应办 %d，按期 %d，逾期 %d，未到期 %d", o.Due, o.Met, o.Missed, o.Pending)
		if o.Met+o.Missed > 0 {
			v += fmt.Sprintf("；按期率 %.1f%%", o.Rate*100)
		} else {
			v += "；尚无已到期的案件"
		}
		pg.OnTime = append(pg.OnTime, web.KV{Label: k.label, Value: v})
	}
	pg.Chart = monthChart(months, st.ByMonth)
	qs := url.Values{}
	if q.from != "" {
		qs.Set("from", q.from)
	}
	if q.to != "" {
		qs.Set("to", q.to)
	}
	pg.CSVHref = "/console/stats/cases.csv"
	if len(qs) > 0 {
		pg.CSVHref += "?" + qs.Encode()
	}
	return s.render(c, fiber.StatusOK, "console/stats", pg)
}

func sortedKeys(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// monthChart draws cases received per month as horizontal bars scaled to the
// largest month (the last 12 months shown); the template only places them.
func monthChart(months []string, by map[string]int64) web.Chart {
	const barMax, row = 220, 30
	if len(months) > 12 {
		months = months[len(months)-12:]
	}
	largest := int64(1)
	for _, m := range months {
		largest = max(largest, by[m])
	}
	ch := web.Chart{Width: 360, Height: row*len(months) + 6, Label: "各月收到的案件数"}
	for i, m := range months {
		n := by[m]
		w := 0
		if n > 0 {
			w = max(2, int(n*barMax/largest))
		}
		y := 4 + i*row
		ch.Bars = append(ch.Bars, web.Bar{Y: y, W: w, LabelY: y + 16, ValueX: 64 + w + 6, Label: m, Value: strconv.FormatInt(n, 10) + " 件", Class: "bar-income"})
		ch.Label += "；" + m + "：" + strconv.FormatInt(n, 10) + " 件"
	}
	return ch
}
