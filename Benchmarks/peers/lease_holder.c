/* Peer for the revocation-latency benchmark: the raw sequence every user writes today.
 * Takes a write lease on a tmpfs file, maps and registers NREGIONS regions, prints
 * "READY <path>", then on the lease-break signal: ibv_dereg_mr each MR, munmap each
 * region, F_SETLEASE F_UNLCK. Repeats REPS times (the breaker truncates each time). After
 * each break, "CPU <ns>": the process's CPU time from READY to the end of its teardown.
 *
 * usage: lease_holder DIR NREGIONS REGION_BYTES REPS DEVICE
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* User + system CPU time of the whole process (every thread), in ns. */
static long long cpu_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void die(const char *what) { fprintf(stderr, "lease_holder: %s: %s\n", what, strerror(errno)); exit(1); }

/* The teardown after a break, a function of its own so that callgrind can count its
 * instructions (Benchmarks/suites/profile.sh). Prints the TRACE line: CLOCK_MONOTONIC of
 * each step, like DaxPinBench's (the breaker adds its own stamps). */
static __attribute__((noinline)) void teardown(int fd, int nregions, struct ibv_mr **mrs, void **maps, size_t region) {
    long long noticed = now_ns();
    for (int i = 0; i < nregions; i++) ibv_dereg_mr(mrs[i]);
    long long deregistered = now_ns();
    for (int i = 0; i < nregions; i++) munmap(maps[i], region);
    long long unmapped = now_ns();
    fcntl(fd, F_SETLEASE, F_UNLCK);
    long long released = now_ns();
    close(fd);
    printf("TRACE %lld %lld %lld %lld %lld\n", noticed, deregistered, unmapped, released, now_ns());
}

int main(int argc, char **argv) {
    if (argc != 6) { fprintf(stderr, "usage: lease_holder DIR NREGIONS REGION_BYTES REPS DEVICE\n"); return 2; }
    const char *dir = argv[1], *devname = argv[5];
    int nregions = atoi(argv[2]), reps = atoi(argv[4]);
    size_t region = strtoull(argv[3], NULL, 10);
    char path[4096];
    snprintf(path, sizeof path, "%s/c-holder-%d", dir, (int)getpid());

    int ndev = 0;
    struct ibv_device **list = ibv_get_device_list(&ndev);
    struct ibv_context *ctx = NULL;
    for (int i = 0; list && i < ndev; i++)
        if (strcmp(ibv_get_device_name(list[i]), devname) == 0) ctx = ibv_open_device(list[i]);
    if (!ctx) die("ibv_open_device");
    struct ibv_pd *pd = ibv_alloc_pd(ctx);
    if (!pd) die("ibv_alloc_pd");

    int sig = SIGRTMIN + 6;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigaddset(&set, SIGIO);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) die("sigprocmask");

    void **maps = calloc((size_t)nregions, sizeof *maps);
    struct ibv_mr **mrs = calloc((size_t)nregions, sizeof *mrs);
    int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
    for (int rep = 0; rep < reps; rep++) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) die("open");
        if (ftruncate(fd, (off_t)(region * (size_t)nregions)) != 0) die("ftruncate");
        if (fcntl(fd, F_SETSIG, sig) != 0) die("F_SETSIG");
        /* The breaker's truncate may still hold the inode for writing: EAGAIN for a moment. */
        int tries = 0;
        while (fcntl(fd, F_SETLEASE, F_WRLCK) != 0) {
            if (errno != EAGAIN || ++tries > 20000) die("F_SETLEASE");
            usleep(100);
        }
        struct f_owner_ex owner = { .type = F_OWNER_TID, .pid = gettid() };
        if (fcntl(fd, F_SETOWN_EX, &owner) != 0) die("F_SETOWN_EX");
        for (int i = 0; i < nregions; i++) {
            maps[i] = mmap(NULL, region, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, (off_t)(region * (size_t)i));
            if (maps[i] == MAP_FAILED) die("mmap");
            mrs[i] = ibv_reg_mr(pd, maps[i], region, access);
            if (!mrs[i]) die("ibv_reg_mr");
        }
        printf("READY %s\n", path);
        fflush(stdout);
        long long cpu_before = cpu_ns();
        siginfo_t info;
        for (;;) {
            int got = sigwaitinfo(&set, &info);
            if (got == sig && info.si_fd == fd) break;
            if (got == SIGIO) break;
        }
        teardown(fd, nregions, mrs, maps, region);
        /* The breaker writes a line once its truncate has returned: until then nothing of ours
         * competes with it (the TRACE line stays in stdio's buffer). Without a breaker (end of
         * input), the truncate's new size is the sign. */
        int c;
        while ((c = getchar()) != EOF && c != '\n') {}
        printf("CPU %lld\n", cpu_ns() - cpu_before);   /* the whole process, from READY to now */
        fflush(stdout);
        struct stat st;
        while (stat(path, &st) == 0 && st.st_size != 0) usleep(100);
    }
    unlink(path);
    ibv_dealloc_pd(pd);
    ibv_close_device(ctx);
    ibv_free_device_list(list);
    return 0;
}
