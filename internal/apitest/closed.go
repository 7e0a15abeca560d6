package apitest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// CheckClosedResponses fails t for every object schema reachable from a JSON response
// that names its properties but does not forbid others (additionalProperties: false).
// Closed response objects are what make a field added on the server, or renamed on
// either side, fail CheckResponse instead of slipping through. Objects used as maps
// (additionalProperties: <schema>) are fine.
func (s *Spec) CheckClosedResponses(t testing.TB) {
	t.Helper()
	b, err := os.ReadFile(s.path)
	if err != nil {
		t.Fatalf("apitest: %v", err)
		return
	}
	var root map[string]any
	if err := yaml.Unmarshal(b, &root); err != nil {
		t.Fatalf("apitest: parse %s: %v", s.path, err)
		return
	}
	c := closedChecker{root: root, seen: map[string]bool{}}
	paths, _ := root["paths"].(map[string]any)
	for _, p := range sortedKeys(paths) {
		item, _ := paths[p].(map[string]any)
		for _, method := range sortedKeys(item) {
			op, _ := item[method].(map[string]any)
			responses, _ := op["responses"].(map[string]any)
			for _, status := range sortedKeys(responses) {
				resp, where := c.resolve(responses[status], strings.ToUpper(method)+" "+p+" "+status)
				content, _ := resp["content"].(map[string]any)
				for _, mt := range sortedKeys(content) {
					if !isJSON(mt) {
						continue
					}
					media, _ := content[mt].(map[string]any)
					if schema, ok := media["schema"]; ok {
						c.walk(schema, where)
					}
				}
			}
		}
	}
	for _, p := range c.open {
		t.Errorf("%s: response object %s lists properties but not additionalProperties: false", filepath.Base(s.path), p)
	}
}

type closedChecker struct {
	root map[string]any
	seen map[string]bool
	open []string
}

// resolve follows a local $ref, returning the target and a name for messages.
func (c *closedChecker) resolve(v any, where string) (map[string]any, string) {
	m, _ := v.(map[string]any)
	for range 10 {
		ref, ok := m["$ref"].(string)
		if !ok {
			break
		}
		where = ref
		var cur any = c.root
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
			cm, _ := cur.(map[string]any)
			cur = cm[part]
		}
		m, _ = cur.(map[string]any)
	}
	return m, where
}

func (c *closedChecker) walk(v any, where string) {
	if m, ok := v.(map[string]any); ok {
		if ref, ok := m["$ref"].(string); ok {
			if c.seen[ref] {
				return
			}
			c.seen[ref] = true
		}
	}
	m, where := c.resolve(v, where)
	if m == nil {
		return
	}
	if props, ok := m["properties"].(map[string]any); ok {
		switch ap := m["additionalProperties"].(type) {
		case bool:
			if ap {
				c.open = append(c.open, where)
			}
		case map[string]any:
			c.walk(ap, where+".additionalProperties")
		default:
			if _, ok := m["unevaluatedProperties"]; !ok {
				c.open = append(c.open, where)
			}
		}
		for _, k := range sortedKeys(props) {
			c.walk(props[k], where+"."+k)
		}
	} else if ap, ok := m["additionalProperties"].(map[string]any); ok {
		c.walk(ap, where+".additionalProperties")
	}
	if items, ok := m["items"]; ok {
		c.walk(items, where+"[]")
	}
	for _, k := range []string{"allOf", "anyOf", "oneOf"} {
		list, _ := m[k].([]any)
		for i, sub := range list {
			c.walk(sub, fmt.Sprintf("%s.%s[%d]", where, k, i))
		}
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
