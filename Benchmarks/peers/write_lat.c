/* Strict peer for the 64 B RDMA WRITE latency row: what DaxPin's "rdma write 64B" benchmark
 * (Benchmarks/DaxPinBenchmarks) does, in C with raw libibverbs. Two RC queue pairs in this
 * one process on DEVICE, connected to each other directly (QPN/PSN/GID exchanged in memory,
 * INIT/RTR/RTS with the same attributes as Sources/DaxPin/Verbs/QueuePair.swift), a 1 MiB
 * tmpfs file mapping registered as the target and a 4 KiB anonymous source. Each iteration
 * posts ONE signaled 64-byte IBV_WR_RDMA_WRITE (not inline) to target + 128 and busy-polls
 * the send CQ with ibv_poll_cq(cq, 1, &wc) until its completion, yielding the CPU every 64
 * empty polls; post to completion is timed with CLOCK_MONOTONIC. WARMUP iterations are
 * dropped; each measured one is printed in nanoseconds, one per line.
 *
 * usage: write_lat DEVICE TMPFS_FILE ITERATIONS WARMUP
 *
 * Built with -shared -fPIC -DWRITE_LAT_LIBRARY it has no main and exports write_lat_open,
 * write_lat_once and write_lat_close, so that DaxPinBench can alternate this C sequence with
 * DaxPin's write in one process (Benchmarks/Tools/DaxPinBench, "write-latency").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PORT 1
#define DEPTH 64               /* QueuePair(device:depth:) default */
#define TARGET_BYTES (1 << 20) /* the benchmark's tmpfs target */
#define SOURCE_BYTES 4096      /* the benchmark's anonymous source */
#define WRITE_BYTES 64
#define WRITE_OFFSET 128       /* client.write(local, to: remote, offset: 128) */
#define TIMEOUT_NS 10000000000LL /* QueuePair.write's default timeout, 10 s */

static void die(const char *what, int code) {
    fprintf(stderr, "write_lat: %s: %s\n", what, strerror(code));
    exit(1);
}

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

struct endpoint {
    uint32_t qpn, psn;
    uint16_t lid;
    union ibv_gid gid;
};

struct side {
    struct ibv_cq *cq;
    struct ibv_qp *qp;
    struct endpoint ep;
};

/* QueuePair.chooseGID: the first IPv4-mapped RoCE GID, else the first non-zero one, else 0. */
static int choose_gid(struct ibv_context *ctx) {
    struct ibv_port_attr port;
    if (ibv_query_port(ctx, PORT, &port) != 0) return 0;
    int first_nonzero = -1;
    for (int i = 0; i < port.gid_tbl_len; i++) {
        union ibv_gid gid;
        if (ibv_query_gid(ctx, PORT, i, &gid) != 0) continue;
        static const uint8_t zero[16];
        if (memcmp(gid.raw, zero, 16) == 0) continue;
        if (memcmp(gid.raw, zero, 10) == 0 && gid.raw[10] == 0xff && gid.raw[11] == 0xff) return i;
        if (first_nonzero < 0) first_nonzero = i;
    }
    return first_nonzero < 0 ? 0 : first_nonzero;
}

static void create_side(struct ibv_context *ctx, struct ibv_pd *pd, int gid_index, struct side *s) {
    s->cq = ibv_create_cq(ctx, DEPTH * 2, NULL, NULL, 0);
    if (!s->cq) die("ibv_create_cq", errno);
    struct ibv_qp_init_attr init;
    memset(&init, 0, sizeof init);
    init.send_cq = s->cq;
    init.recv_cq = s->cq;
    init.qp_type = IBV_QPT_RC;
    init.sq_sig_all = 1;
    init.cap.max_send_wr = DEPTH;
    init.cap.max_recv_wr = DEPTH;
    init.cap.max_send_sge = 1;
    init.cap.max_recv_sge = 1;
    s->qp = ibv_create_qp(pd, &init);
    if (!s->qp) die("ibv_create_qp", errno);

    struct ibv_port_attr port;
    int rc = ibv_query_port(ctx, PORT, &port);
    if (rc) die("ibv_query_port", rc);
    rc = ibv_query_gid(ctx, PORT, gid_index, &s->ep.gid);
    if (rc) die("ibv_query_gid", rc);
    s->ep.qpn = s->qp->qp_num;
    s->ep.psn = (uint32_t)random() & 0xffffff;
    s->ep.lid = port.lid;
}

