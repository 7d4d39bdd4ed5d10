/* The other process of the revocation-latency benchmark. Starts a lease holder (DaxPin's
 * or the raw C one), and for every "READY <path>" line it prints, times truncate(path, 0):
 * how long the kernel keeps the truncate blocked until the holder revokes and unlocks.
 * Prints one line per break: "<nanoseconds>" (the first break, a warm-up, as a comment).
 * Other holder lines are passed on with "# ".
 *
 * Before each truncate it waits BREAKER_PAUSE_US microseconds (default 20000) after the
 * READY line, so that the holder is idle when its lease is broken. After each truncate has
 * returned it writes a line to the holder's standard input: holders wait for it before they
 * print their trace and take the next lease, so that nothing of theirs but the revocation
 * itself competes with the truncate being timed (the file's size drops to 0 early in the
 * truncate, while its pages are still being freed, so waiting for the size was too early).
 *
 * usage: breaker -- HOLDER [ARGS...]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3 || strcmp(argv[1], "--") != 0) { fprintf(stderr, "usage: breaker -- HOLDER [ARGS...]\n"); return 2; }
    int fds[2], back[2];  /* the holder's standard output, and its standard input */
    if (pipe(fds) != 0 || pipe(back) != 0) { perror("pipe"); return 1; }
    signal(SIGPIPE, SIG_IGN);  /* a holder that exits after its last break stops reading */
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 1; }
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(back[0], 0);
        close(fds[0]);
        close(fds[1]);
        close(back[0]);
        close(back[1]);
        execv(argv[2], argv + 2);
        perror("execv");
        _exit(127);
    }
    close(fds[1]);
    close(back[0]);
    FILE *in = fdopen(fds[0], "r");
    char line[8192];
    int breaks = 0;
    const char *pause_env = getenv("BREAKER_PAUSE_US");
    useconds_t pause_us = pause_env ? (useconds_t)strtoul(pause_env, NULL, 10) : 20000;
    while (fgets(line, sizeof line, in)) {
        line[strcspn(line, "\n")] = 0;
        if (strncmp(line, "READY ", 6) != 0) { printf("# %s\n", line); fflush(stdout); continue; }
        /* Break an idle holder, as a lease held for a while is: whatever the holder does right
         * after printing READY (entering its wait; for DaxPinBench also a Dispatch worker going
         * back to sleep) must not compete with the measured break for the two emulated CPUs. */
        usleep(pause_us);
        long long start = now_ns();
        if (truncate(line + 6, 0) != 0) { fprintf(stderr, "breaker: truncate %s: %s\n", line + 6, strerror(errno)); break; }
        long long end = now_ns();
        /* The first break of a holder is a warm-up (first use of every code path): reported as
         * a comment, so that series files hold only measured breaks. "# T"/"# TW" carry the
         * CLOCK_MONOTONIC stamps that match the holder's TRACE lines, in order. */
        if (breaks++ == 0) printf("# warm-up %lld\n# TW %lld %lld\n", end - start, start, end);
        else printf("%lld\n# T %lld %lld\n", end - start, start, end);
        fflush(stdout);
        if (write(back[1], "\n", 1) != 1) break;  /* the holder has gone */
    }
    close(back[1]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) { fprintf(stderr, "breaker: holder failed (status %d)\n", status); return 1; }
    return 0;
}
