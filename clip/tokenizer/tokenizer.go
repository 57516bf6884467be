// Package tokenizer is OpenAI CLIP's byte-level BPE tokenizer.
//
// It gives the same ids as CLIP's simple_tokenizer for the same text: the
// same vocabulary (bpe_simple_vocab_16e6, embedded), token regex, cleaning,
// lower-casing and merges. DAPO, AnomalyCLIP and WinCLIP all build their
// prompts with it, and novel defect words need the real BPE rather than a
// lookup table (docs/methods.md#clip-tokenizer).
package tokenizer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// The numbers of CLIP's vocabulary and context (docs/methods.md#clip-tokenizer).
const (
	// ContextLength is the fixed token-sequence length of the text tower.
	ContextLength = 77
	// VocabSize is the number of token ids: 256 byte symbols, the same
	// with an end-of-word mark, 48,894 merges and the two special tokens.
	VocabSize = 49408
	// SOT is the id of <|startoftext|>.
	SOT = 49406
	// EOT is the id of <|endoftext|>; it is the largest id, so the
	// end-of-text position of a sequence is its argmax.
	EOT = 49407
	// Pad is the id that fills a sequence after EOT.
	Pad = 0

	numMerges = 49152 - 256 - 2 // merges[1 : 49152-256-2+1] in simple_tokenizer
	endOfWord = "</w>"
)

//go:embed bpe_simple_vocab_16e6.txt.gz
var vocabGz []byte

// ErrTooLong is returned by Tokenize for text whose ids do not fit the
// context without truncation.
var ErrTooLong = errors.New("tokenizer: text longer than the context")

// tokenPattern is CLIP's token regex. The input is lower-cased first and
// its whitespace collapsed to single spaces, so RE2's ASCII \s suffices.
var tokenPattern = regexp.MustCompile(`(?i)<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\pL+|\pN|[^\s\pL\pN]+`)

// VocabSHA256 is the hex sha256 of the embedded vocabulary file, recorded
// in model directories so that prompts are rebuilt with the same ids.
func VocabSHA256() string {
	s := sha256.Sum256(vocabGz)
	return hex.EncodeToString(s[:])
}

type pair struct{ a, b string }

// Tokenizer encodes text to CLIP token ids. It holds only read-only tables
// and is safe for concurrent use.
type Tokenizer struct {
	ids     map[string]int
	symbols []string // id → BPE symbol
	ranks   map[pair]int
	byteSym [256]string
	symByte map[rune]byte
}

// New loads the embedded vocabulary (about 0.1 s).
func New() (*Tokenizer, error) {
	zr, err := gzip.NewReader(bytes.NewReader(vocabGz))
	if err != nil {
		return nil, fmt.Errorf("tokenizer: embedded vocabulary: %w", err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: embedded vocabulary: %w", err)
	}
	return parse(data)
}

func parse(data []byte) (*Tokenizer, error) {
	t := &Tokenizer{
		ids:     make(map[string]int, VocabSize),
		symbols: make([]string, 0, VocabSize),
		ranks:   make(map[pair]int, numMerges),
		symByte: make(map[rune]byte, 256),
	}
	order := byteOrder()
	for b, r := range byteRunes() {
		t.byteSym[b] = string(r)
		t.symByte[r] = byte(b)
	}
	for _, b := range order {
		t.add(t.byteSym[b])
	}
	for _, b := range order {
		t.add(t.byteSym[b] + endOfWord)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<16), 1<<16)
	line := 0
	for sc.Scan() && len(t.ranks) < numMerges {
		line++
		if line == 1 {
			continue // "#version: 0.2"
		}
		a, b, ok := strings.Cut(sc.Text(), " ")
		if !ok || a == "" || b == "" || strings.Contains(b, " ") {
			return nil, fmt.Errorf("tokenizer: vocabulary line %d: want two symbols, got %q", line, sc.Text())
		}
		t.ranks[pair{a, b}] = len(t.ranks)
		t.add(a + b)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokenizer: vocabulary: %w", err)
	}
	if len(t.ranks) != numMerges {
		return nil, fmt.Errorf("tokenizer: vocabulary has %d merges, want %d", len(t.ranks), numMerges)
	}
	t.add("<|startoftext|>")
	t.add("<|endoftext|>")
	if len(t.symbols) != VocabSize {
		return nil, fmt.Errorf("tokenizer: vocabulary has %d symbols, want %d", len(t.symbols), VocabSize)
	}
	return t, nil
}

