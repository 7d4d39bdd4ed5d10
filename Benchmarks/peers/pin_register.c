/* Peers for the pin + register throughput benchmark. Each repetition maps LENGTH bytes of
 * PATH (a tmpfs file, created at that size, or a device-dax device) with MAP_POPULATE and
 * registers them; only map + populate + register is timed, deregister + unmap are not.
 * mode "raw": ibv_reg_mr on DEVICE; mode "rpma": librpma's rpma_mr_reg on the device that
 * owns ADDR (rpma_utils_get_ibv_context). Prints the seconds of each repetition.
 *
 * usage: pin_register raw|rpma PATH LENGTH REPS DEVICE ADDR
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
#include <librpma.h>
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

int main(int argc, char **argv) {
    if (argc != 7) { fprintf(stderr, "usage: pin_register raw|rpma PATH LENGTH REPS DEVICE ADDR\n"); return 2; }
    int rpma = strcmp(argv[1], "rpma") == 0;
    const char *path = argv[2], *devname = argv[5], *addr = argv[6];
    size_t length = strtoull(argv[3], NULL, 10);
    int reps = atoi(argv[4]);

    struct ibv_context *ctx = NULL;
    struct ibv_device **list = NULL;
    struct rpma_peer *peer = NULL;
    struct ibv_pd *pd = NULL;
    if (rpma) {
        int rc = rpma_utils_get_ibv_context(addr, RPMA_UTIL_IBV_CONTEXT_LOCAL, &ctx);
        if (rc) { fprintf(stderr, "pin_register: rpma_utils_get_ibv_context: %s\n", rpma_err_2str(rc)); return 1; }
        rc = rpma_peer_new(ctx, &peer);
        if (rc) { fprintf(stderr, "pin_register: rpma_peer_new: %s\n", rpma_err_2str(rc)); return 1; }
    } else {
        int ndev = 0;
        list = ibv_get_device_list(&ndev);
        for (int i = 0; list && i < ndev; i++)
            if (strcmp(ibv_get_device_name(list[i]), devname) == 0) ctx = ibv_open_device(list[i]);
        if (!ctx) die("ibv_open_device", errno);
        pd = ibv_alloc_pd(ctx);
        if (!pd) die("ibv_alloc_pd", errno);
    }

    struct stat st;
    int is_char = stat(path, &st) == 0 && S_ISCHR(st.st_mode);
    int fd = open(path, O_RDWR | O_CLOEXEC | (is_char ? 0 : O_CREAT), 0600);
    if (fd < 0) die("open", errno);
    if (!is_char && ftruncate(fd, (off_t)length) != 0) die("ftruncate", errno);
    int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
    for (int rep = 0; rep < reps; rep++) {
        double start = now();
        void *p = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
        if (p == MAP_FAILED) die("mmap", errno);
        struct ibv_mr *mr = NULL;
        struct rpma_mr_local *rmr = NULL;
        if (rpma) {
            int rc = rpma_mr_reg(peer, p, length, RPMA_MR_USAGE_WRITE_DST | RPMA_MR_USAGE_READ_SRC, &rmr);
            if (rc) { fprintf(stderr, "pin_register: rpma_mr_reg: %s\n", rpma_err_2str(rc)); return 1; }
        } else {
            mr = ibv_reg_mr(pd, p, length, access);
            if (!mr) die("ibv_reg_mr", errno);
        }
        double elapsed = now() - start;
        if (rpma) rpma_mr_dereg(&rmr); else ibv_dereg_mr(mr);
        munmap(p, length);
        printf("%.9f\n", elapsed);
        fflush(stdout);
    }
    close(fd);
    if (rpma) { rpma_peer_delete(&peer); }  /* librpma owns ctx (rdma_cm) */
    else { ibv_dealloc_pd(pd); ibv_close_device(ctx); ibv_free_device_list(list); }
    return 0;
}
