package intake

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/qingfeng-zj/qingfeng"
)

// Explainer is a Router that can decide without side effects (no alerts). The rule
// engine is one.
type Explainer interface {
	Decide(c *Case) Decision
}

// Explain returns the routing decision a draft would get, storing nothing. The draft
// is validated as a report is; any identity in it is dropped unread.
func (s *Service) Explain(ctx context.Context, d Draft) (Decision, []Warning, error) {
	d.Anonymous, d.Identity, d.Sealed = true, nil, nil
	v, warns, err := d.validate(s.Ref, s.now())
	if err != nil {
		return Decision{}, nil, err
	}
	c := &Case{Source: v.Source, Category: Category(v.Category), Subject: v.Subject, Description: v.Description,
		Location: v.Location, OccurredOn: v.OccurredOn, Status: StatusRegistered, ReceivedAt: s.now()}
	if e, ok := s.Router.(Explainer); ok {
		return e.Decide(c), warns, nil
	}
	dec, err := s.Router.Route(ctx, c)
	return dec, warns, err
}

// RerouteRequest changes what a case is about, as triage found it. Nil keeps the
// case's current value.
type RerouteRequest struct {
	Category *Category
	Subject  *Subject
	Why      string // required
	By       string // account id
}

// Reroute routes case c again after triage changed its category or subject. The new
// decision is stored beside the old one, with who and why; if the case changed
// meanwhile nothing is stored and the error is ECONFLICT.
func (s *Service) Reroute(ctx context.Context, c *Case, r RerouteRequest) (*Case, error) {
	why := strings.TrimSpace(r.Why)
	if why == "" || utf8.RuneCountInString(why) > 500 {
		return nil, qingfeng.Invalid(map[string]qingfeng.FieldError{"reason": fieldErr("required", "请填写改派理由（不超过500字）", "a reason of at most 500 characters is required")})
	}
	d := Draft{Category: string(c.Category), Subject: c.Subject, Description: c.Description, Location: c.Location,
		OccurredOn: c.OccurredOn, Anonymous: true, Source: c.Source}
	if r.Category != nil {
		d.Category = string(*r.Category)
	}
	if r.Subject != nil {
		d.Subject = *r.Subject
	}
	// The case's own fields were valid when filed; only the changed ones can fail.
	v, _, err := d.validate(s.Ref, c.ReceivedAt)
	if err != nil {
		return nil, err
	}
	next := *c
	next.Category, next.Subject = Category(v.Category), v.Subject
	dec, err := s.Router.Route(ctx, &next)
	if err != nil {
		return nil, fmt.Errorf("reroute %s: %w", c.Number, err)
	}
	dec.By, dec.Why = r.By, why
	if err := s.Cases.Reroute(ctx, c, next.Category, next.Subject, dec); err != nil {
		return nil, err
	}
	s.Log.InfoContext(ctx, "case rerouted", "case", c.Number, "from", c.UnitID, "to", dec.UnitID, "by", r.By, "fallback", dec.Fallback)
	return s.Cases.CaseByID(ctx, c.ID)
}
