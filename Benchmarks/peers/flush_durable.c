/* Strict peer for the native RDMA FLUSH durable-write row (newest kernel): what DaxPin's
 * client does for one durable 4 KiB block at queue depth 1 with native FLUSH
 * (RDMAConnection.postWrite(_:to:offset:id:signaled:thenFlush:length:flushID:) and
 * completions(into:timeout:), as daxpin-client --persist-method flush and DaxPinBench
 * flush-paired call them), in C with raw libibverbs and librdmacm, against the same server
 * (daxpin-server --persist-method flush, whose export is a device-dax MR registered for
 * persistent FLUSH) and the same rdma-core as DaxPin's build.
 *
 * Connection (RDMAConnection.connect): rdma_resolve_addr / rdma_resolve_route, a protection
 * domain on the route's device, a send and a receive completion queue each with its own
 * completion channel (non-blocking), an extended RC queue pair (rdma_create_qp_ex with
 * IBV_QP_EX_WITH_RDMA_WRITE | READ | SEND | FLUSH, the caps of Options(depth: 1)), 16 receive
 * buffers of 256 bytes posted, rdma_connect with the storage protocol's client hello,
 * responder resources and initiator depth 16, retry and RNR retry 7. The server's hello
 * (accept private data) gives the export's address, length and rkey, and must offer FLUSH.
 *
 * Per block: ONE ibv_wr_start / ibv_wr_complete batch of an unsignaled ibv_wr_rdma_write of
 * the 4 KiB source (wr_id = the block number) and a signaled ibv_wr_flush(IBV_FLUSH_PERSISTENT,
 * IBV_FLUSH_RANGE) of the same 4 KiB (wr_id = 1 << 62); then completions are taken until the
 * FLUSH's, every one checked for success. The wait is CompletionQueue.poll's: one
 * ibv_poll_cq of up to 16 entries; if empty and the queue completed something within the busy
 * window (2 ms, at least two ticks of CLOCK_MONOTONIC_COARSE), spin on ibv_poll_cq, reading
 * CLOCK_BOOTTIME (Swift's ContinuousClock) and yielding the CPU every 64 empty polls, for at
 * most 200 µs; then sleep: ibv_req_notify_cq, poll once more, poll(2) on the channel's
 * descriptor, drain its events (acknowledged every 64), until the 10 s timeout.
 *
 * Built with -shared -fPIC -DFLUSH_DURABLE_LIBRARY it has no main and exports
 * flush_durable_open, flush_durable_write and flush_durable_close, so that DaxPinBench can
 * alternate this C sequence with DaxPin's in one process (Benchmarks/Tools/DaxPinBench,
 * "flush-paired"). Needs rdma-core 45 or later (ibv_wr_flush).
 *
 * usage: flush_durable ADDRESS PORT BLOCK_SIZE BLOCKS OFFSET
 *   writes BLOCKS blocks durably from OFFSET in the export (wrapping at its end) and prints
 *   "BYTES <bytes> NS <nanoseconds>" for the block loop.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
#include <netdb.h>
#include <poll.h>
#include <rdma/rdma_cma.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define DEPTH 1                      /* RDMAConnection.Options(depth: 1) */
#define RECEIVE_SLOTS 16             /* Options.receiveSlots default */
#define MESSAGE_SIZE 256             /* Options.messageSize default */
#define BATCH 16                     /* CompletionQueue.batch */
#define SPIN_BUDGET_NS 200000LL      /* CompletionQueue.spinBudget */
#define BUSY_WINDOW_NS 2000000LL     /* CompletionQueue.busyWindow */
#define POLLS_PER_CLOCK_READ 64      /* CompletionQueue.pollsPerClockRead */
#define TIMEOUT_NS 10000000000LL     /* the client's completions(into:timeout: .seconds(10)) */
#define CM_TIMEOUT_MS 10000          /* RDMAConnection.connect's default timeout */
#define FLUSH_ID (1ULL << 62)        /* the persist READ / FLUSH id of daxpin-client */
#define STORAGE_MAGIC 0x53505844u    /* StorageProtocol.magic */
#define STORAGE_VERSION 1
#define HELLO_REMOTE_FLUSH (1u << 1) /* ServerHello.Flags.remoteFlush */

