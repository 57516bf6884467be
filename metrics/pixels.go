package metrics

import (
	"context"
	"fmt"
	"math"
	"math/bits"
)

// DefaultPROLimit is the FPR integration limit of the MVTec AU-PRO (the
// evaluation script's --pro_integration_limit default).
const DefaultPROLimit = 0.3

// PixelOptions configures a Pixels accumulator.
type PixelOptions struct {
	// NoRegions skips region labelling; AUPRO is then undefined. One-vs-rest
	// pixel metrics of a multi-type evaluation need no regions.
	NoRegions bool
	// PROLimit is the FPR integration limit of the MVTec AU-PRO, in (0, 1];
	// 0 means DefaultPROLimit.
	PROLimit float64
}

// Pixels accumulates the anomaly maps and ground-truth masks of one category,
// one image at a time, and computes the exact pixel metrics of the whole
// category (all pixels together, as every reference does).
//
// Memory: a defect-free pixel costs 2 bytes (the low 16 bits of its score
// key, filed under the key's high 16 bits as it is added), a defect pixel 8
// (its key and region index) plus 6 more during Compute, and there are ~3
// MiB of fixed tables; about 2.5 bytes per pixel in all for a typical
// category. Scores are float32: that is the dtype of the maps every
// reference evaluates (TIFF files, torch tensors).
//
// A Pixels must not be used from several goroutines at once; categories are
// independent, so give each its own.
type Pixels struct {
	opt     PixelOptions
	neg     *buckets // keys of defect-free pixels, bucketed
	negN    int
	pos     chunks // keys of defect pixels
	posReg  chunks // region index of each defect pixel, parallel to pos
	posHist *[1 << 16]uint32
	invArea []float64 // 1/|region| for every region of the category
	minKey  uint32
	maxKey  uint32
	images  int
	lab     labeller
	done    bool
}

// NewPixels returns an empty accumulator.
func NewPixels(opt PixelOptions) (*Pixels, error) {
	if opt.PROLimit == 0 {
		opt.PROLimit = DefaultPROLimit
	}
	if !(opt.PROLimit > 0 && opt.PROLimit <= 1) {
		return nil, fmt.Errorf("metrics: PRO integration limit %v is not in (0, 1]", opt.PROLimit)
	}
	return &Pixels{
		opt:     opt,
		neg:     newBuckets(),
		posHist: new([1 << 16]uint32),
		minKey:  math.MaxUint32,
	}, nil
}

// Add adds one image: its anomaly map and its ground-truth mask, both
// width×height and row-major. Mask values are 0 (normal) or 1 or 255
// (defect); anything else is an error, as is a NaN or ±Inf score. On error
// nothing of the image is added.
func (p *Pixels) Add(scores []float32, mask []uint8, width, height int) error {
	if p.done {
		return fmt.Errorf("metrics: Add after Compute")
	}
	if width <= 0 || height <= 0 {
		return fmt.Errorf("metrics: image size %d×%d: %w", width, height, ErrShape)
	}
	n := width * height
	if len(scores) != n || len(mask) != n {
		return fmt.Errorf("metrics: image %d×%d has %d scores and %d mask pixels: %w",
			width, height, len(scores), len(mask), ErrShape)
	}
	if uint64(p.negN)+uint64(p.pos.n)+uint64(n) >= 1<<32 {
		return fmt.Errorf("metrics: more than 2^32-1 pixels: %w", ErrTooLarge)
	}
	nreg, err := p.lab.scan(mask, width, height, !p.opt.NoRegions)
	if err != nil {
		return err
	}
	lo, hi := uint32(math.MaxUint32), uint32(0)
	for _, s := range scores {
		k := key32(s)
		lo = min(lo, k)
		hi = max(hi, k)
	}
	if !finiteKey(lo) || !finiteKey(hi) {
		for i, s := range scores {
			if !finiteKey(key32(s)) {
				return fmt.Errorf("metrics: score at (x=%d, y=%d) is %v: %w", i%width, i/width, s, ErrNonFinite)
			}
		}
	}
	p.minKey = min(p.minKey, lo)
	p.maxKey = max(p.maxKey, hi)

	base := len(p.invArea)
	for _, a := range p.lab.area[:nreg] {
		p.invArea = append(p.invArea, 1/float64(a))
	}
	at := 0
	for _, r := range p.lab.runs {
		start := int(r.y)*width + int(r.x0)
		end := int(r.y)*width + int(r.x1)
		p.addNeg(scores[at:start])
		p.addPos(scores[start:end], uint32(base+int(r.id)))
		at = end
	}
	p.addNeg(scores[at:])
	p.images++
	return nil
}