static void modify(struct ibv_qp *qp, struct ibv_qp_attr *attr, int mask, const char *state) {
    int rc = ibv_modify_qp(qp, attr, mask);
    if (rc) {
        char what[64];
        snprintf(what, sizeof what, "ibv_modify_qp(%s)", state);
        die(what, rc);
    }
}

/* QueuePair.connect(to:): INIT, RTR, RTS with the same attributes. */
static void connect_side(struct ibv_context *ctx, int gid_index, struct side *s, const struct endpoint *remote) {
    struct ibv_port_attr port;
    int rc = ibv_query_port(ctx, PORT, &port);
    if (rc) die("ibv_query_port", rc);

    struct ibv_qp_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.qp_state = IBV_QPS_INIT;
    attr.pkey_index = 0;
    attr.port_num = PORT;
    attr.qp_access_flags = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
    modify(s->qp, &attr, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS, "INIT");

    memset(&attr, 0, sizeof attr);
    attr.qp_state = IBV_QPS_RTR;
    attr.path_mtu = port.active_mtu;
    attr.dest_qp_num = remote->qpn;
    attr.rq_psn = remote->psn;
    attr.max_dest_rd_atomic = 1;
    attr.min_rnr_timer = 12;
    attr.ah_attr.is_global = 1;
    attr.ah_attr.dlid = remote->lid;
    attr.ah_attr.port_num = PORT;
    attr.ah_attr.grh.hop_limit = 1;
    attr.ah_attr.grh.sgid_index = (uint8_t)gid_index;
    attr.ah_attr.grh.dgid = remote->gid;
    modify(s->qp, &attr, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN
                         | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER, "RTR");

    memset(&attr, 0, sizeof attr);
    attr.qp_state = IBV_QPS_RTS;
    attr.timeout = 14;
    attr.retry_cnt = 7;
    attr.rnr_retry = 7;
    attr.sq_psn = s->ep.psn;
    attr.max_rd_atomic = 1;
    modify(s->qp, &attr, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN
                         | IBV_QP_MAX_QP_RD_ATOMIC, "RTS");
}

/* Everything one measurement needs, set up by write_lat_open. */
struct write_lat {
    struct ibv_device **list;
    struct ibv_context *ctx;
    struct ibv_pd *pd;
    int fd;
    void *target, *source;
    struct ibv_mr *target_mr, *source_mr;
    struct side server, client;
    uint64_t next_id;
};

struct write_lat *write_lat_open(const char *devname, const char *path) {
    struct write_lat *w = calloc(1, sizeof *w);
    if (!w) die("calloc", errno);
    srandom((unsigned)(now_ns() ^ getpid()));
    int ndev = 0;
    w->list = ibv_get_device_list(&ndev);
    if (!w->list) die("ibv_get_device_list", errno);
    for (int i = 0; i < ndev && !w->ctx; i++)
        if (strcmp(ibv_get_device_name(w->list[i]), devname) == 0) {
            w->ctx = ibv_open_device(w->list[i]);
            if (!w->ctx) die("ibv_open_device", errno);
        }
    if (!w->ctx) { fprintf(stderr, "write_lat: no RDMA device named %s\n", devname); exit(1); }
    w->pd = ibv_alloc_pd(w->ctx);
    if (!w->pd) die("ibv_alloc_pd", errno);
    int gid_index = choose_gid(w->ctx);

