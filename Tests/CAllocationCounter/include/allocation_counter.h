// Test-only: counts the heap allocations of the calling thread between begin and end, by
// defining malloc and its relatives in the test executable (which the process's libraries then
// call instead of glibc's). Absent under a sanitizer, which interposes malloc itself.
#pragma once

/// Whether counting works in this build (not under AddressSanitizer or ThreadSanitizer).
int daxpin_allocation_counting_available(void);
/// Starts counting this thread's allocations from zero.
void daxpin_allocation_count_begin(void);
/// Stops counting; how many allocations this thread made since begin.
unsigned long daxpin_allocation_count_end(void);