func (p *Pixels) addNeg(s []float32) {
	p.neg.add(s)
	p.negN += len(s)
}

func (p *Pixels) addPos(s []float32, region uint32) {
	hist := p.posHist
	for len(s) > 0 {
		dst := p.pos.free()
		reg := p.posReg.free()
		k := min(len(dst), len(reg), len(s))
		dst, reg = dst[:k], reg[:k]
		for i, v := range s[:k] {
			key := key32(v)
			dst[i] = key
			reg[i] = region
			hist[key>>16]++
		}
		p.pos.commit(k)
		p.posReg.commit(k)
		s = s[k:]
	}
}

// PixelResult holds the pixel metrics of one category.
type PixelResult struct {
	Binary
	Images  int // images added
	Regions int // 8-connected defect regions over all images
	// AUPROMVTec is the MVTec AD evaluation script's AU-PRO: the exact PRO
	// curve integrated up to PROLimit and divided by it.
	AUPROMVTec Value
	// AUPROCflow200 is the cal_pro_score AU-PRO of AnomalyCLIP, APRIL-GAN
	// and DAPO: 200 thresholds, FPR < 0.3, FPRs rescaled by their min–max.
	AUPROCflow200 Value
	// ScoreMin and ScoreMax are the extreme scores (NaN when empty).
	ScoreMin, ScoreMax float32
}

// AUPRO returns the AU-PRO of the named variant.
func (r PixelResult) AUPRO(v AUPROVariant) (Value, error) {
	switch v {
	case AUPROMVTec:
		return r.AUPROMVTec, nil
	case AUPROCflow200:
		return r.AUPROCflow200, nil
	}
	return Value{}, fmt.Errorf("metrics: unknown AUPRO variant %q (want %q or %q)", v, AUPROMVTec, AUPROCflow200)
}

// Compute returns the metrics of everything added. It releases the stored
// pixels, so it can be called once; later calls and Adds are errors.
func (p *Pixels) Compute(ctx context.Context) (PixelResult, error) {
	if p.done {
		return PixelResult{}, fmt.Errorf("metrics: Compute called twice")
	}
	p.done = true
	negN, posN := uint64(p.negN), uint64(p.pos.n)
	regions := len(p.invArea)
	res := PixelResult{Images: p.images, Regions: regions,
		ScoreMin: float32(math.NaN()), ScoreMax: float32(math.NaN())}
	if p.images > 0 {
		res.ScoreMin, res.ScoreMax = score32(p.minKey), score32(p.maxKey)
	}

	c := newCurve(negN, posN)
	if !p.opt.NoRegions {
		c.withPRO(regions, p.opt.PROLimit)
	}
	var grid []float32
	cflowWhy := cflowUndefined(p.opt.NoRegions, regions, negN)
	if cflowWhy == "" {
		var why string
		grid, why = cflowGrid(res.ScoreMin, res.ScoreMax, cflowSteps)
		cflowWhy = why
	}
	if cflowWhy == "" {
		thr := make([]uint32, len(grid))
		for i, t := range grid {
			thr[len(grid)-1-i] = key32(t)
		}
		c.withThresholds(thr)
	}

	if err := p.walk(ctx, &c); err != nil {
		return PixelResult{}, err
	}
	c.finish()
	res.Binary = c.binary(func(tok uint64) float64 { return float64(score32(uint32(tok))) })

	switch {
	case p.opt.NoRegions:
		res.AUPROMVTec = undefined("regions were not labelled (NoRegions)")
	case regions == 0:
		res.AUPROMVTec = undefined(reasonNoRegions)
	case negN == 0:
		res.AUPROMVTec = undefined(reasonNoNormalPix)
	default:
		res.AUPROMVTec = defined(c.proAUC)
	}
	if cflowWhy != "" {
		res.AUPROCflow200 = undefined(cflowWhy)
	} else {
		res.AUPROCflow200 = cflowAUPRO(c.rec, negN, regions)
	}
	return res, nil
}

// sortMax is the bucket size up to which a bucket is sorted (radix sort of
// its low 16 bits) instead of counted into the 64 Ki table, whose bitmap
// walk costs the same for every bucket.
const sortMax = 8192

