// Which extended work-request verbs the rdma-core headers this build compiles against declare.
// They are function-pointer members of `struct ibv_qp_ex` called through static inline
// wrappers, with enum constants beside them: the C preprocessor cannot test for any of that,
// C++ overload resolution can, so the build needs no configure step and the manifest no process.
#include <cerrno>
#include <type_traits>

#include "CIbverbs.h"

namespace {

template <typename Q, typename = void> struct HasFlush : std::false_type {};
template <typename Q> struct HasFlush<Q, std::void_t<decltype(&Q::wr_flush)>> : std::true_type {};

template <typename Q, typename = void> struct HasAtomicWrite : std::false_type {};
template <typename Q> struct HasAtomicWrite<Q, std::void_t<decltype(&Q::wr_atomic_write)>> : std::true_type {};

template <typename Q>
int flush(Q *qp, uint32_t rkey, uint64_t remote_addr, size_t length, uint8_t type, uint8_t level) {
    if constexpr (HasFlush<Q>::value) {
        qp->wr_flush(qp, rkey, remote_addr, length, type, level);  // what ibv_wr_flush does
        return 0;
    } else {
        return EOPNOTSUPP;
    }
}

template <typename Q>
int atomicWrite(Q *qp, uint32_t rkey, uint64_t remote_addr, const void *value) {
    if constexpr (HasAtomicWrite<Q>::value) {
        qp->wr_atomic_write(qp, rkey, remote_addr, value);  // what ibv_wr_atomic_write does
        return 0;
    } else {
        return EOPNOTSUPP;
    }
}

}  // namespace

extern "C" int daxpin_ibv_wr_flush(struct ibv_qp_ex *qp, uint32_t rkey, uint64_t remote_addr, size_t length,
                                   uint8_t type, uint8_t level) {
    return flush(qp, rkey, remote_addr, length, type, level);
}

extern "C" int daxpin_ibv_wr_atomic_write(struct ibv_qp_ex *qp, uint32_t rkey, uint64_t remote_addr, const void *value) {
    return atomicWrite(qp, rkey, remote_addr, value);
}

extern "C" int daxpin_rdma_flush_compiled(void) { return HasFlush<ibv_qp_ex>::value ? 1 : 0; }

extern "C" int daxpin_rdma_atomic_write_compiled(void) { return HasAtomicWrite<ibv_qp_ex>::value ? 1 : 0; }
