/*
 * rxe_odp_write.c - reproducer: RDMA WRITE into a Soft-RoCE (rxe) On-Demand Paging MR
 * lands at the start of the page that holds each packet's target address (and RDMA READ
 * from one reads from there), although the work request completes with IBV_WC_SUCCESS.
 *
 * Two RC QPs on one device, connected to each other (loopback). The target is a 1 MiB
 * MAP_SHARED memfd (tmpfs) mapping registered with IBV_ACCESS_ON_DEMAND (or pinned with
 * --pinned, the control). For each (offset, length) case: fill the target with 0xA5, post
 * one signaled RDMA WRITE from a pinned source holding a per-case pattern, wait (bounded)
 * for the completion and compare. A few RDMA READs from the same MR are checked as well.
 *
 * build: cc -O2 -Wall -Wextra -o rxe_odp_write rxe_odp_write.c -libverbs
 * usage: rxe_odp_write [DEVICE] [--pinned]       (DEVICE: default the first device)
 * exit:  0 every case correct, 1 some case corrupt or failed, 2 the ODP registration was
 *        refused (the kernel's rxe has no ODP, e.g. Linux 6.1), 3 setup error.
 *
 * See README.md next to this file.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#define MR_SIZE        (1u << 20)   /* target MR and local buffer: 1 MiB each */
#define FILL           0xA5         /* untouched bytes; no pattern ever contains it */
#define PORT           1
#define TIMEOUT_MS     5000         /* per work request */
#define MAX_SEGMENTS   12           /* landing-map segments printed per corrupt case */

#define EXIT_ALL_OK    0
#define EXIT_CORRUPT   1
#define EXIT_NO_ODP    2
#define EXIT_SETUP     3

enum op { OP_WRITE, OP_READ };

struct test_case {
    enum op op;
    size_t off;   /* offset in the target MR */
    size_t len;
    const char *what;
};

/* The (offset, length) table. The same table runs at every MTU. */
static const struct test_case cases[] = {
    { OP_WRITE,     0,     1024, "page-aligned, 1 KiB" },
    { OP_WRITE,  4096,     1024, "page-aligned, 1 KiB" },
    { OP_WRITE,  4096,     2048, "page-aligned, 2 KiB inside one page" },
    { OP_WRITE,  4096,     4096, "page-aligned, one whole page" },
    { OP_WRITE,     0,    16384, "page-aligned, 4 pages" },
    { OP_WRITE,  4096,    65536, "page-aligned, 16 pages" },
    { OP_WRITE, 12288,     1000, "page-aligned start, not page-sized" },
    { OP_WRITE,  1024,     1024, "unaligned start (1 KiB into a page), inside one page" },
    { OP_WRITE,  9192,      100, "unaligned start, 100 B inside one page" },
    { OP_WRITE,     3,        1, "unaligned, 1 byte" },
    { OP_WRITE,  4032,      128, "unaligned, 128 B crossing a page boundary" },
    { OP_WRITE,   100,     5000, "unaligned, crossing a page boundary" },
    { OP_WRITE,   512,    16384, "unaligned, crossing 4 page boundaries" },
    { OP_WRITE,  2048,     8192, "unaligned, crossing 2 page boundaries" },
    { OP_READ,   4096,     4096, "page-aligned, one whole page" },
    { OP_READ,      0,    16384, "page-aligned, 4 pages" },
    { OP_READ,    100,     5000, "unaligned, crossing a page boundary" },
    { OP_READ,   2048,     8192, "unaligned, crossing 2 page boundaries" },
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

struct ctx {
    struct ibv_device **list;
    struct ibv_context *verbs;
    struct ibv_pd *pd;
    struct ibv_cq *cq_a, *cq_b;
    struct ibv_qp *qp_a, *qp_b;      /* qp_a posts; qp_b is the responder */
    struct ibv_mr *target_mr, *local_mr;
    int memfd;
    uint8_t *target;                 /* MAP_SHARED memfd mapping */
    uint8_t *local;                  /* WRITE source / READ destination, pinned */
    uint8_t *expect;                 /* copy of the target's pattern for READ cases */
    union ibv_gid gid;
    int gid_index;
    enum ibv_mtu mtu;
};

static int mtu_bytes(enum ibv_mtu m)
{
    switch (m) {
    case IBV_MTU_256:  return 256;
    case IBV_MTU_512:  return 512;
    case IBV_MTU_1024: return 1024;
    case IBV_MTU_2048: return 2048;
    case IBV_MTU_4096: return 4096;
    }
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Pseudo-random bytes that never equal FILL, so that every written byte is visible and
 * any 16-byte window names the one place it came from. */
static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 0x9E3779B9u;
    if (x == 0)
        x = 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        uint8_t b = (uint8_t)(x >> 24);
        p[i] = (b == FILL) ? 0x5A : b;
    }
}

