/* Peers for the pin + register throughput benchmark. Each repetition maps LENGTH bytes of
 * PATH (a tmpfs file, created at that size, or a device-dax device) with MAP_POPULATE and
 * registers them; only map + populate + register is timed, deregister + unmap are not.
 * mode "raw": ibv_reg_mr on DEVICE; mode "rpma": librpma's rpma_mr_reg on the device that
 * owns ADDR (rpma_utils_get_ibv_context); mode "same": ibv_reg_mr with DaxPin's populate
 * policy instead of MAP_POPULATE (Sources/DaxPin/Memory/Populate.swift): a device-dax range is
 * not populated (the registration's pin faults it in), a file range is faulted in with
 * MADV_POPULATE_READ on up to one thread per online CPU, in parts of 32 MiB or more.
 * Prints the seconds of each repetition.
 *
 * usage: pin_register raw|rpma|same PATH LENGTH REPS DEVICE ADDR
 *
 * Built with -shared -fPIC -DPIN_REGISTER_LIBRARY it has no main and exports
 * pin_register_open, pin_register_once and pin_register_close, so that DaxPinBench can
 * alternate these sequences with DaxPin's pin in one process (DaxPinBench "pin-paired").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
#include <librpma.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what, int code) { fprintf(stderr, "pin_register: %s: %s\n", what, strerror(code)); exit(1); }

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* One peer: its device (or librpma peer) and the open file, set up by pin_register_open. */
struct pin_register {
    int rpma, same, is_char, fd;
    size_t length;
    struct ibv_context *ctx;
    struct ibv_device **list;
    struct rpma_peer *peer;
    struct ibv_pd *pd;
};

/* Exits on failure; MODE is "raw" or "rpma". */
struct pin_register *pin_register_open(const char *mode, const char *path, size_t length, const char *devname,
                                       const char *addr) {
    struct pin_register *h = calloc(1, sizeof *h);
    if (!h) die("calloc", errno);
    h->rpma = strcmp(mode, "rpma") == 0;
    h->same = strcmp(mode, "same") == 0;
    h->length = length;
    if (h->rpma) {
        int rc = rpma_utils_get_ibv_context(addr, RPMA_UTIL_IBV_CONTEXT_LOCAL, &h->ctx);
        if (rc) { fprintf(stderr, "pin_register: rpma_utils_get_ibv_context: %s\n", rpma_err_2str(rc)); exit(1); }
        rc = rpma_peer_new(h->ctx, &h->peer);
        if (rc) { fprintf(stderr, "pin_register: rpma_peer_new: %s\n", rpma_err_2str(rc)); exit(1); }
    } else {
        int ndev = 0;
        h->list = ibv_get_device_list(&ndev);
        for (int i = 0; h->list && i < ndev; i++)
            if (strcmp(ibv_get_device_name(h->list[i]), devname) == 0) h->ctx = ibv_open_device(h->list[i]);
        if (!h->ctx) die("ibv_open_device", errno);
        h->pd = ibv_alloc_pd(h->ctx);
        if (!h->pd) die("ibv_alloc_pd", errno);
    }
    struct stat st;
    int is_char = stat(path, &st) == 0 && S_ISCHR(st.st_mode);
    h->is_char = is_char;
    h->fd = open(path, O_RDWR | O_CLOEXEC | (is_char ? 0 : O_CREAT), 0600);
    if (h->fd < 0) die("open", errno);
    if (!is_char && ftruncate(h->fd, (off_t)length) != 0) die("ftruncate", errno);
    return h;
}

/* DaxPin's populate of a file range (mode "same"): MADV_POPULATE_READ, split over up to one
 * thread per online CPU when each part gets at least 32 MiB (as Populate.range). */
struct populate_part { char *base; size_t length; };
static void *populate_part(void *arg) {
    struct populate_part *part = arg;
    (void)madvise(part->base, part->length, MADV_POPULATE_READ);   /* best effort, as DaxPin */
    return NULL;
}
static void populate_like_daxpin(void *base, size_t length) {
    enum { MAX_PARTS = 64 };
    size_t page = (size_t)sysconf(_SC_PAGESIZE), parts = (size_t)sysconf(_SC_NPROCESSORS_ONLN);
    if (parts > length / (32u << 20)) parts = length / (32u << 20);
    if (parts > MAX_PARTS) parts = MAX_PARTS;
    if (parts <= 1) { (void)madvise(base, length, MADV_POPULATE_READ); return; }
    size_t part_length = (length / parts + page - 1) / page * page;
    struct populate_part part[MAX_PARTS];
    pthread_t thread[MAX_PARTS];
    for (size_t i = 0; i < parts; i++) {
        size_t offset = i * part_length;
        part[i].base = (char *)base + offset;
        part[i].length = offset < length ? (length - offset < part_length ? length - offset : part_length) : 0;
        if (i > 0 && pthread_create(&thread[i], NULL, populate_part, &part[i]) != 0) die("pthread_create", errno);
    }
    populate_part(&part[0]);   /* the calling thread takes the first part, as concurrentPerform */
    for (size_t i = 1; i < parts; i++) pthread_join(thread[i], NULL);
}

/* One repetition: seconds of map + populate + register (deregister + unmap not timed). */
double pin_register_once(struct pin_register *h) {
    int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
    double start = now();
    void *p = mmap(NULL, h->length, PROT_READ | PROT_WRITE, MAP_SHARED | (h->same ? 0 : MAP_POPULATE), h->fd, 0);
    if (p == MAP_FAILED) die("mmap", errno);
    if (h->same && !h->is_char) populate_like_daxpin(p, h->length);
    struct ibv_mr *mr = NULL;
    struct rpma_mr_local *rmr = NULL;
    if (h->rpma) {
        int rc = rpma_mr_reg(h->peer, p, h->length, RPMA_MR_USAGE_WRITE_DST | RPMA_MR_USAGE_READ_SRC, &rmr);
        if (rc) { fprintf(stderr, "pin_register: rpma_mr_reg: %s\n", rpma_err_2str(rc)); exit(1); }
    } else {
        mr = ibv_reg_mr(h->pd, p, h->length, access);
        if (!mr) die("ibv_reg_mr", errno);
    }
    double elapsed = now() - start;
    if (h->rpma) rpma_mr_dereg(&rmr); else ibv_dereg_mr(mr);
    munmap(p, h->length);
    return elapsed;
}

void pin_register_close(struct pin_register *h) {
    close(h->fd);
    if (h->rpma) { rpma_peer_delete(&h->peer); }  /* librpma owns ctx (rdma_cm) */
    else { ibv_dealloc_pd(h->pd); ibv_close_device(h->ctx); ibv_free_device_list(h->list); }
    free(h);
}

#ifndef PIN_REGISTER_LIBRARY
int main(int argc, char **argv) {
    if (argc != 7) { fprintf(stderr, "usage: pin_register raw|rpma|same PATH LENGTH REPS DEVICE ADDR\n"); return 2; }
    int reps = atoi(argv[4]);
    struct pin_register *h = pin_register_open(argv[1], argv[2], strtoull(argv[3], NULL, 10), argv[5], argv[6]);
    for (int rep = 0; rep < reps; rep++) {
        printf("%.9f\n", pin_register_once(h));
        fflush(stdout);
    }
    pin_register_close(h);
    return 0;
}
#endif
