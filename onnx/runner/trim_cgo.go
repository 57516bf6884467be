//go:build linux && cgo

package runner

/*
#include <stddef.h>
// glibc's malloc_trim; a weak reference is NULL under C libraries that lack it.
extern int malloc_trim(size_t pad) __attribute__((weak));
static void dapobench_trim(void) {
	if (malloc_trim) {
		malloc_trim(0);
	}
}
*/
import "C"

func trimHeap() { C.dapobench_trim() }
