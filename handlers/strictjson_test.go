package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/qingfeng-zj/qingfeng"
)

type strictInner struct {
	Name string `json:"name"`
}

type strictEmbedded struct {
	Note string `json:"note"`
}

type strictTarget struct {
	strictEmbedded
	Category string                 `json:"category"`
	Count    int                    `json:"count"`
	Inner    *strictInner           `json:"inner"`
	Items    []strictInner          `json:"items"`
	Labels   map[string]string      `json:"labels"`
	ByKey    map[string]strictInner `json:"by_key"`
	Untagged string
	Skipped  string `json:"-"`
}

// TestDecodeJSONStrict feeds the one JSON decoder the variants an attacker would try:
// each must be refused with the named field and machine code, and leave the target
// untouched.
func TestDecodeJSONStrict(t *testing.T) {
	cases := []struct {
		name, body, field, code string
	}{
		{"exact keys", `{"category":"a","count":1,"inner":{"name":"x"},"items":[{"name":"y"}],"labels":{"A":"b","a":"c"},"note":"n","Untagged":"u"}`, "", ""},
		{"null pointer", `{"inner":null}`, "", ""},
		{"valid surrogate pair", `{"category":"\ud83d\ude00"}`, "", ""},
		{"escaped quote and backslash", `{"category":"a\\u0000\"b"}`, "", ""},
		{"upper case key", `{"CATEGORY":"x"}`, "CATEGORY", "unknown_field"},
		{"title case key", `{"Category":"x"}`, "Category", "unknown_field"},
		{"lower case of an untagged field", `{"untagged":"x"}`, "untagged", "unknown_field"},
		{"full-width key", `{"ｃａｔｅｇｏｒｙ":"x"}`, "ｃａｔｅｇｏｒｙ", "unknown_field"},
		{"zero-width space in key", "{\"category\u200b\":\"x\"}", "category\u200b", "unknown_field"},
		{"kelvin sign folds to k in encoding/json", "{\"\u212aey\":\"x\"}", "\u212aey", "unknown_field"},
		{"skipped field", `{"Skipped":"x"}`, "Skipped", "unknown_field"},
		{"nested case variant", `{"inner":{"NAME":"x"}}`, "inner.NAME", "unknown_field"},
		{"case variant in array element", `{"items":[{"name":"a"},{"Name":"b"}]}`, "items[1].Name", "unknown_field"},
		{"case variant in map value", `{"by_key":{"k":{"Name":"b"}}}`, "by_key.k.Name", "unknown_field"},
		{"duplicate key", `{"category":"a","category":"b"}`, "category", "duplicate_field"},
		{"duplicate via escape", `{"category":"a","c\u0061tegory":"b"}`, "category", "duplicate_field"},
		{"nested duplicate", `{"inner":{"name":"a","name":"b"}}`, "inner.name", "duplicate_field"},
		{"duplicate in array element", `{"items":[{"name":"a","name":"b"}]}`, "items[0].name", "duplicate_field"},
		{"duplicate map key", `{"labels":{"a":"1","a":"2"}}`, "labels.a", "duplicate_field"},
		{"invalid UTF-8 byte in value", "{\"category\":\"a\xffb\"}", "(body)", "invalid_utf8"},
		{"invalid UTF-8 in key", "{\"cat\xc3\":\"a\"}", "(body)", "invalid_utf8"},
		{"overlong encoding", "{\"category\":\"\xc0\xaf\"}", "(body)", "invalid_utf8"},
		{"lone high surrogate", `{"category":"a\ud800b"}`, "category", "invalid_utf8"},
		{"lone low surrogate", `{"category":"\udc00"}`, "category", "invalid_utf8"},
		{"high surrogate at end", `{"category":"\ud83d"}`, "category", "invalid_utf8"},
		{"escaped NUL in value", `{"category":"a\u0000b"}`, "category", "nul_character"},
		{"escaped NUL in nested value", `{"inner":{"name":"\u0000"}}`, "inner.name", "nul_character"},
		{"escaped NUL in key", `{"cate\u0000gory":"a"}`, "(body)", "nul_character"},
		{"escaped NUL in map value", `{"labels":{"a":"\u0000"}}`, "labels.a", "nul_character"},
		{"null for a string", `{"category":null}`, "category", "null_not_allowed"},
		{"null for a number", `{"count":null}`, "count", "null_not_allowed"},
		{"null for a slice", `{"items":null}`, "items", "null_not_allowed"},
		{"null array element", `{"items":[null]}`, "items[0]", "null_not_allowed"},
		{"null map value", `{"labels":{"a":null}}`, "labels.a", "null_not_allowed"},
		{"null body", `null`, "(body)", "null_not_allowed"},
		{"unknown field", `{"extra":1}`, "extra", "unknown_field"},
		{"wrong type", `{"category":{"$gt":""}}`, "category", "wrong_type"},
		{"raw NUL byte", "{\"category\":\"a\x00\"}", "", qingfeng.EINVALID},
		{"trailing data", `{"category":"a"} {"category":"b"}`, "", qingfeng.EINVALID},
		{"empty", ``, "", qingfeng.EINVALID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var v strictTarget
			err := decodeJSONBytes([]byte(tc.body), &v)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("decode %s: %v", tc.body, err)
				}
				return
			}
			var qe *qingfeng.Error
			if !errors.As(err, &qe) || qe.Code != qingfeng.EINVALID {
				t.Fatalf("decode %q: got %v, want an %s error", tc.body, err, qingfeng.EINVALID)
			}
			if tc.field != "" {
				fe, ok := qe.Fields[tc.field]
				if !ok || fe.Code != tc.code {
					t.Fatalf("decode %q: fields %v, want %s: %s", tc.body, qe.Fields, tc.field, tc.code)
				}
				if fe.Message == "" || fe.Message == fe.English {
					t.Errorf("field error %v has no Chinese message", fe)
				}
			}
			if v.Category != "" || v.Inner != nil || v.Items != nil || v.Labels != nil {
				t.Errorf("refused body %q still changed the target: %+v", tc.body, v)
			}
		})
	}
}

