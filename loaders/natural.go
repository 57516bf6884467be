package loaders

// naturalCompare orders strings with embedded numbers by value, so that the
// unpadded MAD stems sort 0, 1, 2, …, 10 rather than 0, 1, 10, 2. Numbers
// that differ only in zero padding tie-break by padding, after the rest of
// the string.
func naturalCompare(a, b string) int {
	padding := 0
	for a != "" && b != "" {
		if isDigit(a[0]) && isDigit(b[0]) {
			na, ra := digitRun(a)
			nb, rb := digitRun(b)
			ta, tb := trimZeros(na), trimZeros(nb)
			if len(ta) != len(tb) {
				return cmp(len(ta), len(tb))
			}
			if ta != tb {
				if ta < tb {
					return -1
				}
				return 1
			}
			if padding == 0 {
				padding = cmp(len(na), len(nb))
			}
			a, b = ra, rb
			continue
		}
		if a[0] != b[0] {
			return cmp(int(a[0]), int(b[0]))
		}
		a, b = a[1:], b[1:]
	}
	if c := cmp(len(a), len(b)); c != 0 {
		return c
	}
	return padding
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func digitRun(s string) (run, rest string) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

func trimZeros(s string) string {
	for len(s) > 1 && s[0] == '0' {
		s = s[1:]
	}
	return s
}

func cmp(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