// walk feeds the grouped table to c in descending score order. Keys are
// bucketed by their top 16 bits (negatives while they are added, positives
// here), and each bucket is resolved exactly by counting its low 16 bits
// into a 64 Ki table, or by sorting when it is small.
func (p *Pixels) walk(ctx context.Context, c *curve) error {
	posStart := bucketStarts(p.posHist)
	posLow := make([]uint16, p.pos.n)
	posReg := make([]uint32, p.pos.n)
	scatter(&p.pos, posStart, posLow, &p.posReg, posReg)

	d := new(dense)
	var sb sortBuf
	for b := 1<<16 - 1; b >= 0; b-- {
		if b&0xfff == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		nn := p.neg.count(b)
		pl := posLow[posStart[b]:posStart[b+1]]
		if nn+len(pl) == 0 {
			continue
		}
		pr := posReg[posStart[b]:posStart[b+1]]
		base := uint32(b) << 16
		c.emitThresholds(base | 0xffff)
		if len(pl) == 0 && c.fp+uint64(nn) <= c.fpLimit && c.nextThr < base {
			c.fp += uint64(nn) // nothing inside this bucket needs single values
			continue
		}
		if nn <= sortMax && len(pl) <= sortMax {
			sb.neg = sb.neg[:0]
			p.neg.each(b, func(blk []uint16) { sb.neg = append(sb.neg, blk...) })
			p.sortedBucket(c, base, &sb, pl, pr)
		} else {
			p.neg.each(b, d.countNeg)
			d.bucket(c, base, pl, pr, p.invArea)
		}
	}
	p.neg = nil
	return nil
}

// bucketStarts returns the prefix sums of hist, with one extra entry.
func bucketStarts(hist *[1 << 16]uint32) []uint32 {
	s := make([]uint32, 1<<16+1)
	var t uint32
	for i, n := range hist {
		s[i] = t
		t += n
	}
	s[1<<16] = t
	return s
}

// scatter writes the low 16 bits of every key in src to its bucket's range
// of low, and the parallel values of src2 to low2. Chunks are released as
// they are consumed.
func scatter(src *chunks, start []uint32, low []uint16, src2 *chunks, low2 []uint32) {
	next := make([]uint32, 1<<16)
	copy(next, start[:1<<16])
	for bi, blk := range src.blocks {
		blk2 := src2.blocks[bi][:len(blk)]
		for i, k := range blk {
			b := k >> 16
			j := next[b]
			low[j] = uint16(k)
			low2[j] = blk2[i]
			next[b]++
		}
		src.blocks[bi], src2.blocks[bi] = nil, nil
	}
	src.blocks, src2.blocks = nil, nil
}

// dense resolves one bucket by counting: one slot per low 16-bit value and a
// bitmap of the occupied slots, walked from the top. Everything it touches
// is cleared again on the way, so it is reused across buckets.
type dense struct {
	neg [1 << 16]uint32
	pos [1 << 16]uint32
	w   [1 << 16]float64
	bm  [1 << 10]uint64
}

func (d *dense) countNeg(nl []uint16) {
	for _, l := range nl {
		d.neg[l]++
		d.bm[l>>6] |= 1 << (l & 63)
	}
}

// bucket adds the positives of the bucket to the negatives already counted
// and walks the occupied slots from the top.
func (d *dense) bucket(c *curve, base uint32, pl []uint16, pr []uint32, invArea []float64) {
	for i, l := range pl {
		d.pos[l]++
		if c.pro {
			d.w[l] += invArea[pr[i]]
		}
		d.bm[l>>6] |= 1 << (l & 63)
	}
	hasPos := len(pl) > 0
	for wi := len(d.bm) - 1; wi >= 0; wi-- {
		word := d.bm[wi]
		if word == 0 {
			continue
		}
		d.bm[wi] = 0
		for word != 0 {
			i := 63 - bits.LeadingZeros64(word)
			word &^= 1 << i
			l := uint32(wi)<<6 | uint32(i)
			key := base | l
			if key <= c.nextThr {
				c.emitThresholds(key)
			}
			n := d.neg[l]
			d.neg[l] = 0
			if hasPos && d.pos[l] != 0 {
				np, w := d.pos[l], d.w[l]
				d.pos[l], d.w[l] = 0, 0
				c.step(uint64(n), uint64(np), w, uint64(key))
			} else {
				c.negOnly(uint64(n))
			}
		}
	}
}