func (t *Tokenizer) add(sym string) {
	// A later duplicate wins, as in simple_tokenizer's dict(zip(vocab, …)).
	t.ids[sym] = len(t.symbols)
	t.symbols = append(t.symbols, sym)
}

// byteOrder lists the bytes in the order of CLIP's bytes_to_unicode: the
// printable ones (kept as themselves) first, then the rest.
func byteOrder() []int {
	var order []int
	printable := func(b int) bool {
		return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
	}
	for b := 0; b < 256; b++ {
		if printable(b) {
			order = append(order, b)
		}
	}
	for b := 0; b < 256; b++ {
		if !printable(b) {
			order = append(order, b)
		}
	}
	return order
}

// byteRunes maps each byte to its printable stand-in: printable Latin-1
// bytes to themselves, the others to 256, 257, … in byte order.
func byteRunes() [256]rune {
	var m [256]rune
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			m[b] = rune(b)
		} else {
			m[b] = rune(256 + n)
			n++
		}
	}
	return m
}

// Encode returns the BPE ids of text, without SOT/EOT.
func (t *Tokenizer) Encode(text string) []int {
	text = clean(text)
	var out []int
	var sb strings.Builder
	for _, tok := range tokenPattern.FindAllString(text, -1) {
		if tok == "<|startoftext|>" || tok == "<|endoftext|>" {
			out = append(out, t.ids[tok])
			continue
		}
		sb.Reset()
		for i := 0; i < len(tok); i++ {
			sb.WriteString(t.byteSym[tok[i]])
		}
		for _, sym := range t.bpe(sb.String()) {
			out = append(out, t.ids[sym])
		}
	}
	return out
}

// bpe merges the symbols of one token, lowest merge rank first, exactly as
// simple_tokenizer.bpe does.
func (t *Tokenizer) bpe(token string) []string {
	var word []string
	for _, r := range token {
		word = append(word, string(r))
	}
	word[len(word)-1] += endOfWord
	for len(word) > 1 {
		best, bestRank := pair{}, -1
		for i := 0; i+1 < len(word); i++ {
			p := pair{word[i], word[i+1]}
			if r, ok := t.ranks[p]; ok && (bestRank < 0 || r < bestRank) {
				best, bestRank = p, r
			}
		}
		if bestRank < 0 {
			break
		}
		merged := word[:0:0]
		for i := 0; i < len(word); {
			if i+1 < len(word) && word[i] == best.a && word[i+1] == best.b {
				merged = append(merged, best.a+best.b)
				i += 2
			} else {
				merged = append(merged, word[i])
				i++
			}
		}
		word = merged
	}
	return word
}

// Tokenize returns the ContextLength ids [SOT, ids…, EOT, 0…] that
// clip.tokenize gives. Text that does not fit is an error wrapping
// ErrTooLong unless truncate is set; then the ids are cut and the last
// slot is EOT, as in clip.tokenize(truncate=True) and open_clip.
func (t *Tokenizer) Tokenize(text string, truncate bool) ([]int64, error) {
	ids := t.Encode(text)
	out := make([]int64, ContextLength)
	if len(ids)+2 > ContextLength && !truncate {
		return nil, fmt.Errorf("%w: %d tokens with SOT/EOT, context %d: %.40q", ErrTooLong, len(ids)+2, ContextLength, text)
	}
	out[0] = SOT
	n := 1
	for _, id := range ids {
		if n == ContextLength-1 {
			break
		}
		out[n] = int64(id)
		n++
	}
	out[n] = EOT
	return out, nil
}

// EOTIndex returns the position of the end-of-text token of a tokenized
// sequence: its argmax, as every CLIP text tower computes it.
func EOTIndex(tokens []int64) int {
	best := 0
	for i, v := range tokens {
		if v > tokens[best] {
			best = i
		}
	}
	return best
}

// Decode turns ids back into text, end-of-word marks becoming spaces.
// Ids outside the vocabulary are an error.
func (t *Tokenizer) Decode(ids []int) (string, error) {
	var raw []byte
	for _, id := range ids {
		if id < 0 || id >= len(t.symbols) {
			return "", fmt.Errorf("tokenizer: decode: id %d outside the vocabulary [0, %d)", id, len(t.symbols))
		}
		sym := t.symbols[id]
		if id == SOT || id == EOT {
			raw = append(raw, sym...)
			continue
		}
		sym, eow := strings.CutSuffix(sym, endOfWord)
		for _, r := range sym {
			raw = append(raw, t.symByte[r])
		}
		if eow {
			raw = append(raw, ' ')
		}
	}
	return strings.TrimSpace(string(raw)), nil
}
