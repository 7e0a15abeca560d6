package handlers

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/qingfeng-zj/qingfeng"
)

// checkStrictJSON walks body token by token against the shape of target's type and
// refuses what encoding/json would quietly accept: keys that match a field only
// case-insensitively ("CATEGORY" for "category"), duplicate keys at any depth (where
// the last one would win), invalid UTF-8 or lone UTF-16 surrogates (replaced by
// U+FFFD), NUL characters, and null for a field that is not a pointer (null would
// leave the zero value, e.g. unassign a case). Type errors, unknown fields of types with
// their own decoding, and trailing data are left to the decoder that runs after it.
func checkStrictJSON(body []byte, target reflect.Type) error {
	if !utf8.Valid(body) {
		return fieldProblem("(body)", problemUTF8)
	}
	w := &strictWalker{body: body, dec: json.NewDecoder(bytes.NewReader(body))}
	w.dec.UseNumber()
	if err := w.value(target, ""); err != nil {
		var qe *qingfeng.Error
		if errors.As(err, &qe) {
			return qe
		}
		// Syntax errors: the decoder reports them with the right message.
		return nil
	}
	return nil
}

type strictProblem struct{ code, zh, en string }

var (
	problemUnknown   = strictProblem{"unknown_field", "不支持的字段（字段名须与文档完全一致，区分大小写）", "unknown field (names are exact and case-sensitive)"}
	problemDuplicate = strictProblem{"duplicate_field", "字段重复出现", "the field appears more than once"}
	problemUTF8      = strictProblem{"invalid_utf8", "含有无效的 UTF-8 编码", "contains invalid UTF-8"}
	problemNUL       = strictProblem{"nul_character", "不得包含空字符（U+0000）", "must not contain a NUL character (U+0000)"}
	problemNull      = strictProblem{"null_not_allowed", "不能为 null", "must not be null"}
)

func fieldProblem(field string, p strictProblem) *qingfeng.Error {
	if field == "" {
		field = "(body)"
	}
	return qingfeng.Invalid(map[string]qingfeng.FieldError{field: {Code: p.code, Message: p.zh, English: p.en}})
}

type strictWalker struct {
	body []byte
	dec  *json.Decoder
	// end is the input offset after the last token read.
	end int64
}

func (w *strictWalker) token(path string) (json.Token, error) {
	start := w.end
	tok, err := w.dec.Token()
	if err != nil {
		return nil, err
	}
	w.end = w.dec.InputOffset()
	if s, ok := tok.(string); ok {
		if strings.IndexByte(s, 0) >= 0 {
			return nil, fieldProblem(path, problemNUL)
		}
		if !validEscapes(w.body[start:w.end]) {
			return nil, fieldProblem(path, problemUTF8)
		}
	}
	return tok, nil
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// value checks the next JSON value against t (nil: anything).
func (w *strictWalker) value(t reflect.Type, path string) error {
	tok, err := w.token(path)
	if err != nil {
		return err
	}
	nullable := t == nil
	for t != nil && t.Kind() == reflect.Pointer {
		nullable = true
		t = t.Elem()
	}
	if t != nil && (t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler)) {
		nullable, t = true, nil
	}
	switch tok := tok.(type) {
	case nil:
		if !nullable {
			return fieldProblem(path, problemNull)
		}
		return nil
	case json.Delim:
		switch tok {
		case '{':
			return w.object(t, path)
		case '[':
			var elem reflect.Type
			if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
				elem = t.Elem()
			}
			for i := 0; w.dec.More(); i++ {
				if err := w.value(elem, path+"["+strconv.Itoa(i)+"]"); err != nil {
					return err
				}
			}
			_, err := w.token(path)
			return err
		}
	}
	return nil
}

func (w *strictWalker) object(t reflect.Type, path string) error {
	var fields map[string]reflect.Type
	var elem reflect.Type
	checkNames := false
	if t != nil {
		switch t.Kind() {
		case reflect.Struct:
			fields, checkNames = structFields(t), true
		case reflect.Map:
			elem = t.Elem()
		}
	}
	seen := map[string]bool{}
	for w.dec.More() {
		tok, err := w.token(path)
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		name := key
		if path != "" {
			name = path + "." + key
		}
		if seen[key] {
			return fieldProblem(name, problemDuplicate)
		}
		seen[key] = true
		ft := elem
		if checkNames {
			var ok bool
			if ft, ok = fields[key]; !ok {
				return fieldProblem(name, problemUnknown)
			}
		}
		if err := w.value(ft, name); err != nil {
			return err
		}
	}
	_, err := w.token(path)
	return err
}

var structFieldCache sync.Map // reflect.Type → map[string]reflect.Type

// structFields maps the exact JSON names of t's fields (promoting embedded structs'
// fields, as encoding/json does) to their types.
func structFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := structFieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || len(f.Index) > 1 && !promoted(t, f.Index) {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && indirect(f.Type).Kind() == reflect.Struct {
			continue // its fields are listed themselves
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	structFieldCache.Store(t, m)
	return m
}

// promoted says whether every struct on the way to a nested field is embedded without a
// JSON name of its own.
func promoted(t reflect.Type, index []int) bool {
	for _, i := range index[:len(index)-1] {
		f := indirect(t).Field(i)
		if !f.Anonymous {
			return false
		}
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" {
			return false
		}
		t = f.Type
	}
	return true
}

func indirect(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// validEscapes says whether the \u escapes in raw (a string token with whatever
// separators precede it) form valid UTF-16: no lone surrogate, which encoding/json would
// turn into U+FFFD.
func validEscapes(raw []byte) bool {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		if i+1 < len(raw) && raw[i+1] != 'u' {
			i++ // \" \\ \n …
			continue
		}
		r, ok := hex4(raw, i+2)
		if !ok {
			return true // the decoder reports the syntax error
		}
		i += 5
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return false
		case r >= 0xD800 && r <= 0xDBFF:
			if i+2 >= len(raw) || raw[i+1] != '\\' || raw[i+2] != 'u' {
				return false
			}
			lo, ok := hex4(raw, i+3)
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return false
			}
			i += 6
		}
	}
	return true
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[at:at+4]), 16, 32)
	return rune(v), err == nil
}
