package tokenizer

import (
	"html"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// clean is CLIP's basic_clean + whitespace_clean + lower().
//
// CLIP runs ftfy.fix_text first. ftfy is a large Python library with no Go
// counterpart; clean applies the part of it that can change ordinary
// prompts (curly quotes, Latin ligatures, full-width ASCII, NFC) and skips
// mojibake repair. The reference script testdata/gen_vectors.py applies the
// same subset.
func clean(text string) string {
	text = strings.ToValidUTF8(text, "\uFFFD")
	text = ftfySubset(text)
	text = html.UnescapeString(html.UnescapeString(text))
	text = strings.Join(strings.FieldsFunc(text, isPySpace), " ")
	return pyLower(text)
}

// ligatures are the Latin ligatures ftfy expands (fix_latin_ligatures).
var ligatures = map[rune]string{
	'\u0132': "IJ", '\u0133': "ij", '\u0149': "\u02bcn",
	'\u01c7': "LJ", '\u01c8': "Lj", '\u01c9': "lj",
	'\u01ca': "NJ", '\u01cb': "Nj", '\u01cc': "nj",
	'\ufb00': "ff", '\ufb01': "fi", '\ufb02': "fl", '\ufb03': "ffi",
	'\ufb04': "ffl", '\ufb05': "\u017ft", '\ufb06': "st",
}

func ftfySubset(text string) string {
	var sb strings.Builder
	sb.Grow(len(text))
	for _, r := range text {
		switch {
		case r == '\u02bc' || (r >= '\u2018' && r <= '\u201b'):
			sb.WriteByte('\'')
		case r >= '\u201c' && r <= '\u201f':
			sb.WriteByte('"')
		case r >= '\uff01' && r <= '\uff5e':
			sb.WriteRune(r - 0xff01 + 0x21)
		case r == '\u3000':
			sb.WriteByte(' ')
		default:
			if l, ok := ligatures[r]; ok {
				sb.WriteString(l)
			} else {
				sb.WriteRune(r)
			}
		}
	}
	return norm.NFC.String(sb.String())
}

// isPySpace is Python's str.isspace, which CLIP's whitespace_clean uses:
// Go's unicode.IsSpace plus the information separators U+001C–U+001F.
func isPySpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// pyLower is Python's str.lower: the simple lower-case mapping, plus the
// two rules Go's strings.ToLower lacks: U+0130 'İ' becomes "i̇", and a
// capital sigma at the end of a word becomes 'ς' (Final_Sigma).
func pyLower(s string) string {
	var sb strings.Builder
	sb.Grow(len(s))
	for i, r := range s {
		switch r {
		case '\u0130':
			sb.WriteString("i\u0307")
		case '\u03a3':
			if finalSigma(s, i) {
				sb.WriteRune('\u03c2')
			} else {
				sb.WriteRune('\u03c3')
			}
		default:
			sb.WriteRune(unicode.ToLower(r))
		}
	}
	return sb.String()
}

// finalSigma reports whether the sigma at byte i is preceded by a cased
// letter and not followed by one, skipping case-ignorable characters, as
// CPython's handle_capital_sigma does.
func finalSigma(s string, i int) bool {
	j := i
	before := false
	for j > 0 {
		r, n := utf8.DecodeLastRuneInString(s[:j])
		j -= n
		if !caseIgnorable(r) {
			before = cased(r)
			break
		}
	}
	if !before {
		return false
	}
	for _, r := range s[i+len("\u03a3"):] {
		if !caseIgnorable(r) {
			return !cased(r)
		}
	}
	return true
}

func cased(r rune) bool {
	return unicode.In(r, unicode.Lu, unicode.Ll, unicode.Lt, unicode.Other_Lowercase, unicode.Other_Uppercase)
}

// caseIgnorable approximates Unicode's Case_Ignorable: the marks, format
// characters, modifiers, and the word-internal punctuation of Word_Break.
func caseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', '\u00b7', '\u0387', '\u05f4', '\u2018', '\u2019', '\u2024', '\u2027',
		'\ufe13', '\ufe52', '\ufe55', '\uff07', '\uff0e', '\uff1a':
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}
