// timed_truncate PATH LENGTH: truncate(2) PATH to LENGTH bytes and print how long that one call
// took, measured around it with CLOCK_MONOTONIC inside this process. The demos use it as the
// process that breaks the lease: timing a whole `python3 -c 'os.truncate(...)'` from the
// outside counted the interpreter's start (about 1.9 s under the testbed's emulation) along
// with the wait for the lease break (about 0.1 s).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double milliseconds(const struct timespec *from, const struct timespec *to) {
    return (double)(to->tv_sec - from->tv_sec) * 1e3 + (double)(to->tv_nsec - from->tv_nsec) / 1e6;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: timed_truncate PATH LENGTH\n");
        return 2;
    }
    char *end = NULL;
    errno = 0;
    long long length = strtoll(argv[2], &end, 0);
    if (errno != 0 || end == argv[2] || *end != '\0' || length < 0) {
        fprintf(stderr, "timed_truncate: LENGTH must be a byte count, not '%s'\n", argv[2]);
        return 2;
    }
    struct timespec before, after;
    clock_gettime(CLOCK_MONOTONIC, &before);
    // truncate(2) blocks until the lease holder releases (coreutils' truncate opens with
    // O_NONBLOCK and gives up with EAGAIN instead).
    int rc = truncate(argv[1], (off_t)length);
    int saved = errno;
    clock_gettime(CLOCK_MONOTONIC, &after);
    if (rc != 0) {
        fprintf(stderr, "timed_truncate: truncate %s: %s\n", argv[1], strerror(saved));
        return 1;
    }
    printf("truncate returned after %.3f ms (timed inside the truncating process)\n", milliseconds(&before, &after));
    return 0;
}
