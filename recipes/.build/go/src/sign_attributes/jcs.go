package main

// RFC 8785 JSON Canonicalization Scheme (JCS) for JSON text. No JCS module could be
// installed where these recipes are tested, so this is a small, complete implementation,
// checked against the shared test vectors.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
)

// Canonicalize parses JSON text and returns its canonical form.
func Canonicalize(text []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber() // keep each number's text until we format it ourselves
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var b strings.Builder
	if err := write(&b, v); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

func write(b *strings.Builder, v any) error {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		// Keys sorted by their UTF-16 code units, as JavaScript sorts strings (Go's own
		// string order is by UTF-8 bytes, which differs for characters beyond U+FFFF).
		sort.Slice(keys, func(i, j int) bool { return lessUTF16(keys[i], keys[j]) })
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			if err := write(b, v[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := write(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case string:
		writeString(b, v)
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return err
		}
		if !strings.ContainsAny(string(v), ".eE") && math.Abs(f) > 1<<53-1 {
			return fmt.Errorf("integer %s is beyond ±(2^53-1)", v)
		}
		b.WriteString(formatNumber(f))
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case nil:
		b.WriteString("null")
	}
	return nil
}

func lessUTF16(a, b string) bool {
	ua, ub := utf16.Encode([]rune(a)), utf16.Encode([]rune(b))
	for i := 0; i < len(ua) && i < len(ub); i++ {
		if ua[i] != ub[i] {
			return ua[i] < ub[i]
		}
	}
	return len(ua) < len(ub)
}

// writeString escapes only ", \ and control characters; everything else is written raw
// (encoding/json would also escape <, >, &, U+2028 and U+2029).
func writeString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 {
				fmt.Fprintf(b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

// formatNumber spells a double as JavaScript's Number#toString does (ECMA-262).
func formatNumber(f float64) string {
	if f == 0 {
		return "0" // also -0
	}
	// Shortest round-trip digits, then JavaScript's choice of plain or exponent notation.
	abs := math.Abs(f)
	var s string
	if abs >= 1e21 || abs < 1e-6 {
		s = strconv.FormatFloat(f, 'e', -1, 64) // e.g. 1e+21, 1e-07
		mant, exp, _ := strings.Cut(s, "e")
		sign, digits := exp[:1], strings.TrimLeft(exp[1:], "0")
		s = mant + "e" + sign + digits
	} else {
		s = strconv.FormatFloat(f, 'f', -1, 64)
	}
	return s
}
