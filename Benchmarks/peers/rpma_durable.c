/* librpma peer for the durable write throughput row (write + persist ack), after librpma's
 * example 05-flush-to-persistent.
 *
 * server: maps LENGTH bytes of a device-dax device from OFFSET (default 0; MAP_SHARED), registers them
 *   with RPMA_MR_USAGE_WRITE_DST | RPMA_MR_USAGE_FLUSH_TYPE_PERSISTENT, declares direct write
 *   to pmem (device-dax is pmem), listens on ADDR:PORT, prints "ready address=A port=P
 *   length=L", sends the MR and peer-cfg descriptors in the accept's private data, waits for
 *   the client to disconnect; after CONNECTIONS clients (default 1), one at a time, exits.
 * client: connects, applies the server's peer cfg, then for each of BLOCKS blocks of
 *   BLOCK_SIZE bytes (sequential offsets, wrapping at the server's LENGTH): rpma_write
 *   (completion on error only) + rpma_flush(RPMA_FLUSH_TYPE_PERSISTENT,
 *   RPMA_F_COMPLETION_ALWAYS) and waits for the flush's completion: one durable block at a
 *   time (queue depth 1). The loop is timed as a whole (not the connection set-up) and
 *   printed as "BYTES <n> SECONDS <s>" and "OPS_PER_SECOND <x>". BLOCKS may be 0 (only
 *   connect and disconnect: the set-up cost).
 *
 * How librpma 1.2 makes the flush persistent: with direct write to pmem declared by the
 * server, RPMA_FLUSH_TYPE_PERSISTENT is its Appliance Persistency Method, an 8-byte RDMA
 * READ of the written range after the WRITE (read-after-write, src/flush.c): the READ's
 * completion means the responder has placed the WRITE before it. On real hardware that is
 * durable only with ADR/eADR and DDIO off for the NIC; the server CPU does no cache flush.
 * On rxe that READ works (no native IBV_WR_FLUSH needed), so no fallback is used here.
 *
 * Every wait is bounded (poll() on librpma's file descriptors); on any failure a message
 * goes to stderr and the exit status is 1.
 *
 * usage: rpma_durable server DEVDAX LENGTH ADDR PORT [CONNECTIONS [OFFSET]]
 *        rpma_durable client ADDR PORT BLOCK_SIZE BLOCKS
 *
 * Built with -shared -fPIC -DRPMA_DURABLE_LIBRARY it has neither main nor server and exports
 * the client's parts, rpma_durable_open, rpma_durable_write (one durable block) and
 * rpma_durable_close, so that DaxPinBench can alternate them with DaxPin's durable writes in
 * one process (DaxPinBench "durable-paired").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <librpma.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_MS 10000      /* a connection request, its establishment, its close */
#define CLIENT_WAIT_MS (10 * 60 * 1000) /* the server waits this long for the client to finish */
#define COMPLETION_TIMEOUT_MS 10000   /* one flush completion */

/* What the server's accept carries: both descriptors back to back. */
struct descriptors {
    uint8_t mr_size;
    uint8_t pcfg_size;
    uint8_t bytes[128];
};

static void fail(const char *what, int rc) {
    fprintf(stderr, "rpma_durable: %s: %s\n", what, rpma_err_2str(rc));
    exit(1);
}

static void fail_errno(const char *what) {
    fprintf(stderr, "rpma_durable: %s: %s\n", what, strerror(errno));
    exit(1);
}

#ifndef RPMA_DURABLE_LIBRARY
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}
#endif

/* Waits up to timeout_ms for fd to become readable; exits with `what` on timeout or error. */
static void wait_readable(int fd, int timeout_ms, const char *what) {
    struct pollfd p = { .fd = fd, .events = POLLIN };
    for (;;) {
        int n = poll(&p, 1, timeout_ms);
        if (n > 0) return;
        if (n == 0) {
            fprintf(stderr, "rpma_durable: timed out after %d ms waiting for %s\n", timeout_ms, what);
            exit(1);
        }
        if (errno != EINTR) fail_errno("poll");
    }
}

