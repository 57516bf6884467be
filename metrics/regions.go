package metrics

import (
	"encoding/binary"
	"fmt"
)

// run is a horizontal stretch [x0, x1) of defect pixels in row y. After
// labelling, id is the image-local region index.
type run struct {
	y, x0, x1 int32
	id        int32
}

// labeller finds the defect runs of a mask and joins them into 8-connected
// regions (the 3×3 structuring element of scipy.ndimage.label, skimage's
// default connectivity for 2-D, and OpenCV's default). Its buffers are
// reused from image to image.
type labeller struct {
	runs   []run
	parent []int32
	area   []uint64 // pixels per region, indexed by run.id
}

// scan validates mask (w×h, values 0, 1 or 255), collects its runs and, if
// label is set, labels them into regions. It returns the number of regions.
func (l *labeller) scan(mask []uint8, w, h int, label bool) (int, error) {
	l.runs = l.runs[:0]
	l.parent = l.parent[:0]
	prevStart, prevEnd := 0, 0
	for y := 0; y < h; y++ {
		row := mask[y*w : (y+1)*w]
		curStart := len(l.runs)
		j0 := prevStart
		x := 0
		for {
			x = nextNonZero(row, x)
			if x >= w {
				break
			}
			s := x
			for x < w && row[x] != 0 {
				if v := row[x]; v != 1 && v != 255 {
					return 0, fmt.Errorf("metrics: mask pixel (x=%d, y=%d) is %d: %w", x, y, v, ErrMaskValue)
				}
				x++
			}
			i := int32(len(l.runs))
			l.runs = append(l.runs, run{y: int32(y), x0: int32(s), x1: int32(x)})
			if !label {
				continue
			}
			l.parent = append(l.parent, i)
			// Runs of the previous row touching columns s-1 .. x (8-neighbours).
			for j0 < prevEnd && int(l.runs[j0].x1) < s {
				j0++
			}
			for j := j0; j < prevEnd && int(l.runs[j].x0) <= x; j++ {
				l.union(i, int32(j))
			}
		}
		prevStart, prevEnd = curStart, len(l.runs)
	}
	if !label {
		return 0, nil
	}
	l.area = l.area[:0]
	for i := range l.runs {
		r := l.find(int32(i))
		if int(r) == i {
			l.runs[i].id = int32(len(l.area))
			l.area = append(l.area, 0)
		} else {
			l.runs[i].id = l.runs[r].id // roots precede their members
		}
		l.area[l.runs[i].id] += uint64(l.runs[i].x1 - l.runs[i].x0)
	}
	return len(l.area), nil
}

func (l *labeller) find(i int32) int32 {
	for l.parent[i] != i {
		l.parent[i] = l.parent[l.parent[i]]
		i = l.parent[i]
	}
	return i
}

// union joins the sets of a and b under the smaller index, so that every
// root precedes the members of its set.
func (l *labeller) union(a, b int32) {
	ra, rb := l.find(a), l.find(b)
	switch {
	case ra < rb:
		l.parent[rb] = ra
	case rb < ra:
		l.parent[ra] = rb
	}
}

// nextNonZero returns the index of the first non-zero byte of row at or
// after x, or len(row). Masks are mostly zero, so it skips 8 bytes at a time.
func nextNonZero(row []uint8, x int) int {
	for x+8 <= len(row) && binary.LittleEndian.Uint64(row[x:x+8]) == 0 {
		x += 8
	}
	for x < len(row) && row[x] == 0 {
		x++
	}
	return x
}
