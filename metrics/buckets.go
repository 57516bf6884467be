package metrics

// buckets stores the keys of defect-free pixels already sorted by their top
// 16 bits: each of the 65 536 buckets owns a chain of blocks holding the low
// 16 bits of its keys. That is 2 bytes per pixel, and the keys never need to
// be moved again before the walk. Blocks grow geometrically per bucket, so a
// sparse bucket wastes little and a dense one has few blocks.
type buckets struct {
	cur   *[1 << 16][]uint16 // the block being filled, per bucket
	head  *[1 << 16]int32    // first full block of each bucket's chain, -1 if none
	tail  *[1 << 16]int32    // last full block of the chain
	full  []fullBlock        // full blocks, chained per bucket
	page  []uint16           // unused rest of the current arena page
	pages int                // arena pages allocated
}

type fullBlock struct {
	data []uint16
	next int32
}

const (
	firstBlock = 16      // entries of a bucket's first block
	maxBlock   = 1 << 14 // largest block
	pageLen    = 1 << 20 // entries per arena page (2 MiB)
)

func newBuckets() *buckets {
	b := &buckets{
		cur:  new([1 << 16][]uint16),
		head: new([1 << 16]int32),
		tail: new([1 << 16]int32),
	}
	for i := range b.head {
		b.head[i], b.tail[i] = -1, -1
	}
	return b
}

// add appends the keys of seg. Scores must be finite (checked by the caller).
func (b *buckets) add(seg []float32) {
	cur := b.cur
	for _, v := range seg {
		k := key32(v)
		c := &cur[k>>16]
		n := len(*c)
		if n == cap(*c) {
			b.grow(k >> 16)
			n = 0
		}
		*c = (*c)[:n+1]
		(*c)[n] = uint16(k)
	}
}

// grow retires bucket i's full block and gives it a fresh, larger one.
func (b *buckets) grow(i uint32) {
	c := b.cur[i]
	size := firstBlock
	if cap(c) > 0 {
		size = min(2*cap(c), maxBlock)
		f := int32(len(b.full))
		b.full = append(b.full, fullBlock{data: c, next: -1})
		if b.tail[i] < 0 {
			b.head[i] = f
		} else {
			b.full[b.tail[i]].next = f
		}
		b.tail[i] = f
	}
	if len(b.page) < size {
		b.page = make([]uint16, pageLen)
		b.pages++
	}
	b.cur[i] = b.page[:0:size]
	b.page = b.page[size:]
}

// count returns the number of keys in bucket i.
func (b *buckets) count(i int) int {
	n := len(b.cur[i])
	for f := b.head[i]; f >= 0; f = b.full[f].next {
		n += len(b.full[f].data)
	}
	return n
}

// each calls fn for every block of bucket i.
func (b *buckets) each(i int, fn func([]uint16)) {
	for f := b.head[i]; f >= 0; f = b.full[f].next {
		fn(b.full[f].data)
	}
	if len(b.cur[i]) > 0 {
		fn(b.cur[i])
	}
}
