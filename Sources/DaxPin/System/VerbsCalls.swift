import CIbverbs
import Glibc
import LibIbverbs

/// The libibverbs calls the library makes, in one thin layer next to ``Syscalls`` (librdmacm's
/// are in `VerbsCalls+ConnectionManager.swift`). libibverbs reports errors three ways (nil with
/// errno, -1 with errno, or the error number returned); each fallible wrapper turns its call's
/// convention into a thrown `Errno` through ``Syscalls``' helpers, and is a fault point a test
/// can arm with ``SyscallFaults``. Getters and destructors only forward.
enum VerbsCalls {
    // MARK: Devices and protection domains

    /// `ibv_get_device_list`.
    static func ibv_get_device_list(_ count: UnsafeMutablePointer<Int32>?) throws(Errno) -> UnsafeMutablePointer<UnsafeMutablePointer<ibv_device>?> {
        try Syscalls.pointerOrErrno(.getDeviceList) { LibIbverbs.ibv_get_device_list(count) }
    }

    /// `ibv_free_device_list`.
    static func ibv_free_device_list(_ list: UnsafeMutablePointer<UnsafeMutablePointer<ibv_device>?>) {
        LibIbverbs.ibv_free_device_list(list)
    }

    /// `ibv_get_device_name`.
    static func ibv_get_device_name(_ device: UnsafeMutablePointer<ibv_device>) -> UnsafePointer<CChar>! {
        LibIbverbs.ibv_get_device_name(device)
    }

    /// `ibv_get_device_guid`.
    static func ibv_get_device_guid(_ device: UnsafeMutablePointer<ibv_device>) -> UInt64 {
        LibIbverbs.ibv_get_device_guid(device)
    }

    /// `ibv_open_device`.
    static func ibv_open_device(_ device: UnsafeMutablePointer<ibv_device>) throws(Errno) -> UnsafeMutablePointer<ibv_context> {
        try Syscalls.pointerOrErrno(.openDevice) { LibIbverbs.ibv_open_device(device) }
    }

    /// `ibv_close_device`.
    @discardableResult
    static func ibv_close_device(_ context: UnsafeMutablePointer<ibv_context>) -> Int32 {
        LibIbverbs.ibv_close_device(context)
    }

    /// `ibv_query_device_ex` (static inline, through the CIbverbs shim).
    static func ibv_query_device_ex(_ context: UnsafeMutablePointer<ibv_context>,
                                    _ attributes: UnsafeMutablePointer<ibv_device_attr_ex>) throws(Errno) {
        try Syscalls.nothingOrReturnedErrno(.queryDevice) { daxpin_ibv_query_device_ex(context, attributes) }
    }

    /// `ibv_query_device`, the fallback where the extended query is missing. The same fault point as the
    /// extended query.
    static func ibv_query_device(_ context: UnsafeMutablePointer<ibv_context>,
                                 _ attributes: UnsafeMutablePointer<ibv_device_attr>) throws(Errno) {
        try Syscalls.nothingOrReturnedErrno(.queryDevice) { LibIbverbs.ibv_query_device(context, attributes) }
    }

    /// `ibv_query_port` (a macro, through the shim).
    static func ibv_query_port(_ context: UnsafeMutablePointer<ibv_context>, _ port: UInt8,
                               _ attributes: UnsafeMutablePointer<ibv_port_attr>) throws(Errno) {
        try Syscalls.nothingOrReturnedErrno(.queryPort) { daxpin_ibv_query_port(context, port, attributes) }
    }

    /// `ibv_query_gid`.
    static func ibv_query_gid(_ context: UnsafeMutablePointer<ibv_context>, _ port: UInt8, _ index: Int32,
                              _ gid: UnsafeMutablePointer<ibv_gid>) throws(Errno) {
        try Syscalls.nothingOrErrno(.queryGID) { LibIbverbs.ibv_query_gid(context, port, index, gid) }
    }

    /// `ibv_alloc_pd`.
    static func ibv_alloc_pd(_ context: UnsafeMutablePointer<ibv_context>) throws(Errno) -> UnsafeMutablePointer<ibv_pd> {
        try Syscalls.pointerOrErrno(.allocateProtectionDomain) { LibIbverbs.ibv_alloc_pd(context) }
    }

    /// `ibv_dealloc_pd`.
    @discardableResult
    static func ibv_dealloc_pd(_ pd: UnsafeMutablePointer<ibv_pd>) -> Int32 { LibIbverbs.ibv_dealloc_pd(pd) }

    // MARK: Memory registrations

    /// `ibv_reg_mr` (a macro, through the shim).
    static func ibv_reg_mr(_ pd: UnsafeMutablePointer<ibv_pd>, _ address: UnsafeMutableRawPointer?, _ length: Int,
                           _ access: Int32) throws(Errno) -> UnsafeMutablePointer<ibv_mr> {
        try Syscalls.pointerOrErrno(.registerMemory) { daxpin_ibv_reg_mr(pd, address, length, access) }
    }

