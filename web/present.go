package web

import (
	"reflect"
	"strings"
	"time"
)

// presenter shapes every answer the same way: each time in the hotline's
// zone with its offset (RFC 3339, "2026-11-27T10:00:00+08:00"), whatever
// the zone of the node or of the store that read it, and each caller's
// number masked for roles that do not need it. Numbers are the string
// fields tagged pii:"phone".
type presenter struct {
	loc  *time.Location
	mask bool
}

// present returns a copy of v shaped by p; v itself is not changed.
func (p presenter) present(v any) any {
	src := reflect.ValueOf(v)
	if !src.IsValid() {
		return v
	}
	dst := reflect.New(src.Type()).Elem()
	p.copy(dst, src)
	return dst.Interface()
}

// copy sets dst, a settable value of src's type, to src shaped.
func (p presenter) copy(dst, src reflect.Value) {
	if src.Type() == timeType {
		t := src.Interface().(time.Time)
		if !t.IsZero() {
			t = t.In(p.loc)
		}
		dst.Set(reflect.ValueOf(t))
		return
	}
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		n := reflect.New(src.Type().Elem())
		p.copy(n.Elem(), src.Elem())
		dst.Set(n)
	case reflect.Interface:
		if src.IsNil() {
			return
		}
		n := reflect.New(src.Elem().Type()).Elem()
		p.copy(n, src.Elem())
		dst.Set(n)
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		n := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := range src.Len() {
			p.copy(n.Index(i), src.Index(i))
		}
		dst.Set(n)
	case reflect.Map:
		if src.IsNil() {
			return
		}
		n := reflect.MakeMapWithSize(src.Type(), src.Len())
		for it := src.MapRange(); it.Next(); {
			v := reflect.New(src.Type().Elem()).Elem()
			p.copy(v, it.Value())
			n.SetMapIndex(it.Key(), v)
		}
		dst.Set(n)
	case reflect.Struct:
		// The whole struct first, unexported fields too; then the
		// exported ones shaped, which encoding/json is all that reads.
		dst.Set(src)
		t := src.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			if p.mask && f.Tag.Get("pii") == "phone" && f.Type.Kind() == reflect.String {
				dst.Field(i).SetString(MaskNumber(src.Field(i).String()))
				continue
			}
			p.copy(dst.Field(i), src.Field(i))
		}
	default:
		dst.Set(src)
	}
}

// MaskNumber hides the middle of a telephone number as Chinese services
// do: the first three and last four digits of the 11-digit number stay
// (13800138000 → 138****8000, +8613800138000 → +86138****8000); a
// shorter number keeps only its last two digits, and a name none. What
// precedes the digits (a "+" or "sip:") stays, anything after an "@"
// goes.
func MaskNumber(s string) string {
	if s == "" {
		return s
	}
	if i := strings.IndexByte(s, '@'); i >= 0 {
		s = s[:i]
	}
	b := []byte(s)
	var digits []int
	for i, c := range b {
		if c >= '0' && c <= '9' {
			digits = append(digits, i)
		}
	}
	if len(digits) == 0 {
		// A name ("anonymous", a SIP user) is not a number, but may
		// still say who called.
		return "****"
	}
	// A country code before an 11-digit number (+86) stays too.
	keepHead, keepTail := 3+len(digits)-11, 4
	if len(digits) < 11 {
		keepHead, keepTail = 0, 2
	}
	for k, i := range digits {
		if k >= keepHead && k < len(digits)-keepTail {
			b[i] = '*'
		}
	}
	return string(b)
}
