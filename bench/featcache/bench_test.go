package featcache

import (
	"bytes"
	"context"
	"io"
	"testing"
)

// towerEntry is a DAPO image-tower output: the global embedding and four
// layers of 1370×1024 patch tokens, about 22 MB.
func towerEntry() Entry {
	e := Entry{Tensors: []Tensor{{Name: "image_embed", Shape: []int{768}, Data: make([]float32, 768)}}}
	for _, l := range []string{"patch_6", "patch_12", "patch_18", "patch_24"} {
		e.Tensors = append(e.Tensors, Tensor{Name: l, Shape: []int{1370, 1024}, Data: make([]float32, 1370*1024)})
	}
	for _, t := range e.Tensors {
		for i := range t.Data {
			t.Data[i] = float32(i%1021) / 1021
		}
	}
	return e
}

func entryBytes(b *testing.B, e Entry) int64 {
	n, err := e.payloadSize()
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkPut writes a 22 MB entry to a temporary directory (page cache,
// no fsync): temp file, chunked encoding, CRC, rename.
func BenchmarkPut(b *testing.B) {
	c, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	e, k := towerEntry(), testKey(1)
	b.SetBytes(entryBytes(b, e))
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Put(context.Background(), k, e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGet reads the same entry back, verifying both checksums.
func BenchmarkGet(b *testing.B) {
	c, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	e, k := towerEntry(), testKey(1)
	if err := c.Put(context.Background(), k, e); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(entryBytes(b, e))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Get(context.Background(), k); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncode and BenchmarkDecode are the format alone, in memory.
func BenchmarkEncode(b *testing.B) {
	e, k := towerEntry(), testKey(1)
	buf := make([]byte, chunkBytes)
	b.SetBytes(entryBytes(b, e))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encode(io.Discard, k, e, buf, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	e, k := towerEntry(), testKey(1)
	var file bytes.Buffer
	if _, err := encode(&file, k, e, nil, nil); err != nil {
		b.Fatal(err)
	}
	data := file.Bytes()
	buf := make([]byte, chunkBytes)
	b.SetBytes(entryBytes(b, e))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := decode(bytes.NewReader(data), int64(len(data)), buf); err != nil {
			b.Fatal(err)
		}
	}
}
