package qingfeng

import (
	"strings"
	"unicode"
)

// TrimText trims what cannot be seen from both ends of s: white space and format
// characters (zero-width space and joiners, BOM, word joiner, soft hyphen). A text of
// nothing else is empty: "\u200b" is no reason, no description and no message. Every
// required free text (a reason, a description, a note) is checked after it.
func TrimText(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) })
}
