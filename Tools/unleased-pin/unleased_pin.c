// Pins a file's memory the way most RDMA and io_uring code does: MAP_SHARED, then a long-term
// pin (ibv_reg_mr, or io_uring registered buffers), and no lease. A truncate of the file would
// leave the pinned pages orphaned. `daxpin ls --all` must flag it; the tests run it in the
// testbed (Scripts/test builds it next to the test binary).
//
// usage: unleased_pin rdma DEVICE PATH BYTES SECONDS
//        unleased_pin rdma-odp DEVICE PATH BYTES SECONDS   (an On-Demand Paging MR: pins nothing)
//        unleased_pin io-uring PATH BYTES SECONDS
// Prints one line "ready pid P address 0xA length N" (io-uring: also "anonymous 0xB length M"
// for a second buffer in anonymous memory), then holds the pin until SIGTERM, SIGINT or SECONDS
// pass, releases it and exits 0. Exit 1 with a message on stderr when a step fails.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
#include <linux/io_uring.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void request_stop(int signal_number) {
    (void)signal_number;
    stop_requested = 1;
}

static int fail(const char *step) {
    fprintf(stderr, "unleased_pin: %s: %s\n", step, strerror(errno));
    return 1;
}

// Maps BYTES of PATH shared and writable, and touches every page.
static void *map_file(const char *path, size_t bytes) {
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return NULL;
    void *memory = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int saved = errno;
    close(fd);  // the mapping keeps the file; no lease is taken
    errno = saved;
    if (memory == MAP_FAILED) return NULL;
    memset(memory, 0x5a, bytes);
    return memory;
}

// Waits for SIGTERM, SIGINT or the alarm, with the signals blocked outside sigsuspend.
static void hold(unsigned seconds) {
    sigset_t stops, previous;
    sigemptyset(&stops);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGALRM);
    sigprocmask(SIG_BLOCK, &stops, &previous);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = request_stop;
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGALRM, &action, NULL);
    alarm(seconds);
    sigset_t waiting = previous;
    sigdelset(&waiting, SIGTERM);
    sigdelset(&waiting, SIGINT);
    sigdelset(&waiting, SIGALRM);
    while (!stop_requested) sigsuspend(&waiting);
    sigprocmask(SIG_SETMASK, &previous, NULL);
}

static int pin_rdma(const char *device_name, const char *path, size_t bytes, unsigned seconds, int extra_access) {
    int count = 0;
    struct ibv_device **devices = ibv_get_device_list(&count);
    if (!devices) return fail("ibv_get_device_list");
    struct ibv_device *device = NULL;
    for (int i = 0; i < count; i++)
        if (strcmp(ibv_get_device_name(devices[i]), device_name) == 0) device = devices[i];
    if (!device) {
        fprintf(stderr, "unleased_pin: no RDMA device %s\n", device_name);
        ibv_free_device_list(devices);
        return 1;
    }
    struct ibv_context *context = ibv_open_device(device);
    ibv_free_device_list(devices);
    if (!context) return fail("ibv_open_device");
    struct ibv_pd *pd = ibv_alloc_pd(context);
    if (!pd) return fail("ibv_alloc_pd");
    void *memory = map_file(path, bytes);
    if (!memory) return fail("open and mmap MAP_SHARED");
    int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ | extra_access;
    struct ibv_mr *mr = ibv_reg_mr(pd, memory, bytes, access);
    if (!mr) return fail("ibv_reg_mr");
    printf("ready pid %d address %p length %zu rkey 0x%x\n", (int)getpid(), memory, bytes, mr->rkey);
    fflush(stdout);
    hold(seconds);
    if (ibv_dereg_mr(mr)) return fail("ibv_dereg_mr");
    munmap(memory, bytes);
    ibv_dealloc_pd(pd);
    ibv_close_device(context);
    return 0;
}

static int pin_io_uring(const char *path, size_t bytes, unsigned seconds) {
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    int ring = (int)syscall(__NR_io_uring_setup, 4, &params);
    if (ring < 0) return fail("io_uring_setup");
    void *memory = map_file(path, bytes);
    if (!memory) return fail("open and mmap MAP_SHARED");
    size_t anonymous_bytes = 16384;
    void *anonymous = mmap(NULL, anonymous_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (anonymous == MAP_FAILED) return fail("mmap anonymous");
    memset(anonymous, 0, anonymous_bytes);
    struct iovec buffers[2] = {{memory, bytes}, {anonymous, anonymous_bytes}};
    if (syscall(__NR_io_uring_register, ring, IORING_REGISTER_BUFFERS, buffers, 2) < 0)
        return fail("io_uring_register(IORING_REGISTER_BUFFERS)");
    printf("ready pid %d address %p length %zu anonymous %p length %zu ring fd %d\n", (int)getpid(), memory, bytes,
           anonymous, anonymous_bytes, ring);
    fflush(stdout);
    hold(seconds);
    if (syscall(__NR_io_uring_register, ring, IORING_UNREGISTER_BUFFERS, NULL, 0) < 0)
        return fail("io_uring_register(IORING_UNREGISTER_BUFFERS)");
    close(ring);
    munmap(memory, bytes);
    munmap(anonymous, anonymous_bytes);
    return 0;
}

static int usage(void) {
    fprintf(stderr, "usage: unleased_pin rdma DEVICE PATH BYTES SECONDS\n"
                    "       unleased_pin rdma-odp DEVICE PATH BYTES SECONDS\n"
                    "       unleased_pin io-uring PATH BYTES SECONDS\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc == 6 && strcmp(argv[1], "rdma") == 0)
        return pin_rdma(argv[2], argv[3], strtoull(argv[4], NULL, 0), (unsigned)strtoul(argv[5], NULL, 0), 0);
    if (argc == 6 && strcmp(argv[1], "rdma-odp") == 0)
        return pin_rdma(argv[2], argv[3], strtoull(argv[4], NULL, 0), (unsigned)strtoul(argv[5], NULL, 0),
                        IBV_ACCESS_ON_DEMAND);
    if (argc == 5 && strcmp(argv[1], "io-uring") == 0)
        return pin_io_uring(argv[2], strtoull(argv[3], NULL, 0), (unsigned)strtoul(argv[4], NULL, 0));
    return usage();
}
