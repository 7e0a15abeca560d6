package migrate

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"reflect"
	"sort"
	"time"
)

var timeType = reflect.TypeFor[time.Time]()

// Equal reports whether a and b hold the same content by the measure Verify uses
// (digest): every exported field equal, nil and empty alike, times as instants.
func Equal(a, b any) bool { return digest(a) == digest(b) }

// digest is the SHA-256 of v's content as the domain sees it: every exported field,
// by name, recursively. It is blind to what the two stores represent differently
// without a difference in meaning — a nil and an empty slice or map, a time's
// location (times are compared as instants, to the millisecond both keep) — and to
// nothing else: a field that differs in value differs in digest.
func digest(v any) string {
	h := sha256.New()
	write(h, reflect.ValueOf(v))
	return string(h.Sum(nil)) // 32 bytes, not hex: Verify holds one per record
}

func write(h hash.Hash, v reflect.Value) {
	if !v.IsValid() {
		fmt.Fprint(h, "nil;")
		return
	}
	if v.Type() == timeType {
		t := v.Interface().(time.Time)
		if t.IsZero() {
			fmt.Fprint(h, "t0;")
		} else {
			fmt.Fprintf(h, "t%d;", t.UnixMilli())
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			fmt.Fprint(h, "nil;")
			return
		}
		write(h, v.Elem())
	case reflect.Struct:
		fmt.Fprint(h, "{")
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			fmt.Fprintf(h, "%s:", f.Name)
			write(h, v.Field(i))
		}
		fmt.Fprint(h, "}")
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			fmt.Fprintf(h, "b%x;", v.Bytes())
			return
		}
		fmt.Fprintf(h, "[%d:", v.Len())
		for i := range v.Len() {
			write(h, v.Index(i))
		}
		fmt.Fprint(h, "]")
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		fmt.Fprintf(h, "(%d:", len(keys))
		for _, k := range keys {
			write(h, k)
			write(h, v.MapIndex(k))
		}
		fmt.Fprint(h, ")")
	case reflect.String:
		fmt.Fprintf(h, "%q;", v.String())
	default:
		fmt.Fprintf(h, "%v;", v.Interface())
	}
}
