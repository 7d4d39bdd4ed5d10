// libmnl (the netlink library the `rdma` tool uses) and the RDMA netlink definitions from
// linux-libc-dev. libmnl exports plain functions; only the function-like macro below needs a
// wrapper for Swift.
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <rdma/rdma_netlink.h>
#include <stdint.h>

/// `RDMA_NL_GET_TYPE(RDMA_NL_NLDEV, op)`: the netlink message type of an nldev command.
static inline uint16_t daxpin_rdma_nldev_message_type(uint16_t op) {
    return (uint16_t)RDMA_NL_GET_TYPE(RDMA_NL_NLDEV, op);
}
