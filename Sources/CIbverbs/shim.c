#include "CIbverbs.h"

#include <errno.h>

struct ibv_mr *daxpin_ibv_reg_mr(struct ibv_pd *pd, void *addr, size_t length, int access) {
    return ibv_reg_mr(pd, addr, length, access);
}

int daxpin_ibv_query_device_ex(struct ibv_context *context, struct ibv_device_attr_ex *attr) {
    return ibv_query_device_ex(context, NULL, attr);
}

int daxpin_ibv_advise_mr(struct ibv_pd *pd, enum ibv_advise_mr_advice advice, uint32_t flags,
                         struct ibv_sge *sg_list, uint32_t num_sge) {
    return ibv_advise_mr(pd, advice, flags, sg_list, num_sge);
}

int daxpin_ibv_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad_wr) {
    return ibv_post_send(qp, wr, bad_wr);
}

int daxpin_ibv_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad_wr) {
    return ibv_post_recv(qp, wr, bad_wr);
}

int daxpin_ibv_poll_cq(struct ibv_cq *cq, int num_entries, struct ibv_wc *wc) {
    return ibv_poll_cq(cq, num_entries, wc);
}

int daxpin_ibv_query_port(struct ibv_context *context, uint8_t port_num, struct ibv_port_attr *attr) {
    return ibv_query_port(context, port_num, attr);
}

int daxpin_ibv_req_notify_cq(struct ibv_cq *cq, int solicited_only) {
    return ibv_req_notify_cq(cq, solicited_only);
}

void daxpin_ibv_wr_start(struct ibv_qp_ex *qp) { ibv_wr_start(qp); }

int daxpin_ibv_wr_complete(struct ibv_qp_ex *qp) { return ibv_wr_complete(qp); }

void daxpin_ibv_wr_abort(struct ibv_qp_ex *qp) { ibv_wr_abort(qp); }

void daxpin_ibv_wr_rdma_write(struct ibv_qp_ex *qp, uint32_t rkey, uint64_t remote_addr) {
    ibv_wr_rdma_write(qp, rkey, remote_addr);
}

void daxpin_ibv_wr_set_sge(struct ibv_qp_ex *qp, uint32_t lkey, uint64_t addr, uint32_t length) {
    ibv_wr_set_sge(qp, lkey, addr, length);
}