// TestDecodeJSONStrictRequests runs the request types of the API through the decoder.
func TestDecodeJSONStrictRequests(t *testing.T) {
	var r reportRequest
	if err := decodeJSONBytes([]byte(`{"category":"other","CATEGORY":"official_discipline"}`), &r); err == nil {
		t.Fatalf("a case variant of category was accepted: %+v", r)
	}
	if err := decodeJSONBytes([]byte(`{"subject":{"person":{"name":"a","name":"b"}}}`), &r); err == nil {
		t.Fatalf("a nested duplicate was accepted: %+v", r)
	}
	if err := decodeJSONBytes([]byte(`{"location":{"division":"330782","lat":null}}`), &r); err != nil {
		t.Fatalf("null for an optional coordinate: %v", err)
	}
	var a assignRequest
	if err := decodeJSONBytes([]byte(`{"assignee":null}`), &a); err == nil {
		t.Fatal(`{"assignee":null} was accepted`)
	}
}

func FuzzDecodeJSONStrict(f *testing.F) {
	for _, s := range []string{`{"category":"a"}`, `{"inner":{"name":"\ud800"}}`, `{"items":[{"name":"a"}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v strictTarget
		if err := decodeJSONBytes(b, &v); err != nil {
			if !reflect.DeepEqual(v, strictTarget{}) {
				t.Fatalf("refused %q but changed the target: %+v", b, v)
			}
			return
		}
		// What the strict decoder accepts, encoding/json reads the same way, and it is
		// valid UTF-8 without NUL.
		var want strictTarget
		if err := json.Unmarshal(b, &want); err != nil || !reflect.DeepEqual(v, want) {
			t.Fatalf("accepted %q as %+v; encoding/json: %+v %v", b, v, want, err)
		}
		if !utf8.Valid(b) || strings.ContainsRune(fmt.Sprint(v), 0) {
			t.Fatalf("accepted %q with invalid UTF-8 or NUL", b)
		}
	})
}

// TestDecodeJSONStrictProperty builds random objects from exact keys, case variants,
// look-alike keys and repeats, in random order and nesting, and checks the decoder
// accepts exactly those with only exact, unique keys, decoding them as encoding/json
// does. Seeded, so a failure names a reproducible case.
func TestDecodeJSONStrictProperty(t *testing.T) {
	type member struct{ key, value string }
	variants := func(r *rand.Rand, key string) string {
		switch r.IntN(5) {
		case 0:
			return strings.ToUpper(key)
		case 1:
			return strings.ToUpper(key[:1]) + key[1:]
		case 2:
			return key + "\u200b"
		case 3:
			return strings.Replace(key, "a", "ａ", 1) + "x"
		}
		return key + "_"
	}
	for seed := uint64(1); seed <= 3000; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		bad := false
		var members []member
		seen := map[string]bool{}
		add := func(key, value string) {
			switch n := r.IntN(10); {
			case n == 0:
				key, bad = variants(r, key), true
			case n == 1 && len(members) > 0:
				m := members[r.IntN(len(members))]
				key, value = m.key, m.value
			}
			if seen[key] {
				bad = true
			}
			seen[key] = true
			members = append(members, member{key, value})
		}
		inner := func() string {
			if r.IntN(4) == 0 {
				return `{"name":"x","name":"y"}`
			}
			return `{"name":"n` + strconv.Itoa(r.IntN(9)) + `"}`
		}
		for _, k := range r.Perm(5) {
			switch k {
			case 0:
				add("category", `"c`+strconv.Itoa(r.IntN(9))+`"`)
			case 1:
				add("count", strconv.Itoa(r.IntN(100)))
			case 2:
				v := inner()
				add("inner", v)
			case 3:
				add("items", "["+inner()+","+inner()+"]")
			case 4:
				add("note", `"n"`)
			}
		}
		var b strings.Builder
		b.WriteString("{")
		for i, m := range members {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(strconv.Quote(m.key) + ":" + m.value)
			if strings.Contains(m.value, `"name":"x","name":"y"`) {
				bad = true
			}
		}
		b.WriteString("}")
		body := b.String()
		var got strictTarget
		err := decodeJSONBytes([]byte(body), &got)
		if bad != (err != nil) {
			t.Fatalf("seed %d: %s: refused=%v (%v), want refused=%v", seed, body, err != nil, err, bad)
		}
		if err == nil {
			var want strictTarget
			if err := json.Unmarshal([]byte(body), &want); err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d: %s: decoded %+v, encoding/json %+v (%v)", seed, body, got, want, err)
			}
		}
	}
}

// TestDecodeJSONStrictConcurrent decodes from 32 goroutines at once (the field cache is
// shared), each with accepted and refused bodies, repeatedly.
func TestDecodeJSONStrictConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				var ok, bad reportRequest
				if err := decodeJSONBytes([]byte(`{"category":"other","subject":{"kind":"person","person":{"name":"a"}}}`), &ok); err != nil || ok.Subject.Person.Name != "a" {
					errs <- fmt.Sprint("accepted body: ", err)
					return
				}
				if err := decodeJSONBytes([]byte(`{"category":"other","subject":{"kind":"person","person":{"NAME":"a"}}}`), &bad); err == nil {
					errs <- "a case variant was accepted"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