static void die(const char *what, int code) {
    fprintf(stderr, "flush_durable: %s: %s\n", what, strerror(code));
    exit(1);
}

static int64_t clock_ns(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

struct flush_durable {
    struct rdma_event_channel *events;
    struct rdma_cm_id *id;
    struct ibv_pd *pd;
    struct ibv_comp_channel *send_channel, *recv_channel;
    struct ibv_cq *send_cq, *recv_cq;
    struct ibv_qp_ex *qpx;
    void *pool, *source;
    struct ibv_mr *pool_mr, *source_mr;
    size_t block_size, source_bytes;
    uint64_t remote_address, remote_length, offset, blocks_in_span;
    uint32_t rkey;
    int64_t busy_window_ns, last_completion; /* CLOCK_MONOTONIC_COARSE; last < 0: never */
    unsigned unacknowledged;
    struct ibv_wc entries[BATCH];
};

/* The next rdma_cm event, which must be EXPECTED; its private data is copied to DATA. */
static void expect_event(struct flush_durable *f, enum rdma_cm_event_type expected, uint8_t *data, size_t *length) {
    struct pollfd descriptor = { .fd = f->events->fd, .events = POLLIN };
    if (poll(&descriptor, 1, CM_TIMEOUT_MS) <= 0) {
        fprintf(stderr, "flush_durable: no %s within %d ms\n", rdma_event_str(expected), CM_TIMEOUT_MS);
        exit(1);
    }
    struct rdma_cm_event *event;
    if (rdma_get_cm_event(f->events, &event) != 0) die("rdma_get_cm_event", errno);
    if (event->event != expected) {
        fprintf(stderr, "flush_durable: %s (status %d), expected %s\n", rdma_event_str(event->event), event->status,
                rdma_event_str(expected));
        exit(1);
    }
    if (data && length) {
        size_t n = event->param.conn.private_data_len;
        if (n > *length) n = *length;
        if (event->param.conn.private_data) memcpy(data, event->param.conn.private_data, n);
        *length = event->param.conn.private_data_len ? n : 0;
    }
    rdma_ack_cm_event(event);
}

static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

static struct ibv_cq *create_cq(struct flush_durable *f, int depth, struct ibv_comp_channel **channel) {
    *channel = ibv_create_comp_channel(f->id->verbs);
    if (!*channel) die("ibv_create_comp_channel", errno);
    int flags = fcntl((*channel)->fd, F_GETFL);
    if (flags < 0 || fcntl((*channel)->fd, F_SETFL, flags | O_NONBLOCK) != 0) die("fcntl(O_NONBLOCK)", errno);
    struct ibv_cq *cq = ibv_create_cq(f->id->verbs, depth, NULL, *channel, 0);
    if (!cq) die("ibv_create_cq", errno);
    return cq;
}

struct flush_durable *flush_durable_open(const char *address, const char *port, size_t block_size, uint64_t offset) {
    struct flush_durable *f = calloc(1, sizeof *f);
    if (!f) die("calloc", errno);
    f->block_size = block_size;
    f->last_completion = -1;
    struct timespec resolution;
    clock_getres(CLOCK_MONOTONIC_COARSE, &resolution);
    int64_t tick = (int64_t)resolution.tv_sec * 1000000000LL + resolution.tv_nsec;
    f->busy_window_ns = BUSY_WINDOW_NS > 2 * tick ? BUSY_WINDOW_NS : 2 * tick;

    f->events = rdma_create_event_channel();
    if (!f->events) die("rdma_create_event_channel", errno);
    if (rdma_create_id(f->events, &f->id, NULL, RDMA_PS_TCP) != 0) die("rdma_create_id", errno);
    struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *destination;
    int rc = getaddrinfo(address, port, &hints, &destination);
    if (rc != 0) { fprintf(stderr, "flush_durable: %s:%s: %s\n", address, port, gai_strerror(rc)); exit(1); }
    if (rdma_resolve_addr(f->id, NULL, destination->ai_addr, CM_TIMEOUT_MS) != 0) die("rdma_resolve_addr", errno);
    freeaddrinfo(destination);
    expect_event(f, RDMA_CM_EVENT_ADDR_RESOLVED, NULL, NULL);
    if (rdma_resolve_route(f->id, CM_TIMEOUT_MS) != 0) die("rdma_resolve_route", errno);
    expect_event(f, RDMA_CM_EVENT_ROUTE_RESOLVED, NULL, NULL);
    if (!f->id->verbs) { fprintf(stderr, "flush_durable: no RDMA device on the route\n"); exit(1); }
    f->pd = ibv_alloc_pd(f->id->verbs);
    if (!f->pd) die("ibv_alloc_pd", errno);

    f->send_cq = create_cq(f, DEPTH + 8, &f->send_channel);
    f->recv_cq = create_cq(f, RECEIVE_SLOTS + 1, &f->recv_channel);
    size_t pool_bytes = (RECEIVE_SLOTS + 1) * MESSAGE_SIZE;
    if (posix_memalign(&f->pool, 4096, pool_bytes) != 0) die("posix_memalign", ENOMEM);
    memset(f->pool, 0, pool_bytes);
    f->pool_mr = ibv_reg_mr(f->pd, f->pool, pool_bytes, IBV_ACCESS_LOCAL_WRITE);
    if (!f->pool_mr) die("ibv_reg_mr (message pool)", errno);

    struct ibv_qp_init_attr_ex attr;
    memset(&attr, 0, sizeof attr);
    attr.send_cq = f->send_cq;
    attr.recv_cq = f->recv_cq;
    attr.qp_type = IBV_QPT_RC;
    attr.sq_sig_all = 0;
    attr.cap.max_send_wr = DEPTH + 4;
    attr.cap.max_recv_wr = RECEIVE_SLOTS;
    attr.cap.max_send_sge = 1;
    attr.cap.max_recv_sge = 1;
    attr.pd = f->pd;
    attr.comp_mask = IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_SEND_OPS_FLAGS;
    attr.send_ops_flags = IBV_QP_EX_WITH_RDMA_WRITE | IBV_QP_EX_WITH_RDMA_READ | IBV_QP_EX_WITH_SEND | IBV_QP_EX_WITH_FLUSH;
    if (rdma_create_qp_ex(f->id, &attr) != 0) die("rdma_create_qp_ex (FLUSH)", errno);
    f->qpx = ibv_qp_to_qp_ex(f->id->qp);
    if (!f->qpx) die("ibv_qp_to_qp_ex", EINVAL);
    for (int slot = 0; slot < RECEIVE_SLOTS; slot++) {
        struct ibv_sge sge = { .addr = (uintptr_t)f->pool + (uint64_t)slot * MESSAGE_SIZE, .length = MESSAGE_SIZE,
                               .lkey = f->pool_mr->lkey };
        struct ibv_recv_wr wr = { .wr_id = (uint64_t)slot, .sg_list = &sge, .num_sge = 1 }, *bad;
        if ((rc = ibv_post_recv(f->id->qp, &wr, &bad)) != 0) die("ibv_post_recv", rc);
    }

    /* The source: anonymous memory, two blocks as DaxPin's client pins them, filled once. */
    f->source_bytes = 2 * block_size;
    f->source = mmap(NULL, f->source_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (f->source == MAP_FAILED) die("mmap (source)", errno);
    for (size_t i = 0; i < block_size; i++) ((uint8_t *)f->source)[i] = (uint8_t)(i * 31 + 7);
    f->source_mr = ibv_reg_mr(f->pd, f->source, f->source_bytes,
                              IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
    if (!f->source_mr) die("ibv_reg_mr (source)", errno);

    uint8_t hello[8] = { 0 };
    for (int i = 0; i < 4; i++) hello[i] = (uint8_t)(STORAGE_MAGIC >> (8 * i));
    hello[4] = STORAGE_VERSION;
    struct rdma_conn_param param;
    memset(&param, 0, sizeof param);
    param.private_data = hello;
    param.private_data_len = sizeof hello;
    param.responder_resources = 16;
    param.initiator_depth = 16;
    param.retry_count = 7;
    param.rnr_retry_count = 7;
    if (rdma_connect(f->id, &param) != 0) die("rdma_connect", errno);
    uint8_t reply[64];
    size_t reply_length = sizeof reply;
    expect_event(f, RDMA_CM_EVENT_ESTABLISHED, reply, &reply_length);
    /* ServerHello: magic u32, version u8, flags u8, u16, client id u32, address u64, length u64, rkey u32 (LE). */
    if (reply_length < 32 || le32(reply) != STORAGE_MAGIC) { fprintf(stderr, "flush_durable: the server's hello is malformed\n"); exit(1); }
    if (!(reply[5] & HELLO_REMOTE_FLUSH)) { fprintf(stderr, "flush_durable: the server does not offer RDMA FLUSH\n"); exit(1); }
    f->remote_address = le64(reply + 12);
    f->remote_length = le64(reply + 20);
    f->rkey = le32(reply + 28);
    if (offset % block_size != 0 || offset + block_size > f->remote_length) {
        fprintf(stderr, "flush_durable: offset %llu does not fit the export (%llu bytes)\n", (unsigned long long)offset,
                (unsigned long long)f->remote_length);
        exit(1);
    }
    f->offset = offset;
    f->blocks_in_span = (f->remote_length - offset) / block_size;
    return f;
}

/* One look at the send CQ: how many completions (into f->entries), 0 if none. */
static int take(struct flush_durable *f) {
    int n = ibv_poll_cq(f->send_cq, BATCH, f->entries);
    if (n < 0) { fprintf(stderr, "flush_durable: ibv_poll_cq failed (%d)\n", n); exit(1); }
    if (n > 0) f->last_completion = clock_ns(CLOCK_MONOTONIC_COARSE);
    return n;
}

/* CompletionQueue.poll(maximum: 16, timeout: 10 s): completions found, 0 on timeout. */
static int wait_completions(struct flush_durable *f) {
    int n = take(f);
    if (n) return n;
    int busy = f->last_completion >= 0 && clock_ns(CLOCK_MONOTONIC_COARSE) - f->last_completion < f->busy_window_ns;
    int64_t start = -1;
    if (busy) {
        for (unsigned long empty = 1;; empty++) {
            if ((n = take(f))) return n;
            if (empty % POLLS_PER_CLOCK_READ != 0) continue;
            int64_t now = clock_ns(CLOCK_BOOTTIME);
            if (start < 0) start = now;
            if (now - start >= (TIMEOUT_NS < SPIN_BUDGET_NS ? TIMEOUT_NS : SPIN_BUDGET_NS)) break;
            sched_yield();
        }
    }
    int64_t deadline = (start < 0 ? clock_ns(CLOCK_BOOTTIME) : start) + TIMEOUT_NS;
    for (;;) {
        if ((n = take(f))) return n;
        int64_t left = deadline - clock_ns(CLOCK_BOOTTIME);
        if (left <= 0) return 0;
        int rc = ibv_req_notify_cq(f->send_cq, 0);
        if (rc) die("ibv_req_notify_cq", rc);
        if ((n = take(f))) return n;
        struct pollfd descriptor = { .fd = f->send_channel->fd, .events = POLLIN };
        int64_t milliseconds = left / 1000000;
        (void)poll(&descriptor, 1, milliseconds < 1 ? 1 : milliseconds > INT32_MAX ? INT32_MAX : (int)milliseconds);
        struct ibv_cq *event_cq;
        void *context;
        while (ibv_get_cq_event(f->send_channel, &event_cq, &context) == 0) f->unacknowledged++;
        if (f->unacknowledged >= 64) {
            ibv_ack_cq_events(f->send_cq, f->unacknowledged);
            f->unacknowledged = 0;
        }
    }
}

/* Block BLOCK (from the open's offset, wrapping at the export's end) written and flushed to
 * persistence; returns once the FLUSH completed. Exits on any failure. */
void flush_durable_write(struct flush_durable *f, uint64_t block) {
    uint64_t address = f->remote_address + f->offset + block % f->blocks_in_span * f->block_size;
    ibv_wr_start(f->qpx);
    f->qpx->wr_id = block;
    f->qpx->wr_flags = 0;
    ibv_wr_rdma_write(f->qpx, f->rkey, address);
    ibv_wr_set_sge(f->qpx, f->source_mr->lkey, (uintptr_t)f->source, (uint32_t)f->block_size);
    f->qpx->wr_id = FLUSH_ID;
    f->qpx->wr_flags = IBV_SEND_SIGNALED;
    ibv_wr_flush(f->qpx, f->rkey, address, f->block_size, IBV_FLUSH_PERSISTENT, IBV_FLUSH_RANGE);
    int rc = ibv_wr_complete(f->qpx);
    if (rc) die("ibv_wr_complete", rc);
    for (;;) {
        int n = wait_completions(f);
        if (n == 0) { fprintf(stderr, "flush_durable: no completion within 10 s (block %llu)\n", (unsigned long long)block); exit(1); }
        for (int i = 0; i < n; i++) {
            if (f->entries[i].status != IBV_WC_SUCCESS) {
                fprintf(stderr, "flush_durable: %s of block %llu: %s\n", f->entries[i].wr_id == FLUSH_ID ? "FLUSH" : "WRITE",
                        (unsigned long long)block, ibv_wc_status_str(f->entries[i].status));
                exit(1);
            }
            if (f->entries[i].wr_id == FLUSH_ID) return;
        }
    }
}

/* Disconnects and tears down: the QP before its CQs, MRs before their memory, the PD and
 * the id last. */
void flush_durable_close(struct flush_durable *f) {
    rdma_disconnect(f->id);
    rdma_destroy_qp(f->id);
    if (f->unacknowledged) ibv_ack_cq_events(f->send_cq, f->unacknowledged);
    int rc;
    if ((rc = ibv_destroy_cq(f->send_cq))) die("ibv_destroy_cq", rc);
    if ((rc = ibv_destroy_cq(f->recv_cq))) die("ibv_destroy_cq", rc);
    if ((rc = ibv_destroy_comp_channel(f->send_channel))) die("ibv_destroy_comp_channel", rc);
    if ((rc = ibv_destroy_comp_channel(f->recv_channel))) die("ibv_destroy_comp_channel", rc);
    if ((rc = ibv_dereg_mr(f->source_mr))) die("ibv_dereg_mr", rc);
    if ((rc = ibv_dereg_mr(f->pool_mr))) die("ibv_dereg_mr", rc);
    if (munmap(f->source, f->source_bytes) != 0) die("munmap", errno);
    free(f->pool);
    if ((rc = ibv_dealloc_pd(f->pd))) die("ibv_dealloc_pd", rc);
    if (rdma_destroy_id(f->id) != 0) die("rdma_destroy_id", errno);
    rdma_destroy_event_channel(f->events);
    free(f);
}

#ifndef FLUSH_DURABLE_LIBRARY
int main(int argc, char **argv) {
    if (argc != 6) { fprintf(stderr, "usage: flush_durable ADDRESS PORT BLOCK_SIZE BLOCKS OFFSET\n"); return 2; }
    long block_size = strtol(argv[3], NULL, 10), blocks = strtol(argv[4], NULL, 10);
    long long offset = strtoll(argv[5], NULL, 10);
    if (block_size <= 0 || blocks < 0 || offset < 0) { fprintf(stderr, "flush_durable: bad numbers\n"); return 2; }
    struct flush_durable *f = flush_durable_open(argv[1], argv[2], (size_t)block_size, (uint64_t)offset);
    int64_t start = clock_ns(CLOCK_MONOTONIC);
    for (long i = 0; i < blocks; i++) flush_durable_write(f, (uint64_t)i);
    int64_t elapsed = clock_ns(CLOCK_MONOTONIC) - start;
    printf("BYTES %lld NS %lld\n", (long long)blocks * block_size, (long long)elapsed);
    if (fflush(stdout) != 0) die("write to stdout", errno);
    flush_durable_close(f);
    return 0;
}
#endif