/* The next connection event, bounded. */
static enum rpma_conn_event next_event(struct rpma_conn *conn, int timeout_ms, const char *what) {
    int fd, rc;
    if ((rc = rpma_conn_get_event_fd(conn, &fd))) fail("rpma_conn_get_event_fd", rc);
    wait_readable(fd, timeout_ms, what);
    enum rpma_conn_event event = RPMA_CONN_UNDEFINED;
    if ((rc = rpma_conn_next_event(conn, &event))) fail("rpma_conn_next_event", rc);
    return event;
}

static void expect_event(struct rpma_conn *conn, enum rpma_conn_event want, int timeout_ms, const char *what) {
    enum rpma_conn_event got = next_event(conn, timeout_ms, what);
    if (got != want) {
        fprintf(stderr, "rpma_durable: waiting for %s, got connection event %s\n", what, rpma_utils_conn_event_2str(got));
        exit(1);
    }
}

#ifndef RPMA_DURABLE_LIBRARY
static int server(const char *path, size_t length, const char *addr, const char *port, long connections, off_t offset) {
    int rc;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) fail_errno("open (device-dax)");
    void *mem = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);
    if (mem == MAP_FAILED) fail_errno("mmap (device-dax; LENGTH must be a multiple of its alignment)");

    struct rpma_peer_cfg *pcfg = NULL;
    if ((rc = rpma_peer_cfg_new(&pcfg))) fail("rpma_peer_cfg_new", rc);
    if ((rc = rpma_peer_cfg_set_direct_write_to_pmem(pcfg, true))) fail("rpma_peer_cfg_set_direct_write_to_pmem", rc);

    struct ibv_context *ctx = NULL;
    struct rpma_peer *peer = NULL;
    if ((rc = rpma_utils_get_ibv_context(addr, RPMA_UTIL_IBV_CONTEXT_LOCAL, &ctx))) fail("rpma_utils_get_ibv_context", rc);
    if ((rc = rpma_peer_new(ctx, &peer))) fail("rpma_peer_new", rc);
    struct rpma_ep *ep = NULL;
    if ((rc = rpma_ep_listen(peer, addr, port, &ep))) fail("rpma_ep_listen", rc);
    struct rpma_mr_local *mr = NULL;
    if ((rc = rpma_mr_reg(peer, mem, length, RPMA_MR_USAGE_WRITE_DST | RPMA_MR_USAGE_FLUSH_TYPE_PERSISTENT, &mr)))
        fail("rpma_mr_reg", rc);

    struct descriptors desc;
    memset(&desc, 0, sizeof desc);
    size_t mr_size = 0, pcfg_size = 0;
    if ((rc = rpma_mr_get_descriptor_size(mr, &mr_size))) fail("rpma_mr_get_descriptor_size", rc);
    if ((rc = rpma_peer_cfg_get_descriptor_size(pcfg, &pcfg_size))) fail("rpma_peer_cfg_get_descriptor_size", rc);
    if (mr_size + pcfg_size > sizeof desc.bytes) { fprintf(stderr, "rpma_durable: descriptors too large\n"); return 1; }
    desc.mr_size = (uint8_t)mr_size;
    desc.pcfg_size = (uint8_t)pcfg_size;
    if ((rc = rpma_mr_get_descriptor(mr, desc.bytes))) fail("rpma_mr_get_descriptor", rc);
    if ((rc = rpma_peer_cfg_get_descriptor(pcfg, desc.bytes + mr_size))) fail("rpma_peer_cfg_get_descriptor", rc);

    printf("ready address=%s port=%s length=%zu\n", addr, port, length);
    if (fflush(stdout) != 0) fail_errno("write to stdout");

    int ep_fd;
    if ((rc = rpma_ep_get_fd(ep, &ep_fd))) fail("rpma_ep_get_fd", rc);
    for (long served = 0; served < connections; served++) {
        wait_readable(ep_fd, CLIENT_WAIT_MS, "a connection request");
        struct rpma_conn_req *req = NULL;
        if ((rc = rpma_ep_next_conn_req(ep, NULL, &req))) fail("rpma_ep_next_conn_req", rc);
        struct rpma_conn_private_data pdata = { .ptr = &desc, .len = (uint8_t)(2 + mr_size + pcfg_size) };
        struct rpma_conn *conn = NULL;
        if ((rc = rpma_conn_req_connect(&req, &pdata, &conn))) fail("rpma_conn_req_connect", rc);
        expect_event(conn, RPMA_CONN_ESTABLISHED, CONNECT_TIMEOUT_MS, "the connection to be established");

        /* The client writes and flushes one-sided; wait for it to disconnect. */
        enum rpma_conn_event event = next_event(conn, CLIENT_WAIT_MS, "the client to disconnect");
        if (event != RPMA_CONN_CLOSED) {
            fprintf(stderr, "rpma_durable: connection ended with %s, not a clean close\n", rpma_utils_conn_event_2str(event));
            return 1;
        }
        if ((rc = rpma_conn_disconnect(conn))) fail("rpma_conn_disconnect", rc);
        if ((rc = rpma_conn_delete(&conn))) fail("rpma_conn_delete", rc);
    }
    if ((rc = rpma_mr_dereg(&mr))) fail("rpma_mr_dereg", rc);
    if ((rc = rpma_ep_shutdown(&ep))) fail("rpma_ep_shutdown", rc);
    if ((rc = rpma_peer_delete(&peer))) fail("rpma_peer_delete", rc);
    if ((rc = rpma_peer_cfg_delete(&pcfg))) fail("rpma_peer_cfg_delete", rc);
    if (munmap(mem, length) != 0) fail_errno("munmap");
    if (close(fd) != 0) fail_errno("close");
    return 0;
}
#endif