// sortBuf holds the scratch space of sortedBucket.
type sortBuf struct {
	neg, negTmp []uint16
	pos, posTmp []uint64 // low<<32 | region
}

// sortedBucket resolves a bucket by sorting it: sb.neg holds the low 16
// bits of its negatives, pl and pr those of its positives and their
// regions.
func (p *Pixels) sortedBucket(c *curve, base uint32, sb *sortBuf, pl []uint16, pr []uint32) {
	nl := sb.neg
	sb.negTmp = sortLow16(nl, sb.negTmp)
	sb.pos = sb.pos[:0]
	for i, l := range pl {
		sb.pos = append(sb.pos, uint64(l)<<32|uint64(pr[i]))
	}
	pp := sb.pos
	sb.posTmp = sortLow16x(pp, sb.posTmp)
	i, j := len(nl)-1, len(pp)-1 // walk down from the top
	bulkFor := -2                // the j for which a bulk step was tried
	for i >= 0 || j >= 0 {
		// Negatives above the next positive only move FP; unless the PRO
		// limit or a cal_pro_score threshold falls among them, add them at
		// once instead of value by value.
		if i >= 0 && j != bulkFor {
			bulkFor = j
			pv := -1
			if j >= 0 {
				pv = int(pp[j] >> 32)
			}
			k := i
			for k >= 0 && int(nl[k]) > pv {
				k--
			}
			if run := uint64(i - k); run > 0 && c.fp+run <= c.fpLimit && c.nextThr < base|uint32(nl[k+1]) {
				c.fp += run
				i = k
				continue
			}
		}
		var l uint16
		if j < 0 || (i >= 0 && nl[i] > uint16(pp[j]>>32)) {
			l = nl[i]
		} else {
			l = uint16(pp[j] >> 32)
		}
		var n, np uint64
		for ; i >= 0 && nl[i] == l; i-- {
			n++
		}
		var w float64
		for ; j >= 0 && uint16(pp[j]>>32) == l; j-- {
			np++
			if c.pro {
				w += p.invArea[uint32(pp[j])]
			}
		}
		key := base | uint32(l)
		if key <= c.nextThr {
			c.emitThresholds(key)
		}
		if np == 0 {
			c.negOnly(n)
		} else {
			c.step(n, np, w, uint64(key))
		}
	}
}

// sortLow16 sorts a ascending: insertion sort when short, otherwise an LSD
// radix sort in two 8-bit passes through tmp (returned, possibly grown).
func sortLow16(a, tmp []uint16) []uint16 {
	if len(a) <= 32 {
		for i := 1; i < len(a); i++ {
			v, j := a[i], i
			for ; j > 0 && a[j-1] > v; j-- {
				a[j] = a[j-1]
			}
			a[j] = v
		}
		return tmp
	}
	if cap(tmp) < len(a) {
		tmp = make([]uint16, len(a), 2*len(a))
	}
	tmp = tmp[:len(a)]
	src, dst := a, tmp
	for shift := uint(0); shift < 16; shift += 8 {
		var cnt [257]int
		for _, v := range src {
			cnt[(v>>shift)&0xff+1]++
		}
		for k := 1; k < 257; k++ {
			cnt[k] += cnt[k-1]
		}
		for _, v := range src {
			b := (v >> shift) & 0xff
			dst[cnt[b]] = v
			cnt[b]++
		}
		src, dst = dst, src
	}
	return tmp // two passes: the result is back in a
}

// sortLow16x is sortLow16 for values whose key is bits 32..47.
func sortLow16x(a, tmp []uint64) []uint64 {
	if len(a) <= 32 {
		for i := 1; i < len(a); i++ {
			v, j := a[i], i
			for ; j > 0 && a[j-1]>>32 > v>>32; j-- {
				a[j] = a[j-1]
			}
			a[j] = v
		}
		return tmp
	}
	if cap(tmp) < len(a) {
		tmp = make([]uint64, len(a), 2*len(a))
	}
	tmp = tmp[:len(a)]
	src, dst := a, tmp
	for shift := uint(32); shift < 48; shift += 8 {
		var cnt [257]int
		for _, v := range src {
			cnt[(v>>shift)&0xff+1]++
		}
		for k := 1; k < 257; k++ {
			cnt[k] += cnt[k-1]
		}
		for _, v := range src {
			b := (v >> shift) & 0xff
			dst[cnt[b]] = v
			cnt[b]++
		}
		src, dst = dst, src
	}
	return tmp
}