/* ---- landing map: where did the bytes that are not FILL come from? ---------------- */

#define WINDOW 8   /* bytes that identify a position in a pattern */

/* Hash index of every WINDOW-byte window of a pattern (positions are stored + 1). */
struct window_index {
    const uint8_t *src;
    size_t len;
    uint32_t *slot;
    size_t mask;
};

static size_t window_hash(const uint8_t *p, size_t mask)
{
    uint64_t k;
    memcpy(&k, p, sizeof(k));
    return (size_t)((k * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

static bool index_build(struct window_index *ix, const uint8_t *src, size_t len)
{
    size_t n = 1024;
    while (n < 2 * len)
        n <<= 1;
    *ix = (struct window_index){ .src = src, .len = len, .mask = n - 1 };
    ix->slot = calloc(n, sizeof(uint32_t));
    if (!ix->slot)
        return false;
    for (size_t i = 0; i + WINDOW <= len; i++) {
        size_t h = window_hash(src + i, ix->mask);
        while (ix->slot[h])
            h = (h + 1) & ix->mask;
        ix->slot[h] = (uint32_t)i + 1;
    }
    return true;
}

/* Position in the pattern that dst[p..p+WINDOW) came from (hint first), or SIZE_MAX.
 * Shorter remnants (fewer than WINDOW bytes before a FILL byte) are searched linearly, and
 * only where a match means something: 4 bytes or more, or a pattern of at most 64 bytes. */
static size_t index_find(const struct window_index *ix, const uint8_t *dst, size_t dst_len,
                         size_t p, long hint_delta)
{
    size_t w = 0;
    while (p + w < dst_len && dst[p + w] != FILL && w < WINDOW)
        w++;
    long h = (long)p + hint_delta;
    if (h >= 0 && (size_t)h + w <= ix->len && memcmp(dst + p, ix->src + h, w) == 0)
        return (size_t)h;
    if (w == WINDOW) {
        for (size_t i = window_hash(dst + p, ix->mask); ix->slot[i]; i = (i + 1) & ix->mask)
            if (memcmp(ix->src + ix->slot[i] - 1, dst + p, WINDOW) == 0)
                return ix->slot[i] - 1;
        return SIZE_MAX;
    }
    if (w < 4 && ix->len > 64)
        return SIZE_MAX;
    for (size_t i = 0; i + w <= ix->len; i++)
        if (memcmp(ix->src + i, dst + p, w) == 0)
            return i;
    return SIZE_MAX;
}

/* Prints maximal segments "dname[a,b)=sname[c,d)" for the bytes of dst that are not FILL;
 * bytes found nowhere in src print as "dname[a,b)=?zero" (all zero) or "=?[first bytes]".
 * hint_delta: dst[p] should hold src[p + hint_delta]. */
static void print_landing_map(const char *label, const uint8_t *dst, size_t dst_len,
                              const char *dname, const uint8_t *src, size_t src_len,
                              const char *sname, long hint_delta)
{
    struct window_index ix;
    size_t p = 0, printed = 0;

    printf("    %s:", label);
    if (!index_build(&ix, src, src_len)) {
        printf(" (out of memory)\n");
        return;
    }
    while (p < dst_len) {
        if (dst[p] == FILL) {
            p++;
            continue;
        }
        size_t s = index_find(&ix, dst, dst_len, p, hint_delta), n = 0;
        if (s != SIZE_MAX) {
            while (p + n < dst_len && s + n < src_len && dst[p + n] == src[s + n])
                n++;
            if (printed < MAX_SEGMENTS)
                printf(" %s[%zu,%zu)=%s[%zu,%zu)", dname, p, p + n, sname, s, s + n);
        } else {
            /* unknown bytes: up to the next byte that is found again (or FILL) */
            size_t q = p + 1;
            for (; q < dst_len && dst[q] != FILL; q++) {
                size_t t = index_find(&ix, dst, dst_len, q, hint_delta);
                if (t != SIZE_MAX) {
                    while (q > p + 1 && t > 0 && dst[q - 1] == src[t - 1])
                        q--, t--;
                    break;
                }
            }
            n = q - p;
            bool zero = true;
            for (size_t k = 0; k < n && zero; k++)
                zero = dst[p + k] == 0;
            if (printed < MAX_SEGMENTS) {
                printf(" %s[%zu,%zu)=?", dname, p, p + n);
                if (zero) {
                    printf("zero");
                } else {
                    printf("[");
                    for (size_t k = 0; k < n && k < 4; k++)
                        printf("%s%02x", k ? " " : "", dst[p + k]);
                    printf("%s]", n > 4 ? " ..." : "");
                }
            }
        }
        printed++;
        p += n;
    }
    if (printed == 0)
        printf(" nothing");
    if (printed > MAX_SEGMENTS)
        printf(" ... (+%zu more)", printed - MAX_SEGMENTS);
    printf("\n");
    free(ix.slot);
}

/* ---- QP setup -------------------------------------------------------------------- */

static int qp_to_init(struct ibv_qp *qp)
{
    struct ibv_qp_attr a = {
        .qp_state = IBV_QPS_INIT,
        .pkey_index = 0,
        .port_num = PORT,
        .qp_access_flags = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
                           IBV_ACCESS_REMOTE_READ,
    };
    return ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
                         IBV_QP_ACCESS_FLAGS);
}

static int qp_to_rtr(struct ctx *c, struct ibv_qp *qp, uint32_t remote_qpn)
{
    struct ibv_qp_attr a = {
        .qp_state = IBV_QPS_RTR,
        .path_mtu = c->mtu,
        .dest_qp_num = remote_qpn,
        .rq_psn = 0,
        .max_dest_rd_atomic = 1,
        .min_rnr_timer = 12,
        .ah_attr = {
            .is_global = 1,
            .grh = {
                .dgid = c->gid,
                .sgid_index = (uint8_t)c->gid_index,
                .hop_limit = 64,
            },
            .port_num = PORT,
        },
    };
    return ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
                         IBV_QP_DEST_QPN | IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
                         IBV_QP_MIN_RNR_TIMER);
}

static int qp_to_rts(struct ibv_qp *qp)
{
    struct ibv_qp_attr a = {
        .qp_state = IBV_QPS_RTS,
        .timeout = 14,
        .retry_cnt = 7,
        .rnr_retry = 7,      /* infinite: ODP faults may be answered with RNR NAKs */
        .sq_psn = 0,
        .max_rd_atomic = 1,
    };
    return ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
                         IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC);
}