/* Waits (bounded) for the flush's completion; the write is signaled only on error. */
static void wait_flush(struct rpma_cq *cq, int cq_fd, uint64_t block) {
    struct ibv_wc wc;
    int got = 0, rc;
    for (;;) {
        rc = rpma_cq_get_wc(cq, 1, &wc, &got);
        if (rc == 0 && got == 1) break;
        if (rc != RPMA_E_NO_COMPLETION) fail("rpma_cq_get_wc", rc);
        /* librpma arms the CQ at creation and again in rpma_cq_wait, before we look again. */
        wait_readable(cq_fd, COMPLETION_TIMEOUT_MS, "a flush completion");
        if ((rc = rpma_cq_wait(cq)) && rc != RPMA_E_NO_COMPLETION) fail("rpma_cq_wait", rc);
    }
    if (wc.status != IBV_WC_SUCCESS) {
        fprintf(stderr, "rpma_durable: block %" PRIu64 ": %s completed with %s\n", block,
                wc.opcode == IBV_WC_RDMA_WRITE ? "rpma_write" : "rpma_flush", ibv_wc_status_str(wc.status));
        exit(1);
    }
    if (wc.opcode != IBV_WC_RDMA_READ || wc.wr_id != block) {
        fprintf(stderr, "rpma_durable: block %" PRIu64 ": unexpected completion (opcode %d, id %" PRIu64 ")\n",
                block, (int)wc.opcode, (uint64_t)wc.wr_id);
        exit(1);
    }
}

/* A connected client: its librpma objects and the server's region. */
struct rpma_durable {
    struct rpma_peer *peer;
    struct rpma_conn *conn;
    struct rpma_conn_cfg *cfg;
    struct rpma_mr_remote *dst;
    struct rpma_mr_local *src_mr;
    struct rpma_cq *cq;
    void *src;
    size_t block_size, span;
    int cq_fd;
};

