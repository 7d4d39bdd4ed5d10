// Thin wrappers for the parts of libibverbs that Swift cannot call directly:
// function-like macros and static inline functions in <infiniband/verbs.h>.
// Every wrapper forwards its arguments unchanged; all logic lives in Swift.
#ifndef DAXPIN_CIBVERBS_H
#define DAXPIN_CIBVERBS_H

#include <infiniband/verbs.h>

#ifdef __cplusplus
extern "C" {
#endif

/// `ibv_reg_mr` is a macro (it picks an access-flag-checked variant).
struct ibv_mr *daxpin_ibv_reg_mr(struct ibv_pd *pd, void *addr, size_t length, int access);

/// `ibv_query_device_ex` is static inline.
int daxpin_ibv_query_device_ex(struct ibv_context *context, struct ibv_device_attr_ex *attr);

/// `ibv_advise_mr` is static inline (ODP prefetch).
int daxpin_ibv_advise_mr(struct ibv_pd *pd, enum ibv_advise_mr_advice advice, uint32_t flags,
                         struct ibv_sge *sg_list, uint32_t num_sge);

/// `ibv_post_send`, `ibv_post_recv` and `ibv_poll_cq` are static inline (provider fast path).
int daxpin_ibv_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad_wr);
int daxpin_ibv_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad_wr);
int daxpin_ibv_poll_cq(struct ibv_cq *cq, int num_entries, struct ibv_wc *wc);

/// `ibv_query_port` is a macro in recent rdma-core.
int daxpin_ibv_query_port(struct ibv_context *context, uint8_t port_num, struct ibv_port_attr *attr);

/// `ibv_req_notify_cq` is static inline (arm the CQ's completion channel).
int daxpin_ibv_req_notify_cq(struct ibv_cq *cq, int solicited_only);

/// The work-request API of extended queue pairs (`ibv_wr_start`, `ibv_wr_complete`,
/// `ibv_wr_abort`) is static inline.
void daxpin_ibv_wr_start(struct ibv_qp_ex *qp);
int daxpin_ibv_wr_complete(struct ibv_qp_ex *qp);
void daxpin_ibv_wr_abort(struct ibv_qp_ex *qp);

/// `ibv_wr_rdma_write` and `ibv_wr_set_sge` are static inline: a WRITE in the open batch.
void daxpin_ibv_wr_rdma_write(struct ibv_qp_ex *qp, uint32_t rkey, uint64_t remote_addr);
void daxpin_ibv_wr_set_sge(struct ibv_qp_ex *qp, uint32_t lkey, uint64_t addr, uint32_t length);

/// `ibv_wr_flush` (static inline, rdma-core 45 and later). Returns 0 once the FLUSH is added
/// to the batch; EOPNOTSUPP, adding nothing, when this build's headers predate it.
int daxpin_ibv_wr_flush(struct ibv_qp_ex *qp, uint32_t rkey, uint64_t remote_addr, size_t length,
                        uint8_t type, uint8_t level);

/// `ibv_wr_atomic_write` (static inline, rdma-core 44 and later): an 8-byte ATOMIC WRITE of
/// `*value`. Returns 0 once it is added to the batch; EOPNOTSUPP, adding nothing, when this
/// build's headers predate it.
int daxpin_ibv_wr_atomic_write(struct ibv_qp_ex *qp, uint32_t rkey, uint64_t remote_addr, const void *value);

/// Whether this build's headers declare RDMA FLUSH (`ibv_wr_flush`) and RDMA ATOMIC WRITE
/// (`ibv_wr_atomic_write`): 1 or 0, decided when the shim compiled (features.cpp).
int daxpin_rdma_flush_compiled(void);
int daxpin_rdma_atomic_write_compiled(void);

/// The constants that come with FLUSH (rdma-core 45's `verbs.h`), for builds whose headers
/// lack them: they are libibverbs ABI, and only used once `daxpin_rdma_flush_compiled()` is 1.
enum {
    DAXPIN_IBV_QP_EX_WITH_FLUSH = 1 << 11,
    DAXPIN_IBV_FLUSH_PERSISTENT = 1 << 1,
    DAXPIN_IBV_FLUSH_RANGE = 0,
};

#ifdef __cplusplus
}
#endif

#endif
