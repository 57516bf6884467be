package mapio_test

import (
	"fmt"
	"strings"

	"github.com/dapobench/dapobench/metrics/mapio"
)

func ExampleReadScores() {
	csv := "path,score\nbottle/test/good/000.png,0.12\n./bottle/test/broken_large/000.png,0.93\n"
	s, err := mapio.ReadScores(strings.NewReader(csv))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s["bottle/test/broken_large/000.png"], len(s))
	_, err = mapio.ReadScores(strings.NewReader("a.png,1\na.png,2\n"))
	fmt.Println(err)
	// Output:
	// 0.93 2
	// mapio: scores: line 2: a.png appears twice: malformed scores CSV
}

func ExampleDecodeNPYMap() {
	// A 2×3 float32 array as numpy.save writes it.
	hdr := "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
	hdr += strings.Repeat(" ", 128-10-1-len(hdr)) + "\n" // 10-byte preamble + header: 128 bytes
	data := []byte("\x93NUMPY\x01\x00" + string([]byte{byte(len(hdr)), 0}) + hdr)
	for _, v := range []uint32{0x3f800000, 0x40000000, 0x40400000, 0, 0x80000000, 0xbf800000} {
		data = append(data, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
	}
	m, err := mapio.DecodeNPYMap(data)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.Width, m.Height, m.Pix)
	// Output: 3 2 [1 2 3 0 -0 -1]
}
