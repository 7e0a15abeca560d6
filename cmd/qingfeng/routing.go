package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
)

// openRouting loads the unit registry (the defaults, generated from the divisions,
// on first start), the organizations and the routing rules (the default set on first
// start), and builds the engine that routes every case.
func (m *Main) openRouting(ctx context.Context, reg prometheus.Registerer) error {
	us := m.st.units
	if n, err := us.SeedUnits(ctx, routing.DefaultUnits()); err != nil {
		return fmt.Errorf("seed units: %w", err)
	} else if n > 0 {
		m.Log.Info("loaded the default supervisory units", "units", n)
	}
	list, err := us.Units(ctx)
	if err != nil {
		return err
	}
	units, err := routing.NewUnits(list)
	if err != nil {
		return err
	}
	orgs := routing.NewOrgs()
	if err := m.loadOrgs(ctx, orgs); err != nil {
		return err
	}
	rules := m.st.rules
	if seeded, err := rules.Seed(ctx, routing.DefaultRules()); err != nil {
		return fmt.Errorf("seed routing rules: %w", err)
	} else if seeded {
		m.Log.Info("loaded the default routing rules", "version", 1)
	}
	set, err := rules.Load(ctx)
	if err != nil {
		return err
	}
	fallbacks := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "qingfeng_routing_fallbacks_total",
		Help: "Cases no rule could place, handed to an intake office for manual triage, by reason."}, []string{"reason"})
	reg.MustRegister(fallbacks)
	m.engine = routing.NewEngine(units, orgs, set)
	m.engine.Alert = fallbackAlert{log: m.Log, count: fallbacks}
	m.routing = &routing.Admin{Store: rules, Units: us, Engine: m.engine, OrgImports: m.st.orgs, UnitImports: us}
	m.Log.Info("routing ready", "units", len(list), "organizations", orgs.Len(), "rule_version", set.Version)
	return nil
}

func (m *Main) loadOrgs(ctx context.Context, orgs *routing.Orgs) error {
	return m.st.orgs.EachOrganization(ctx, func(o routing.Organization) error {
		orgs.Put(o)
		return nil
	})
}

// refreshRouting returns a background job that picks up what other processes
// changed: rules (checked every run), and units and organizations imported by the
// CLI (reloaded every tenth run).
func (m *Main) refreshRouting() func(ctx context.Context) error {
	i := 0
	return func(ctx context.Context) error {
		i++
		if changed, err := m.routing.Refresh(ctx); err != nil && ctx.Err() == nil {
			m.Log.Error("refresh routing rules", "err", err)
		} else if changed {
			m.Log.Info("routing rules reloaded", "version", m.engine.Version())
		}
		if i%10 != 0 {
			return nil
		}
		if err := m.routing.ReloadUnits(ctx); err != nil && ctx.Err() == nil {
			m.Log.Error("reload units", "err", err)
		}
		if err := m.loadOrgs(ctx, m.engine.Orgs); err != nil && ctx.Err() == nil {
			m.Log.Error("reload organizations", "err", err)
		}
		if err := loadCalendarYears(ctx, m.calendar.store, m.calendar.cal); err != nil && ctx.Err() == nil {
			m.Log.Error("reload calendar years", "err", err)
		}
		return nil
	}
}

// fallbackAlert is the alert for a case no rule could place: a metric to alert on and
// a warning event naming the case (never the reporter).
type fallbackAlert struct {
	log   *slog.Logger
	count *prometheus.CounterVec
}

func (a fallbackAlert) Fallback(ctx context.Context, c *intake.Case, reason string) {
	a.count.WithLabelValues(reason).Inc()
	a.log.WarnContext(ctx, "routing fallback: case needs manual triage", "event", "routing.fallback", "case", c.Number,
		"reason", reason, "category", string(c.Category), "division", c.Location.Division)
}