static int qp_reset(struct ibv_qp *qp)
{
    struct ibv_qp_attr a = { .qp_state = IBV_QPS_RESET };
    return ibv_modify_qp(qp, &a, IBV_QP_STATE);
}

/* Connects qp_a and qp_b to each other; returns the failing step or NULL. */
static const char *connect_qps(struct ctx *c)
{
    if (qp_to_init(c->qp_a) || qp_to_init(c->qp_b))
        return "ibv_modify_qp(INIT)";
    if (qp_to_rtr(c, c->qp_a, c->qp_b->qp_num) || qp_to_rtr(c, c->qp_b, c->qp_a->qp_num))
        return "ibv_modify_qp(RTR)";
    if (qp_to_rts(c->qp_a) || qp_to_rts(c->qp_b))
        return "ibv_modify_qp(RTS)";
    return NULL;
}

static void drain_cq(struct ibv_cq *cq)
{
    struct ibv_wc wc;
    for (int i = 0; i < 64 && ibv_poll_cq(cq, 1, &wc) > 0; i++)
        ;
}

/* After an error completion or a timeout: both QPs back to RESET and connected again. */
static const char *reconnect_qps(struct ctx *c)
{
    if (qp_reset(c->qp_a) || qp_reset(c->qp_b))
        return "ibv_modify_qp(RESET)";
    drain_cq(c->cq_a);
    drain_cq(c->cq_b);
    return connect_qps(c);
}