/* Connects to ADDR:PORT and applies the server's peer cfg; exits on failure. */
struct rpma_durable *rpma_durable_open(const char *addr, const char *port, size_t block_size) {
    int rc;
    struct rpma_durable *c = calloc(1, sizeof *c);
    if (!c) fail_errno("calloc");
    c->block_size = block_size;
    struct ibv_context *ctx = NULL;
    if ((rc = rpma_utils_get_ibv_context(addr, RPMA_UTIL_IBV_CONTEXT_REMOTE, &ctx))) fail("rpma_utils_get_ibv_context", rc);
    if ((rc = rpma_peer_new(ctx, &c->peer))) fail("rpma_peer_new", rc);

    if ((rc = posix_memalign(&c->src, (size_t)sysconf(_SC_PAGESIZE), block_size))) { errno = rc; fail_errno("posix_memalign"); }
    for (size_t i = 0; i < block_size; i++) ((uint8_t *)c->src)[i] = (uint8_t)(i * 31 + 7);
    if ((rc = rpma_mr_reg(c->peer, c->src, block_size, RPMA_MR_USAGE_WRITE_SRC, &c->src_mr))) fail("rpma_mr_reg", rc);

    if ((rc = rpma_conn_cfg_new(&c->cfg))) fail("rpma_conn_cfg_new", rc);
    if ((rc = rpma_conn_cfg_set_timeout(c->cfg, CONNECT_TIMEOUT_MS))) fail("rpma_conn_cfg_set_timeout", rc);
    struct rpma_conn_req *req = NULL;
    if ((rc = rpma_conn_req_new(c->peer, addr, port, c->cfg, &req))) fail("rpma_conn_req_new", rc);
    if ((rc = rpma_conn_req_connect(&req, NULL, &c->conn))) fail("rpma_conn_req_connect", rc);
    expect_event(c->conn, RPMA_CONN_ESTABLISHED, CONNECT_TIMEOUT_MS, "the connection to be established");

    struct rpma_conn_private_data pdata;
    if ((rc = rpma_conn_get_private_data(c->conn, &pdata))) fail("rpma_conn_get_private_data", rc);
    const struct descriptors *desc = pdata.ptr;
    if (!desc || pdata.len < 2 || pdata.len < 2 + desc->mr_size + desc->pcfg_size) {
        fprintf(stderr, "rpma_durable: the server's private data is malformed (%u bytes)\n", (unsigned)pdata.len);
        exit(1);
    }
    if ((rc = rpma_mr_remote_from_descriptor(desc->bytes, desc->mr_size, &c->dst))) fail("rpma_mr_remote_from_descriptor", rc);
    struct rpma_peer_cfg *pcfg = NULL;
    if ((rc = rpma_peer_cfg_from_descriptor(desc->bytes + desc->mr_size, desc->pcfg_size, &pcfg)))
        fail("rpma_peer_cfg_from_descriptor", rc);
    if ((rc = rpma_conn_apply_remote_peer_cfg(c->conn, pcfg))) fail("rpma_conn_apply_remote_peer_cfg", rc);
    if ((rc = rpma_peer_cfg_delete(&pcfg))) fail("rpma_peer_cfg_delete", rc);
    size_t length = 0;
    if ((rc = rpma_mr_remote_get_size(c->dst, &length))) fail("rpma_mr_remote_get_size", rc);
    c->span = length / block_size * block_size;
    if (c->span == 0) {
        fprintf(stderr, "rpma_durable: the server's region (%zu bytes) is smaller than a block\n", length);
        exit(1);
    }
    if ((rc = rpma_conn_get_cq(c->conn, &c->cq))) fail("rpma_conn_get_cq", rc);
    if ((rc = rpma_cq_get_fd(c->cq, &c->cq_fd))) fail("rpma_cq_get_fd", rc);
    return c;
}

/* Block BLOCK (offsets wrap at the server's region): rpma_write + rpma_flush(PERSISTENT),
 * returns once the flush has completed. Exits on failure. */
