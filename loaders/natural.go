package loaders

// naturalCompare orders strings with embedded numbers by value, so that the
// unpadded MAD stems sort 0, 1, 2, …, 10 rather than 0, 1, 10, 2.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		ad, bd := isDigit(a[0]), isDigit(b[0])
		switch {
		case ad && bd:
			na, ra := digitRun(a)
			nb, rb := digitRun(b)
			// Compare numerically: strip leading zeros, then by length, then
			// lexically; equal values with different padding order by padding.
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
			if len(na) != len(nb) {
				return cmp(len(na), len(nb))
			}
			a, b = ra, rb
		default:
			if a[0] != b[0] {
				return cmp(int(a[0]), int(b[0]))
			}
			a, b = a[1:], b[1:]
		}
	}
	return cmp(len(a), len(b))
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