/* Finds the first IPv4-mapped GID (::ffff:a.b.c.d) of the port. */
static int find_ipv4_gid(struct ctx *c, int table_len)
{
    static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    for (int i = 0; i < table_len; i++) {
        union ibv_gid g;
        if (ibv_query_gid(c->verbs, PORT, i, &g))
            continue;
        if (memcmp(g.raw, prefix, sizeof(prefix)) == 0) {
            c->gid = g;
            c->gid_index = i;
            return 0;
        }
    }
    return -1;
}

/* ---- one case -------------------------------------------------------------------- */

/* 1: completion found (*wc filled), 0: timed out, -1: poll error */
static int wait_completion(struct ibv_cq *cq, uint64_t wr_id, struct ibv_wc *wc)
{
    uint64_t deadline = now_ms() + TIMEOUT_MS;
    for (;;) {
        int n = ibv_poll_cq(cq, 1, wc);
        if (n < 0)
            return -1;
        if (n == 1 && wc->wr_id == wr_id)
            return 1;
        if (n == 1)
            continue;   /* a stale completion: skip it */
        if (now_ms() >= deadline)
            return 0;
        struct timespec pause = { 0, 50 * 1000 };
        nanosleep(&pause, NULL);
    }
}

/* Runs one case; returns true if it is correct. Sets *fatal on setup trouble. */
static bool run_case(struct ctx *c, size_t index, const struct test_case *t, bool *fatal)
{
    const bool is_write = t->op == OP_WRITE;
    const int mtu = mtu_bytes(c->mtu);
    const size_t packets = (t->len + (size_t)mtu - 1) / (size_t)mtu;

    if (is_write) {
        memset(c->target, FILL, MR_SIZE);
        fill_pattern(c->local, t->len, (uint32_t)index + 1);
    } else {
        fill_pattern(c->target, MR_SIZE, (uint32_t)index + 1);
        memcpy(c->expect, c->target, MR_SIZE);
        memset(c->local, FILL, MR_SIZE);
    }

    struct ibv_sge sge = {
        .addr = (uintptr_t)c->local,
        .length = (uint32_t)t->len,
        .lkey = c->local_mr->lkey,
    };
    struct ibv_send_wr wr = {
        .wr_id = 1000 + index,
        .sg_list = &sge,
        .num_sge = 1,
        .opcode = is_write ? IBV_WR_RDMA_WRITE : IBV_WR_RDMA_READ,
        .send_flags = IBV_SEND_SIGNALED,
        .wr.rdma = {
            .remote_addr = (uintptr_t)c->target + t->off,
            .rkey = c->target_mr->rkey,
        },
    };
    struct ibv_send_wr *bad = NULL;
    char completion[64];
    bool completed_ok = false;
    int err = ibv_post_send(c->qp_a, &wr, &bad);
    if (err) {
        snprintf(completion, sizeof(completion), "post_failed(%s)", strerror(err));
    } else {
        struct ibv_wc wc;
        int r = wait_completion(c->cq_a, wr.wr_id, &wc);
        if (r == 1 && wc.status == IBV_WC_SUCCESS) {
            snprintf(completion, sizeof(completion), "success");
            completed_ok = true;
        } else if (r == 1) {
            snprintf(completion, sizeof(completion), "%s", ibv_wc_status_str(wc.status));
            for (char *s = completion; *s; s++)
                if (*s == ' ')
                    *s = '_';
        } else {
            snprintf(completion, sizeof(completion), r == 0 ? "timeout" : "poll_failed");
        }
    }

    /* compare */
    size_t target_wrong = 0, outside_changed = 0, mr_changed = 0;
    if (is_write) {
        for (size_t k = 0; k < t->len; k++)
            target_wrong += c->target[t->off + k] != c->local[k];
        for (size_t p = 0; p < MR_SIZE; p++)
            if (p < t->off || p >= t->off + t->len)
                outside_changed += c->target[p] != FILL;
    } else {
        for (size_t k = 0; k < t->len; k++)
            target_wrong += c->local[k] != c->expect[t->off + k];
        for (size_t p = t->len; p < MR_SIZE; p++)
            outside_changed += c->local[p] != FILL;
        for (size_t p = 0; p < MR_SIZE; p++)
            mr_changed += c->target[p] != c->expect[p];
    }
    const bool data_ok = target_wrong == 0 && outside_changed == 0 && mr_changed == 0;
    const char *verdict = !completed_ok ? "FAILED" : data_ok ? "OK" : "CORRUPT";

    printf("%-5s  off=%-5zu len=%-5zu packets=%-2zu completion=%s  target_wrong=%zu"
           "  outside_changed=%zu", is_write ? "WRITE" : "READ", t->off, t->len, packets,
           completion, target_wrong, outside_changed);
    if (mr_changed)
        printf("  mr_changed=%zu", mr_changed);
    printf("  -> %s  (%s)\n", verdict, t->what);
    if (!data_ok) {
        if (is_write)
            print_landing_map("landed", c->target, MR_SIZE, "mr", c->local, t->len, "src",
                              -(long)t->off);
        else
            print_landing_map("read", c->local, MR_SIZE, "buf", c->expect, MR_SIZE, "mr",
                              (long)t->off);
    }
    fflush(stdout);

    if (!completed_ok) {
        const char *step = reconnect_qps(c);
        if (step) {
            fprintf(stderr, "rxe_odp_write: reconnecting the QPs after a failed case: %s: %s\n",
                    step, strerror(errno));
            *fatal = true;
        }
    }
    return completed_ok && data_ok;
}