void rpma_durable_write(struct rpma_durable *c, uint64_t block) {
    int rc;
    size_t offset = (size_t)(block * c->block_size % c->span);
    if ((rc = rpma_write(c->conn, c->dst, offset, c->src_mr, 0, c->block_size, RPMA_F_COMPLETION_ON_ERROR, NULL)))
        fail("rpma_write", rc);
    if ((rc = rpma_flush(c->conn, c->dst, offset, c->block_size, RPMA_FLUSH_TYPE_PERSISTENT, RPMA_F_COMPLETION_ALWAYS,
                         (const void *)(uintptr_t)block)))
        fail("rpma_flush (persistent)", rc);
    wait_flush(c->cq, c->cq_fd, block);
}

/* Disconnects (bounded wait for the close) and frees everything; exits on failure. */
void rpma_durable_close(struct rpma_durable *c) {
    int rc;
    if ((rc = rpma_conn_disconnect(c->conn))) fail("rpma_conn_disconnect", rc);
    expect_event(c->conn, RPMA_CONN_CLOSED, CONNECT_TIMEOUT_MS, "the connection to close");
    if ((rc = rpma_conn_delete(&c->conn))) fail("rpma_conn_delete", rc);
    if ((rc = rpma_mr_remote_delete(&c->dst))) fail("rpma_mr_remote_delete", rc);
    if ((rc = rpma_conn_cfg_delete(&c->cfg))) fail("rpma_conn_cfg_delete", rc);
    if ((rc = rpma_mr_dereg(&c->src_mr))) fail("rpma_mr_dereg", rc);
    if ((rc = rpma_peer_delete(&c->peer))) fail("rpma_peer_delete", rc);
    free(c->src);
    free(c);
}

#ifndef RPMA_DURABLE_LIBRARY
static int client(const char *addr, const char *port, size_t block_size, uint64_t blocks) {
    struct rpma_durable *c = rpma_durable_open(addr, port, block_size);
    double start = now();
    for (uint64_t block = 0; block < blocks; block++) rpma_durable_write(c, block);
    double seconds = now() - start;
    uint64_t bytes = blocks * block_size;
    printf("BYTES %" PRIu64 " SECONDS %.6f\n", bytes, seconds);
    printf("OPS_PER_SECOND %.1f\n", seconds > 0 ? (double)blocks / seconds : 0.0);
    if (fflush(stdout) != 0) fail_errno("write to stdout");
    rpma_durable_close(c);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 6 && argc <= 8 && strcmp(argv[1], "server") == 0) {
        char *end, *end2 = "", *end3 = "";
        unsigned long long length = strtoull(argv[3], &end, 10);
        long connections = argc >= 7 ? strtol(argv[6], &end2, 10) : 1;
        long long offset = argc == 8 ? strtoll(argv[7], &end3, 10) : 0;
        if (*end || length == 0) { fprintf(stderr, "rpma_durable: LENGTH must be a positive integer\n"); return 1; }
        if (*end2 || connections <= 0) { fprintf(stderr, "rpma_durable: CONNECTIONS must be a positive integer\n"); return 1; }
        if (*end3 || offset < 0) { fprintf(stderr, "rpma_durable: OFFSET must be a non-negative integer\n"); return 1; }
        return server(argv[2], (size_t)length, argv[4], argv[5], connections, (off_t)offset) ? 1 : 0;
    }
    if (argc == 6 && strcmp(argv[1], "client") == 0) {
        char *end1, *end2;
        unsigned long long block_size = strtoull(argv[4], &end1, 10), blocks = strtoull(argv[5], &end2, 10);
        if (*end1 || *end2 || block_size == 0) {
            fprintf(stderr, "rpma_durable: BLOCK_SIZE must be a positive integer, BLOCKS a non-negative one\n");
            return 1;
        }
        return client(argv[2], argv[3], (size_t)block_size, (uint64_t)blocks) ? 1 : 0;
    }
    fprintf(stderr, "usage: rpma_durable server DEVDAX LENGTH ADDR PORT [CONNECTIONS [OFFSET]]\n"
                    "       rpma_durable client ADDR PORT BLOCK_SIZE BLOCKS\n");
    return 1;
}
#endif
