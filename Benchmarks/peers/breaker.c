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
 * With -n K it starts K holders (the same command) and breaks them together: once every holder
 * has printed READY, K threads truncate the K paths at the same moment (a barrier), each timing
 * its own truncate; it prints K lines per round, then writes each holder its line.
 *
 * usage: breaker [-n K] -- HOLDER [ARGS...]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
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

/* -n K: K holders broken together. */
enum { MAX_HOLDERS = 64 };
struct holder { pid_t pid; FILE *out; int in; char path[8192]; long long start, end; int failed; };
static pthread_barrier_t together;

static void *truncate_one(void *arg) {
    struct holder *h = arg;
    pthread_barrier_wait(&together);
    h->start = now_ns();
    h->failed = truncate(h->path, 0) != 0 ? errno : 0;
    h->end = now_ns();
    return NULL;
}

/* BREAKER_PAUSE_US, default 20 ms: how long after READY a holder is broken. */
static useconds_t break_pause_us(void) {
    const char *pause_env = getenv("BREAKER_PAUSE_US");
    return pause_env ? (useconds_t)strtoul(pause_env, NULL, 10) : 20000;
}

/* Starts COMMAND with its standard output (H->out) and input (H->in) piped to us. */
static int start_holder(struct holder *h, char **command) {
    int fds[2], back[2];
    if (pipe(fds) != 0 || pipe(back) != 0) { perror("pipe"); return -1; }
    h->pid = fork();
    if (h->pid < 0) { perror("fork"); return -1; }
    if (h->pid == 0) {
        dup2(fds[1], 1);
        dup2(back[0], 0);
        close(fds[0]); close(fds[1]); close(back[0]); close(back[1]);
        execv(command[0], command);
        perror("execv");
        _exit(127);
    }
    close(fds[1]);
    close(back[0]);
    h->out = fdopen(fds[0], "r");
    h->in = back[1];
    return h->out ? 0 : -1;
}

/* Reads HOLDER's lines up to its next READY (other lines passed on with "# "); 0 at its end. */
static int next_ready(struct holder *h) {
    char line[8192];
    while (fgets(line, sizeof line, h->out)) {
        line[strcspn(line, "\n")] = 0;
        if (strncmp(line, "READY ", 6) == 0) { snprintf(h->path, sizeof h->path, "%s", line + 6); return 1; }
        printf("# %s\n", line);
    }
    return 0;
}

static int break_together(int count, char **command) {
    static struct holder holders[MAX_HOLDERS];
    pthread_t threads[MAX_HOLDERS];
    useconds_t pause_us = break_pause_us();
    int status = 0;
    for (int i = 0; i < count; i++)
        if (start_holder(&holders[i], command) != 0) return 1;
    pthread_barrier_init(&together, NULL, (unsigned)count);
    for (int round = 0;; round++) {
        int ready = 0;
        for (int i = 0; i < count; i++) ready += next_ready(&holders[i]);
        fflush(stdout);
        if (ready == 0) break;
        if (ready != count) { fprintf(stderr, "breaker: only %d of %d holders ready\n", ready, count); status = 1; break; }
        usleep(pause_us);   /* every holder idle, as in the single-holder mode */
        for (int i = 0; i < count; i++) pthread_create(&threads[i], NULL, truncate_one, &holders[i]);
        for (int i = 0; i < count; i++) pthread_join(threads[i], NULL);
        for (int i = 0; i < count; i++) {
            struct holder *h = &holders[i];
            if (h->failed) { fprintf(stderr, "breaker: truncate %s: %s\n", h->path, strerror(h->failed)); status = 1; }
            if (round == 0) printf("# warm-up %lld\n", h->end - h->start);
            else printf("%lld\n", h->end - h->start);
        }
        fflush(stdout);
        if (status) break;
        for (int i = 0; i < count; i++)
            if (write(holders[i].in, "\n", 1) != 1) status = 1;
    }
    pthread_barrier_destroy(&together);
    for (int i = 0; i < count; i++) {
        int child = 0;
        close(holders[i].in);
        if (status) kill(holders[i].pid, SIGTERM);
        waitpid(holders[i].pid, &child, 0);
        fclose(holders[i].out);
        if (!WIFEXITED(child) || WEXITSTATUS(child) != 0) { fprintf(stderr, "breaker: holder %d failed (status %d)\n", i, child); status = 1; }
    }
    return status;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);  /* a holder that exits after its last break stops reading */
    if (argc >= 5 && strcmp(argv[1], "-n") == 0 && strcmp(argv[3], "--") == 0) {
        int count = atoi(argv[2]);
        if (count < 1 || count > MAX_HOLDERS) { fprintf(stderr, "breaker: -n takes 1 to %d\n", MAX_HOLDERS); return 2; }
        return break_together(count, argv + 4);
    }
    if (argc < 3 || strcmp(argv[1], "--") != 0) { fprintf(stderr, "usage: breaker [-n K] -- HOLDER [ARGS...]\n"); return 2; }
    static struct holder holder;
    if (start_holder(&holder, argv + 2) != 0) return 1;
    FILE *in = holder.out;
    char line[8192];
    int breaks = 0;
    useconds_t pause_us = break_pause_us();
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
        if (write(holder.in, "\n", 1) != 1) break;  /* the holder has gone */
    }
    close(holder.in);
    int status = 0;
    waitpid(holder.pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) { fprintf(stderr, "breaker: holder failed (status %d)\n", status); return 1; }
    return 0;
}