    /* Target: a 1 MiB tmpfs file, mapped shared; source: 4 KiB anonymous. */
    int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
    w->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (w->fd < 0) die("open", errno);
    if (ftruncate(w->fd, TARGET_BYTES) != 0) die("ftruncate", errno);
    w->target = mmap(NULL, TARGET_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, w->fd, 0);
    if (w->target == MAP_FAILED) die("mmap (target)", errno);
    w->target_mr = ibv_reg_mr(w->pd, w->target, TARGET_BYTES, access);
    if (!w->target_mr) die("ibv_reg_mr (target)", errno);
    w->source = mmap(NULL, SOURCE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (w->source == MAP_FAILED) die("mmap (source)", errno);
    memset(w->source, 0xa5, SOURCE_BYTES);
    w->source_mr = ibv_reg_mr(w->pd, w->source, SOURCE_BYTES, access);
    if (!w->source_mr) die("ibv_reg_mr (source)", errno);

    create_side(w->ctx, w->pd, gid_index, &w->server);
    create_side(w->ctx, w->pd, gid_index, &w->client);
    connect_side(w->ctx, gid_index, &w->server, &w->client.ep);
    connect_side(w->ctx, gid_index, &w->client, &w->server.ep);
    return w;
}

/* One signaled 64 B WRITE, post to completion: its time in ns. Exits on any failure. */
int64_t write_lat_once(struct write_lat *w) {
    uint64_t id = ++w->next_id;
    struct ibv_sge sge = { .addr = (uintptr_t)w->source, .length = WRITE_BYTES, .lkey = w->source_mr->lkey };
    struct ibv_send_wr wr, *bad = NULL;
    memset(&wr, 0, sizeof wr);
    wr.wr_id = id;
    wr.opcode = IBV_WR_RDMA_WRITE;
    wr.sg_list = &sge;
    wr.num_sge = 1;
    wr.send_flags = IBV_SEND_SIGNALED;
    wr.wr.rdma.remote_addr = (uintptr_t)w->target + WRITE_OFFSET;
    wr.wr.rdma.rkey = w->target_mr->rkey;

    int64_t start = now_ns(), deadline = start + TIMEOUT_NS;
    int rc = ibv_post_send(w->client.qp, &wr, &bad);
    if (rc) die("ibv_post_send", rc);
    struct ibv_wc wc;
    unsigned long empty = 0;
    for (;;) {
        int n = ibv_poll_cq(w->client.cq, 1, &wc);
        if (n < 0) { fprintf(stderr, "write_lat: ibv_poll_cq failed (%d)\n", n); exit(1); }
        if (n == 0) {
            if (++empty % 64 == 0) {
                if (now_ns() >= deadline) { fprintf(stderr, "write_lat: no completion within 10 s (write %llu)\n", (unsigned long long)id); exit(1); }
                sched_yield();
            }
            continue;
        }
        if (wc.wr_id == id) break;  /* as QueuePair: skip stale completions */
    }
    int64_t elapsed = now_ns() - start;
    if (wc.status != IBV_WC_SUCCESS) {
        fprintf(stderr, "write_lat: RDMA WRITE completed with %s (write %llu)\n", ibv_wc_status_str(wc.status), (unsigned long long)id);
        exit(1);
    }
    return elapsed;
}

/* Checks that the target holds the written bytes, then tears down: QPs before their CQs,
 * MRs before their memory, PD before closing. */
void write_lat_close(struct write_lat *w) {
    if (w->next_id > 0 && memcmp((char *)w->target + WRITE_OFFSET, w->source, WRITE_BYTES) != 0) {
        fprintf(stderr, "write_lat: the target does not hold the written bytes\n");
        exit(1);
    }
    int rc;
    if ((rc = ibv_destroy_qp(w->client.qp))) die("ibv_destroy_qp", rc);
    if ((rc = ibv_destroy_qp(w->server.qp))) die("ibv_destroy_qp", rc);
    if ((rc = ibv_destroy_cq(w->client.cq))) die("ibv_destroy_cq", rc);
    if ((rc = ibv_destroy_cq(w->server.cq))) die("ibv_destroy_cq", rc);
    if ((rc = ibv_dereg_mr(w->source_mr))) die("ibv_dereg_mr", rc);
    if ((rc = ibv_dereg_mr(w->target_mr))) die("ibv_dereg_mr", rc);
    if (munmap(w->source, SOURCE_BYTES) != 0) die("munmap", errno);
    if (munmap(w->target, TARGET_BYTES) != 0) die("munmap", errno);
    if (close(w->fd) != 0) die("close", errno);
    if ((rc = ibv_dealloc_pd(w->pd))) die("ibv_dealloc_pd", rc);
    if ((rc = ibv_close_device(w->ctx))) die("ibv_close_device", rc);
    ibv_free_device_list(w->list);
    free(w);
}

#ifndef WRITE_LAT_LIBRARY
int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: write_lat DEVICE TMPFS_FILE ITERATIONS WARMUP\n"); return 2; }
    long iterations = strtol(argv[3], NULL, 10), warmup = strtol(argv[4], NULL, 10);
    if (iterations <= 0 || warmup < 0) { fprintf(stderr, "write_lat: ITERATIONS must be > 0, WARMUP >= 0\n"); return 2; }
    struct write_lat *w = write_lat_open(argv[1], argv[2]);
    int64_t *samples = calloc((size_t)iterations, sizeof *samples);
    if (!samples) die("calloc", errno);
    for (long i = 0; i < warmup + iterations; i++) {
        int64_t elapsed = write_lat_once(w);
        if (i >= warmup) samples[i - warmup] = elapsed;
    }
    for (long i = 0; i < iterations; i++) printf("%lld\n", (long long)samples[i]);
    if (fflush(stdout) != 0) die("write to stdout", errno);
    free(samples);
    write_lat_close(w);
    return 0;
}
#endif
