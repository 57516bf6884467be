package cliflag

import (
	"fmt"
	"strconv"
	"strings"
)

// Strings collects a repeated flag (--image a --image b), in order.
type Strings []string

func (s *Strings) String() string     { return strings.Join(*s, ",") }
func (s *Strings) Set(v string) error { *s = append(*s, v); return nil }

// Ints is a comma-separated list of integers (--feature-layers 6,12,18);
// the last use of the flag wins.
type Ints []int

func (s *Ints) String() string {
	var parts []string
	for _, v := range *s {
		parts = append(parts, strconv.Itoa(v))
	}
	return strings.Join(parts, ",")
}

func (s *Ints) Set(v string) error {
	*s = nil
	for _, p := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return fmt.Errorf("want comma-separated integers, got %q", v)
		}
		*s = append(*s, n)
	}
	return nil
}
