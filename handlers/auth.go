package handlers

import (
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
	"github.com/qingfeng-zj/qingfeng/intake"
	"github.com/qingfeng-zj/qingfeng/routing"
)

// principal is who is making a request: a staff account, or a reporter holding a
// follow-up token for one case.
type principal struct {
	user     *accounts.User
	claims   accounts.Claims
	reporter string // case id the follow-up token is scoped to
	// reporterCase is that case as read when the token was checked (followUpClaims):
	// the follow-up handlers work on it rather than reading it again.
	reporterCase *intake.Case
}

type principalKey struct{}

func principalOf(c fiber.Ctx) *principal {
	p, _ := c.Locals(principalKey{}).(*principal)
	return p
}

func bearer(c fiber.Ctx) string {
	h := c.Get(fiber.HeaderAuthorization)
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// staffAuth admits a valid staff access token of one of roles (any role if none given)
// whose account has nothing it must do first (a password change, an enrolment).
func (s *Server) staffAuth(roles ...accounts.Role) fiber.Handler {
	return s.authenticate(roles, nil)
}

// restrictedAuth admits any staff access token, also one of an account that must first
// change its password or enrol a second factor, if that restriction is in allowed.
func (s *Server) restrictedAuth(allowed ...*qingfeng.Error) fiber.Handler {
	return s.authenticate(nil, allowed)
}

func (s *Server) authenticate(roles []accounts.Role, allowed []*qingfeng.Error) fiber.Handler {
	return func(c fiber.Ctx) error {
		tok := bearer(c)
		if tok == "" {
			return qingfeng.ErrUnauthorized
		}
		u, claims, err := s.d.Accounts.Authenticate(c.Context(), tok)
		if err != nil {
			return err
		}
		if r := s.d.Accounts.Restriction(u); r != nil && !slices.Contains(allowed, r) {
			return r
		}
		if len(roles) > 0 && !slices.Contains(roles, u.Role) {
			return qingfeng.ErrForbidden
		}
		c.Locals(principalKey{}, &principal{user: u, claims: claims})
		return c.Next()
	}
}

// followUpAuth admits a reporter's follow-up token.
func (s *Server) followUpAuth(c fiber.Ctx) error {
	tok := bearer(c)
	if tok == "" {
		return qingfeng.ErrUnauthorized
	}
	claims, cs, err := s.followUpClaims(c, tok)
	if err != nil {
		return err
	}
	c.Locals(principalKey{}, &principal{claims: claims, reporter: claims.Subject, reporterCase: cs})
	return c.Next()
}

// followUpClaims verifies a reporter's follow-up token: signed for follow-up, not
// expired, and issued after the reporter last logged out of the case
// (Case.FollowUpEndedAt; both to the millisecond). Every failure is ErrUnauthorized: a
// token of a case that is gone says no more than a forged one. It returns the case as
// read.
func (s *Server) followUpClaims(c fiber.Ctx, tok string) (accounts.Claims, *intake.Case, error) {
	claims, err := s.d.Tokens.Verify(tok, accounts.AudienceFollowUp)
	if err != nil {
		return claims, nil, err
	}
	cs, err := s.followUpSessionCase(c, claims)
	return claims, cs, err
}

// followUpSessionCase is the case of verified follow-up claims, unless the reporter logged
// out after they were issued (see followUpClaims).
func (s *Server) followUpSessionCase(c fiber.Ctx, claims accounts.Claims) (*intake.Case, error) {
	cs, err := s.d.Intake.Cases.CaseByID(c.Context(), claims.Subject)
	switch {
	case qingfeng.ErrorCode(err) == qingfeng.ENOTFOUND:
		return nil, qingfeng.ErrUnauthorized
	case err != nil:
		return nil, err
	case !cs.FollowUpEndedAt.IsZero() && !claims.IssuedAt.After(cs.FollowUpEndedAt):
		return nil, qingfeng.ErrUnauthorized
	}
	return cs, nil
}

// endFollowUp is DELETE /v1/followup/session: the reporter logs out; every follow-up
// token of the case issued until now stops working at once.
func (s *Server) endFollowUp(c fiber.Ctx) error {
	if err := s.d.Intake.Cases.EndFollowUp(c.Context(), principalOf(c).reporter, time.Now()); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// anyPrincipal admits either kind of token; the handler checks the case scope.
func (s *Server) anyPrincipal(c fiber.Ctx) error {
	tok := bearer(c)
	if tok == "" {
		return qingfeng.ErrUnauthorized
	}
	if claims, err := s.d.Tokens.Verify(tok, accounts.AudienceFollowUp); err == nil {
		cs, err := s.followUpSessionCase(c, claims)
		if err != nil {
			return err // a reporter's token, refused: never tried as a staff token
		}
		c.Locals(principalKey{}, &principal{claims: claims, reporter: claims.Subject, reporterCase: cs})
		return c.Next()
	}
	return s.staffAuth(accounts.RoleStaff, accounts.RoleLiaison)(c)
}

// Access to a case. Staff see only cases owned by their unit. A liaison may add
// evidence to cases in their division, but reads only the cases they filed: a village
// liaison may live next door to the people a report names.
const (
	accessRead = iota
	accessAddEvidence
	accessRouting // a case's routing record and re-routing: staff of the unit, admins
)

func canAccess(p *principal, cs *intake.Case, kind int) bool {
	switch {
	case p == nil:
		return false
	case p.reporter != "":
		return p.reporter == cs.ID
	case p.user.Role == accounts.RoleAdmin:
		return kind == accessRouting
	case p.user.Role == accounts.RoleStaff:
		return p.user.UnitID != "" && p.user.UnitID == cs.UnitID
	case p.user.Role == accounts.RoleLiaison:
		inDivision := inLiaisonScope(p.user, cs.Location.Division)
		if kind == accessAddEvidence {
			return inDivision
		}
		return inDivision && cs.FiledBy == p.user.ID
	}
	return false
}

// inLiaisonScope says whether a division lies in a liaison's region: the one rule for
// the cases they may add evidence to, read, and file.
func inLiaisonScope(u *accounts.User, division string) bool {
	return strings.HasPrefix(division, routing.DivisionPrefix(u.Division))
}

// loadCase loads the case named in the path and checks the principal may see it.
// A case the principal may not see is reported as not found, so case numbers
// cannot be probed.
func (s *Server) loadCase(c fiber.Ctx, kind int) (*intake.Case, error) {
	p := principalOf(c)
	number := c.Params("case")
	var (
		cs  *intake.Case
		err error
	)
	if p != nil && p.reporter != "" {
		if cs = p.reporterCase; cs.Number != number {
			return nil, caseNotFound
		}
	} else {
		if !validCaseNumber(number) {
			return nil, caseNotFound
		}
		cs, err = s.d.Intake.Cases.CaseByNumber(c.Context(), number)
	}
	if qingfeng.ErrorCode(err) == qingfeng.ENOTFOUND {
		return nil, caseNotFound
	}
	if err != nil {
		return nil, err
	}
	if !canAccess(p, cs, kind) {
		return nil, caseNotFound
	}
	return cs, nil
}

var caseNotFound = qingfeng.Errorf(qingfeng.ENOTFOUND, "案件不存在", "no such case")

// validCaseNumber accepts QF-<6 digits>-<4 digits>-<6+ digits> only, before any query.
func validCaseNumber(s string) bool {
	parts := strings.Split(s, "-")
	if len(parts) != 4 || parts[0] != "QF" || len(parts[1]) != 6 || len(parts[2]) != 4 || len(parts[3]) < 6 || len(parts[3]) > 9 {
		return false
	}
	for _, p := range parts[1:] {
		for _, r := range p {
			if r < '0' || r > '9' {
				return false
			}
		}
	}
	return true
}
