package metrics

// chunkLen is the length of one storage chunk. Chunks are never copied when
// a category grows, so memory stays at 4 bytes per stored value instead of
// the transient doubling of a growing slice.
const chunkLen = 1 << 18

// chunks is an append-only list of uint32 values stored in fixed chunks.
type chunks struct {
	blocks [][]uint32
	n      int
}

// free returns the unused tail of the last chunk, adding a chunk when it is
// full. The caller writes a prefix of it and then calls commit.
func (c *chunks) free() []uint32 {
	if len(c.blocks) == 0 || len(c.blocks[len(c.blocks)-1]) == chunkLen {
		c.blocks = append(c.blocks, make([]uint32, 0, chunkLen))
	}
	b := c.blocks[len(c.blocks)-1]
	return b[len(b):chunkLen]
}

// commit marks k values of the last free() slice as written.
func (c *chunks) commit(k int) {
	b := &c.blocks[len(c.blocks)-1]
	*b = (*b)[:len(*b)+k]
	c.n += k
}