/* ---- main ------------------------------------------------------------------------ */

static void teardown(struct ctx *c)
{
    if (c->qp_a)
        ibv_destroy_qp(c->qp_a);
    if (c->qp_b)
        ibv_destroy_qp(c->qp_b);
    if (c->cq_a)
        ibv_destroy_cq(c->cq_a);
    if (c->cq_b)
        ibv_destroy_cq(c->cq_b);
    if (c->target_mr)
        ibv_dereg_mr(c->target_mr);
    if (c->local_mr)
        ibv_dereg_mr(c->local_mr);
    if (c->pd)
        ibv_dealloc_pd(c->pd);
    if (c->verbs)
        ibv_close_device(c->verbs);
    if (c->list)
        ibv_free_device_list(c->list);
    if (c->target && c->target != MAP_FAILED)
        munmap(c->target, MR_SIZE);
    if (c->memfd >= 0)
        close(c->memfd);
    free(c->local);
    free(c->expect);
}

#define SETUP_FAIL(...) do {                                            \
        fprintf(stderr, "rxe_odp_write: setup failed: " __VA_ARGS__);  \
        fprintf(stderr, "\n");                                          \
        teardown(&c);                                                   \
        return EXIT_SETUP;                                              \
    } while (0)

int main(int argc, char **argv)
{
    const char *dev_name = NULL;
    bool pinned = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--pinned") == 0) {
            pinned = true;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("usage: %s [DEVICE] [--pinned]\n", argv[0]);
            return 0;
        } else if (argv[i][0] != '-' && !dev_name) {
            dev_name = argv[i];
        } else {
            fprintf(stderr, "usage: %s [DEVICE] [--pinned]\n", argv[0]);
            return EXIT_SETUP;
        }
    }

    for (size_t i = 0; i < NCASES; i++)
        if (cases[i].len == 0 || cases[i].off + cases[i].len > MR_SIZE) {
            fprintf(stderr, "rxe_odp_write: case %zu (off %zu len %zu) is not inside the %u-byte MR\n",
                    i, cases[i].off, cases[i].len, MR_SIZE);
            return EXIT_SETUP;
        }

    struct utsname uts;
    const char *kernel = uname(&uts) == 0 ? uts.release : "unknown";
    const long page_size = sysconf(_SC_PAGESIZE);
    struct ctx c = { .memfd = -1, .gid_index = -1 };

    int ndev = 0;
    c.list = ibv_get_device_list(&ndev);
    if (!c.list)
        SETUP_FAIL("ibv_get_device_list: %s", strerror(errno));
    struct ibv_device *dev = NULL;
    for (int i = 0; i < ndev; i++)
        if (!dev_name || strcmp(ibv_get_device_name(c.list[i]), dev_name) == 0) {
            dev = c.list[i];
            break;
        }
    if (!dev)
        SETUP_FAIL("no RDMA device %s (modprobe rdma_rxe; rdma link add rxe0 type rxe netdev IFACE)",
                   dev_name ? dev_name : "at all");
    dev_name = ibv_get_device_name(dev);
    c.verbs = ibv_open_device(dev);
    if (!c.verbs)
        SETUP_FAIL("ibv_open_device(%s): %s", dev_name, strerror(errno));

    struct ibv_port_attr port;
    if (ibv_query_port(c.verbs, PORT, &port))
        SETUP_FAIL("ibv_query_port(%s, %d): %s", dev_name, PORT, strerror(errno));
    if (port.state != IBV_PORT_ACTIVE)
        SETUP_FAIL("%s port %d is not active (state %d)", dev_name, PORT, port.state);
    c.mtu = port.active_mtu;
    if (find_ipv4_gid(&c, port.gid_tbl_len))
        SETUP_FAIL("%s port %d has no IPv4-mapped GID (give its netdev an IPv4 address)",
                   dev_name, PORT);

    uint64_t odp_general = 0;
    uint32_t odp_rc = 0;
    struct ibv_device_attr_ex dattr;
    memset(&dattr, 0, sizeof(dattr));
    if (ibv_query_device_ex(c.verbs, NULL, &dattr) == 0) {
        odp_general = dattr.odp_caps.general_caps;
        odp_rc = dattr.odp_caps.per_transport_caps.rc_odp_caps;
    }

    printf("rxe_odp_write: kernel %s, device %s port %d, active_mtu %d, gid_index %d"
           " (::ffff:%u.%u.%u.%u), page size %ld, target %s (1 MiB MAP_SHARED memfd),"
           " odp_caps general=0x%" PRIx64 " rc=0x%" PRIx32 "\n",
           kernel, dev_name, PORT, mtu_bytes(c.mtu), c.gid_index, c.gid.raw[12],
           c.gid.raw[13], c.gid.raw[14], c.gid.raw[15], page_size,
           pinned ? "pinned" : "odp", odp_general, odp_rc);
    fflush(stdout);

    c.pd = ibv_alloc_pd(c.verbs);
    if (!c.pd)
        SETUP_FAIL("ibv_alloc_pd: %s", strerror(errno));

    /* target: 1 MiB MAP_SHARED memfd (tmpfs), touched before registration */
    c.memfd = memfd_create("rxe-odp-target", MFD_CLOEXEC);
    if (c.memfd < 0)
        SETUP_FAIL("memfd_create: %s", strerror(errno));
    if (ftruncate(c.memfd, MR_SIZE))
        SETUP_FAIL("ftruncate(memfd, %u): %s", MR_SIZE, strerror(errno));
    c.target = mmap(NULL, MR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, c.memfd, 0);
    if (c.target == MAP_FAILED)
        SETUP_FAIL("mmap(memfd): %s", strerror(errno));
    memset(c.target, FILL, MR_SIZE);

    int target_access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
                        IBV_ACCESS_REMOTE_READ;
    if (!pinned)
        target_access |= IBV_ACCESS_ON_DEMAND;
    c.target_mr = ibv_reg_mr(c.pd, c.target, MR_SIZE, target_access);
    if (!c.target_mr && !pinned) {
        int e = errno;
        printf("ODP registration refused: ibv_reg_mr(LOCAL_WRITE|REMOTE_WRITE|REMOTE_READ|"
               "ON_DEMAND) on %s failed: %s (errno %d); odp_caps general=0x%" PRIx64
               " rc=0x%" PRIx32 "\n", dev_name, strerror(e), e, odp_general, odp_rc);
        printf("RESULT: no ODP on this kernel's %s (mtu %d, odp, kernel %s)\n", dev_name,
               mtu_bytes(c.mtu), kernel);
        teardown(&c);
        return EXIT_NO_ODP;
    }
    if (!c.target_mr)
        SETUP_FAIL("ibv_reg_mr(target, pinned): %s (RLIMIT_MEMLOCK? try ulimit -l unlimited)",
                   strerror(errno));

    /* local: pinned, private; the WRITE source and the READ destination */
    c.local = aligned_alloc((size_t)page_size, MR_SIZE);
    c.expect = malloc(MR_SIZE);
    if (!c.local || !c.expect)
        SETUP_FAIL("out of memory");
    memset(c.local, FILL, MR_SIZE);
    c.local_mr = ibv_reg_mr(c.pd, c.local, MR_SIZE, IBV_ACCESS_LOCAL_WRITE);
    if (!c.local_mr)
        SETUP_FAIL("ibv_reg_mr(local, pinned): %s (RLIMIT_MEMLOCK? try ulimit -l unlimited)",
                   strerror(errno));

    c.cq_a = ibv_create_cq(c.verbs, 16, NULL, NULL, 0);
    c.cq_b = ibv_create_cq(c.verbs, 16, NULL, NULL, 0);
    if (!c.cq_a || !c.cq_b)
        SETUP_FAIL("ibv_create_cq: %s", strerror(errno));
    struct ibv_qp_init_attr qpa = {
        .qp_type = IBV_QPT_RC,
        .cap = { .max_send_wr = 8, .max_recv_wr = 8, .max_send_sge = 1, .max_recv_sge = 1 },
        .sq_sig_all = 0,
    };
    qpa.send_cq = qpa.recv_cq = c.cq_a;
    c.qp_a = ibv_create_qp(c.pd, &qpa);
    qpa.send_cq = qpa.recv_cq = c.cq_b;
    c.qp_b = ibv_create_qp(c.pd, &qpa);
    if (!c.qp_a || !c.qp_b)
        SETUP_FAIL("ibv_create_qp(RC): %s", strerror(errno));
    const char *step = connect_qps(&c);
    if (step)
        SETUP_FAIL("%s: %s", step, strerror(errno));

    size_t bad = 0;
    bool fatal = false;
    for (size_t i = 0; i < NCASES && !fatal; i++)
        bad += !run_case(&c, i, &cases[i], &fatal);
    if (fatal)
        SETUP_FAIL("stopped after a failed case (QPs could not be reconnected)");

    printf("RESULT: %zu of %zu cases corrupt (mtu %d, %s, kernel %s)\n", bad, NCASES,
           mtu_bytes(c.mtu), pinned ? "pinned" : "odp", kernel);
    teardown(&c);
    return bad ? EXIT_CORRUPT : EXIT_ALL_OK;
}