    /// `ibv_dereg_mr`.
    static func ibv_dereg_mr(_ mr: UnsafeMutablePointer<ibv_mr>) throws(Errno) {
        try Syscalls.nothingOrReturnedErrno(.deregisterMemory) { LibIbverbs.ibv_dereg_mr(mr) }
    }

    /// `ibv_advise_mr` (static inline, through the shim).
    static func ibv_advise_mr(_ pd: UnsafeMutablePointer<ibv_pd>, _ advice: ib_uverbs_advise_mr_advice, _ flags: UInt32,
                              _ list: UnsafeMutablePointer<ibv_sge>, _ count: UInt32) throws(Errno) {
        try Syscalls.nothingOrReturnedErrno(.adviseMemory) { daxpin_ibv_advise_mr(pd, advice, flags, list, count) }
    }

    // MARK: Completion queues

    /// `ibv_create_comp_channel`.
    static func ibv_create_comp_channel(_ context: UnsafeMutablePointer<ibv_context>) throws(Errno) -> UnsafeMutablePointer<ibv_comp_channel> {
        try Syscalls.pointerOrErrno(.createCompletionChannel) { LibIbverbs.ibv_create_comp_channel(context) }
    }

    /// `ibv_destroy_comp_channel`.
    @discardableResult
    static func ibv_destroy_comp_channel(_ channel: UnsafeMutablePointer<ibv_comp_channel>) -> Int32 {
        LibIbverbs.ibv_destroy_comp_channel(channel)
    }

    /// `ibv_create_cq`.
    static func ibv_create_cq(_ context: UnsafeMutablePointer<ibv_context>, _ entries: Int32, _ cqContext: UnsafeMutableRawPointer?,
                              _ channel: UnsafeMutablePointer<ibv_comp_channel>?, _ vector: Int32) throws(Errno) -> UnsafeMutablePointer<ibv_cq> {
        try Syscalls.pointerOrErrno(.createCompletionQueue) { LibIbverbs.ibv_create_cq(context, entries, cqContext, channel, vector) }
    }

    /// `ibv_destroy_cq`.
    @discardableResult
    static func ibv_destroy_cq(_ cq: UnsafeMutablePointer<ibv_cq>) -> Int32 { LibIbverbs.ibv_destroy_cq(cq) }

    /// `ibv_req_notify_cq` (static inline, through the shim).
    static func ibv_req_notify_cq(_ cq: UnsafeMutablePointer<ibv_cq>, _ solicitedOnly: Int32) throws(Errno) {
        try Syscalls.nothingOrReturnedErrno(.requestNotification) { daxpin_ibv_req_notify_cq(cq, solicitedOnly) }
    }

    /// `ibv_get_cq_event`.
    static func ibv_get_cq_event(_ channel: UnsafeMutablePointer<ibv_comp_channel>, _ cq: UnsafeMutablePointer<UnsafeMutablePointer<ibv_cq>?>,
                                 _ context: UnsafeMutablePointer<UnsafeMutableRawPointer?>) throws(Errno) {
        try Syscalls.nothingOrErrno(.getCompletionEvent) { LibIbverbs.ibv_get_cq_event(channel, cq, context) }
    }

    /// `ibv_ack_cq_events`.
    static func ibv_ack_cq_events(_ cq: UnsafeMutablePointer<ibv_cq>, _ count: UInt32) { LibIbverbs.ibv_ack_cq_events(cq, count) }

    /// `ibv_poll_cq` (static inline, through the shim): how many completions it wrote. A negative
    /// count is a failure that leaves errno undefined: thrown as `EIO`.
    static func ibv_poll_cq(_ cq: UnsafeMutablePointer<ibv_cq>, _ entries: Int32, _ completions: UnsafeMutablePointer<ibv_wc>) throws(Errno) -> Int32 {
        try Syscalls.valueOrErrno(.pollCompletionQueue) { () -> Int32 in
            let count = daxpin_ibv_poll_cq(cq, entries, completions)
            if count < 0 { errno = EIO; return -1 }
            return count
        }
    }

    /// `ibv_wc_status_str`.
    static func ibv_wc_status_str(_ status: ibv_wc_status) -> UnsafePointer<CChar>! { LibIbverbs.ibv_wc_status_str(status) }

    // MARK: Queue pairs and work requests

    /// `ibv_create_qp`.
    static func ibv_create_qp(_ pd: UnsafeMutablePointer<ibv_pd>, _ attributes: UnsafeMutablePointer<ibv_qp_init_attr>) throws(Errno) -> UnsafeMutablePointer<ibv_qp> {
        try Syscalls.pointerOrErrno(.createQueuePair) { LibIbverbs.ibv_create_qp(pd, attributes) }
    }

    /// `ibv_destroy_qp`.
    @discardableResult
    static func ibv_destroy_qp(_ qp: UnsafeMutablePointer<ibv_qp>) -> Int32 { LibIbverbs.ibv_destroy_qp(qp) }

