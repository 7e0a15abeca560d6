package handlers

import (
	"slices"
	"strings"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng"
)

// codeMethodNotAllowed is the error code of a known path asked with a method it does
// not serve. It is HTTP's own concern, so it lives here and not in the domain's
// vocabulary.
const codeMethodNotAllowed = "method_not_allowed"

var errMethodNotAllowed = qingfeng.Errorf(codeMethodNotAllowed, "该接口不支持此请求方法，请查看 Allow 响应头", "method not allowed; see the Allow header")

// methodGuard answers 405 with an Allow header for a known path asked with a method it
// does not serve, before any route group's authentication runs: which methods a path
// serves is in the public API document, and a client mistaking PATCH for PUT should be
// told so, not told to log in. Paths no route serves pass on unchanged.
func (s *Server) methodGuard(c fiber.Ctx) error {
	s.routeOnce.Do(func() { s.routes = routePatterns(s.App) })
	method := c.Method()
	if method == fiber.MethodOptions {
		return c.Next()
	}
	var allow []string
	segs := splitPath(c.Path())
	for _, r := range s.routes {
		if !r.matches(segs) {
			continue
		}
		if r.method == method {
			return c.Next()
		}
		allow = append(allow, r.method)
	}
	if len(allow) == 0 {
		return c.Next()
	}
	slices.Sort(allow)
	c.Set(fiber.HeaderAllow, strings.Join(slices.Compact(allow), ", "))
	return errMethodNotAllowed
}

type routePattern struct {
	method   string
	segments []string
}

// routePatterns lists the served routes (not middleware) by method and path segments.
func routePatterns(app *fiber.App) []routePattern {
	var out []routePattern
	for _, r := range app.GetRoutes(true) {
		out = append(out, routePattern{method: r.Method, segments: splitPath(r.Path)})
	}
	return out
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// matches says whether a request path, split into segments, is one the route serves. It
// follows Fiber's defaults: paths are case-insensitive, a trailing slash does
// not matter, ":name" is one non-empty segment and "*" the rest.
func (r routePattern) matches(segs []string) bool {
	for i, want := range r.segments {
		if want == "*" {
			return true
		}
		if i >= len(segs) {
			return false
		}
		switch {
		case strings.HasPrefix(want, ":"):
			if segs[i] == "" {
				return false
			}
		case !strings.EqualFold(want, segs[i]):
			return false
		}
	}
	return len(segs) == len(r.segments)
}
