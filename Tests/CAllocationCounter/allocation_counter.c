// Thin by design: the counter and glibc's own entry points, nothing else.
#include "allocation_counter.h"
#include <errno.h>
#include <stddef.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define DAXPIN_SANITIZED 1
#endif
#endif

static __thread int counting;
static __thread unsigned long allocations;

int daxpin_allocation_counting_available(void) {
#ifdef DAXPIN_SANITIZED
    return 0;
#else
    return 1;
#endif
}

void daxpin_allocation_count_begin(void) { allocations = 0; counting = 1; }

unsigned long daxpin_allocation_count_end(void) { counting = 0; return allocations; }

#ifndef DAXPIN_SANITIZED
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

void *malloc(size_t size) {
    if (counting) allocations++;
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    if (counting) allocations++;
    return __libc_calloc(count, size);
}

void *realloc(void *pointer, size_t size) {
    if (counting) allocations++;
    return __libc_realloc(pointer, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    if (counting) allocations++;
    return __libc_memalign(alignment, size);
}

void *memalign(size_t alignment, size_t size) {
    if (counting) allocations++;
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **result, size_t alignment, size_t size) {
    if (counting) allocations++;
    void *memory = __libc_memalign(alignment, size);
    if (!memory) return ENOMEM;
    *result = memory;
    return 0;
}
#endif