    /// `ibv_query_qp`. The `modifyQueuePair` fault point.
    static func ibv_query_qp(_ qp: UnsafeMutablePointer<ibv_qp>, _ attributes: UnsafeMutablePointer<ibv_qp_attr>, _ mask: Int32,
                             _ initAttributes: UnsafeMutablePointer<ibv_qp_init_attr>) throws(Errno) {
        try Syscalls.nothingOrReturnedErrno(.modifyQueuePair) { LibIbverbs.ibv_query_qp(qp, attributes, mask, initAttributes) }
    }

    /// `ibv_modify_qp`.
    static func ibv_modify_qp(_ qp: UnsafeMutablePointer<ibv_qp>, _ attributes: UnsafeMutablePointer<ibv_qp_attr>, _ mask: Int32) throws(Errno) {
        try Syscalls.nothingOrReturnedErrno(.modifyQueuePair) { LibIbverbs.ibv_modify_qp(qp, attributes, mask) }
    }

    /// `ibv_post_send` (static inline, through the shim). A forced failure leaves
    /// `bad` at the first request (none was posted).
    static func ibv_post_send(_ qp: UnsafeMutablePointer<ibv_qp>, _ request: UnsafeMutablePointer<ibv_send_wr>,
                              _ bad: UnsafeMutablePointer<UnsafeMutablePointer<ibv_send_wr>?>) throws(Errno) {
        bad.pointee = request  // where a forced failure stops: nothing posted
        try Syscalls.nothingOrReturnedErrno(.postSend) { daxpin_ibv_post_send(qp, request, bad) }
    }

    /// `ibv_wr_start` (static inline, through the shim): opens a batch on an extended queue pair.
    static func ibv_wr_start(_ qp: UnsafeMutablePointer<ibv_qp_ex>) { daxpin_ibv_wr_start(qp) }

    /// `ibv_wr_rdma_write` and `ibv_wr_set_sge` (static inline, through the shim): an RDMA
    /// WRITE of `local` to `address` in the open batch.
    static func ibv_wr_rdma_write(_ qp: UnsafeMutablePointer<ibv_qp_ex>, rkey: UInt32, address: UInt64, local: QueuePair.LocalBuffer) {
        daxpin_ibv_wr_rdma_write(qp, rkey, address)
        daxpin_ibv_wr_set_sge(qp, local.localKey, local.address, UInt32(clamping: local.length))
    }

    /// `ibv_wr_flush` (static inline, through the shim): adds an RDMA FLUSH to the open batch.
    /// Throws EOPNOTSUPP, adding nothing, in a build whose rdma-core predates FLUSH.
    static func ibv_wr_flush(_ qp: UnsafeMutablePointer<ibv_qp_ex>, rkey: UInt32, address: UInt64, length: Int,
                             type: UInt8, level: UInt8) throws(Errno) {
        let code = daxpin_ibv_wr_flush(qp, rkey, address, length, type, level)
        guard code == 0 else { throw Errno(rawValue: code) }
    }

    /// `ibv_wr_atomic_write` (static inline, through the shim): adds an 8-byte ATOMIC WRITE of
    /// `*value` to the open batch. Throws EOPNOTSUPP, adding nothing, in a build whose
    /// rdma-core predates it.
    static func ibv_wr_atomic_write(_ qp: UnsafeMutablePointer<ibv_qp_ex>, rkey: UInt32, address: UInt64,
                                    value: UnsafeRawPointer) throws(Errno) {
        let code = daxpin_ibv_wr_atomic_write(qp, rkey, address, value)
        guard code == 0 else { throw Errno(rawValue: code) }
    }

    /// `ibv_wr_complete` (static inline, through the shim): posts the batch. Forced failure (the
    /// `postSend` fault point): the errno, after aborting the batch (nothing was posted).
    static func ibv_wr_complete(_ qp: UnsafeMutablePointer<ibv_qp_ex>) throws(Errno) {
        while let code = Syscalls.injectedFault(.postSend) {
            if code == EINTR { continue }  // as the seam retries every call
            daxpin_ibv_wr_abort(qp)
            throw Errno(rawValue: code)
        }
        let code = daxpin_ibv_wr_complete(qp)
        guard code == 0 else { throw Errno(rawValue: code) }
    }

    /// `ibv_wr_abort` (static inline, through the shim): drops the open batch.
    static func ibv_wr_abort(_ qp: UnsafeMutablePointer<ibv_qp_ex>) { daxpin_ibv_wr_abort(qp) }

    /// `ibv_post_recv` (static inline, through the shim). A forced failure leaves
    /// `bad` at the first request (none was posted).
    static func ibv_post_recv(_ qp: UnsafeMutablePointer<ibv_qp>, _ request: UnsafeMutablePointer<ibv_recv_wr>,
                              _ bad: UnsafeMutablePointer<UnsafeMutablePointer<ibv_recv_wr>?>) throws(Errno) {
        bad.pointee = request  // where a forced failure stops: nothing posted
        try Syscalls.nothingOrReturnedErrno(.postReceive) { daxpin_ibv_post_recv(qp, request, bad) }
    }
}
