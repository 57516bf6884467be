package clip

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// scanPickle walks a pickle's opcodes without building anything and
// refuses one whose declared lengths (strings, bytes, longs, frames) run
// past its end. The unpickler allocates a declared length before reading
// it; after this scan no allocation can exceed the pickle's own size, so a
// few crafted bytes cannot claim gigabytes. Unknown opcodes are refused
// too. Opcodes and their arguments are those of CPython's
// Lib/pickletools.py (protocols 0 to 5).
func scanPickle(p []byte) error {
	for i := 0; i < len(p); {
		op := p[i]
		at := i
		i++
		need := func(n uint64) error {
			if n > uint64(len(p)-i) {
				return fmt.Errorf("pickle opcode 0x%02x at byte %d declares %d bytes, %d remain", op, at, n, len(p)-i)
			}
			i += int(n)
			return nil
		}
		// counted reads a little-endian length of w bytes, then that
		// many bytes.
		counted := func(w int) error {
			if err := need(uint64(w)); err != nil {
				return err
			}
			var n uint64
			switch w {
			case 1:
				n = uint64(p[i-1])
			case 4:
				n = uint64(binary.LittleEndian.Uint32(p[i-4:]))
			case 8:
				n = binary.LittleEndian.Uint64(p[i-8:])
			}
			return need(n)
		}
		line := func() error {
			j := bytes.IndexByte(p[i:], '\n')
			if j < 0 {
				return fmt.Errorf("pickle opcode 0x%02x at byte %d: no end of line", op, at)
			}
			i += j + 1
			return nil
		}
		var err error
		switch op {
		case '(', '.', '0', '1', '2', 'N', 'R', 'a', 'b', 'd', '}', 'e', 'l', ']', 'o', 's', 't', ')', 'u',
			0x81, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 'Q', 0x97, 0x98:
			// no argument
			if op == '.' {
				return nil // STOP: the rest of the record is not read
			}
		case 'K', 'h', 'q', 0x80, 0x82:
			err = need(1)
		case 'M', 0x83:
			err = need(2)
		case 'J', 'j', 'r', 0x84:
			err = need(4)
		case 'G':
			err = need(8)
		case 0x95: // FRAME: its size must fit; the framed opcodes follow
			if err = need(8); err == nil && binary.LittleEndian.Uint64(p[i-8:]) > uint64(len(p)-i) {
				err = fmt.Errorf("pickle frame at byte %d declares %d bytes, %d remain", at, binary.LittleEndian.Uint64(p[i-8:]), len(p)-i)
			}
		case 0x8a, 'U', 0x8c, 'C': // LONG1, SHORT_BINSTRING, SHORT_BINUNICODE, SHORT_BINBYTES
			err = counted(1)
		case 0x8b, 'T', 'X', 'B': // LONG4, BINSTRING, BINUNICODE, BINBYTES
			err = counted(4)
		case 0x8d, 0x8e, 0x96: // BINUNICODE8, BINBYTES8, BYTEARRAY8
			err = counted(8)
		case 'I', 'L', 'F', 'S', 'V', 'P', 'g', 'p':
			err = line()
		case 'c', 'i': // GLOBAL, INST: module and name lines
			if err = line(); err == nil {
				err = line()
			}
		default:
			return fmt.Errorf("pickle: unknown opcode 0x%02x at byte %d", op, at)
		}
		if err != nil {
			return err
		}
	}
	return fmt.Errorf("pickle: no STOP opcode")
}
