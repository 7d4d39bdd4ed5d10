import CIbverbs
import Glibc
import LibIbverbs

/// The libibverbs calls the library makes, in one thin layer next to ``Syscalls`` (librdmacm's
/// are in `VerbsCalls+ConnectionManager.swift`). Each forwards unchanged and returns what the C
/// call returns. A fallible call is a fault point: a failure armed for it with ``SyscallFaults``
/// makes it fail without reaching the device, in the C call's own convention (stated per
/// wrapper: verbs report errors three ways), with `errno` set to the armed code in every case.
/// Getters and destructors only forward.
enum VerbsCalls {
    /// Sets `errno` and returns the armed code when a failure is armed for `call`.
    static func forced(_ call: Syscall) -> Int32? {
        guard let code = Syscalls.injectedFault(call) else { return nil }
        errno = code
        return code
    }

    // MARK: Devices and protection domains

    /// `ibv_get_device_list`. Forced failure: nil.
    static func ibv_get_device_list(_ count: UnsafeMutablePointer<Int32>?) -> UnsafeMutablePointer<UnsafeMutablePointer<ibv_device>?>? {
        if forced(.getDeviceList) != nil { return nil }
        return LibIbverbs.ibv_get_device_list(count)
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

    /// `ibv_open_device`. Forced failure: nil.
    static func ibv_open_device(_ device: UnsafeMutablePointer<ibv_device>) -> UnsafeMutablePointer<ibv_context>? {
        if forced(.openDevice) != nil { return nil }
        return LibIbverbs.ibv_open_device(device)
    }

    /// `ibv_close_device`.
    @discardableResult
    static func ibv_close_device(_ context: UnsafeMutablePointer<ibv_context>) -> Int32 {
        LibIbverbs.ibv_close_device(context)
    }

    /// `ibv_query_device_ex` (static inline, through the CIbverbs shim). Forced failure: the errno.
    static func ibv_query_device_ex(_ context: UnsafeMutablePointer<ibv_context>,
                                    _ attributes: UnsafeMutablePointer<ibv_device_attr_ex>) -> Int32 {
        if let code = forced(.queryDevice) { return code }
        return daxpin_ibv_query_device_ex(context, attributes)
    }

    /// `ibv_query_device`, the fallback where the extended query is missing. Forced failure (the
    /// same fault point as the extended query): the errno.
    static func ibv_query_device(_ context: UnsafeMutablePointer<ibv_context>,
                                 _ attributes: UnsafeMutablePointer<ibv_device_attr>) -> Int32 {
        if let code = forced(.queryDevice) { return code }
        return LibIbverbs.ibv_query_device(context, attributes)
    }

    /// `ibv_query_port` (a macro, through the shim). Forced failure: the errno.
    static func ibv_query_port(_ context: UnsafeMutablePointer<ibv_context>, _ port: UInt8,
                               _ attributes: UnsafeMutablePointer<ibv_port_attr>) -> Int32 {
        if let code = forced(.queryPort) { return code }
        return daxpin_ibv_query_port(context, port, attributes)
    }

    /// `ibv_query_gid`. Forced failure: -1.
    static func ibv_query_gid(_ context: UnsafeMutablePointer<ibv_context>, _ port: UInt8, _ index: Int32,
                              _ gid: UnsafeMutablePointer<ibv_gid>) -> Int32 {
        if forced(.queryGID) != nil { return -1 }
        return LibIbverbs.ibv_query_gid(context, port, index, gid)
    }

    /// `ibv_alloc_pd`. Forced failure: nil.
    static func ibv_alloc_pd(_ context: UnsafeMutablePointer<ibv_context>) -> UnsafeMutablePointer<ibv_pd>? {
        if forced(.allocateProtectionDomain) != nil { return nil }
        return LibIbverbs.ibv_alloc_pd(context)
    }

    /// `ibv_dealloc_pd`.
    @discardableResult
    static func ibv_dealloc_pd(_ pd: UnsafeMutablePointer<ibv_pd>) -> Int32 { LibIbverbs.ibv_dealloc_pd(pd) }

    // MARK: Memory registrations

    /// `ibv_reg_mr` (a macro, through the shim). Forced failure: nil.
    static func ibv_reg_mr(_ pd: UnsafeMutablePointer<ibv_pd>, _ address: UnsafeMutableRawPointer?, _ length: Int,
                           _ access: Int32) -> UnsafeMutablePointer<ibv_mr>? {
        if forced(.registerMemory) != nil { return nil }
        return daxpin_ibv_reg_mr(pd, address, length, access)
    }

    /// `ibv_dereg_mr`. Forced failure: the errno.
    static func ibv_dereg_mr(_ mr: UnsafeMutablePointer<ibv_mr>) -> Int32 {
        if let code = forced(.deregisterMemory) { return code }
        return LibIbverbs.ibv_dereg_mr(mr)
    }

    /// `ibv_advise_mr` (static inline, through the shim). Forced failure: the errno.
    static func ibv_advise_mr(_ pd: UnsafeMutablePointer<ibv_pd>, _ advice: ib_uverbs_advise_mr_advice, _ flags: UInt32,
                              _ list: UnsafeMutablePointer<ibv_sge>, _ count: UInt32) -> Int32 {
        if let code = forced(.adviseMemory) { return code }
        return daxpin_ibv_advise_mr(pd, advice, flags, list, count)
    }

    // MARK: Completion queues

    /// `ibv_create_comp_channel`. Forced failure: nil.
    static func ibv_create_comp_channel(_ context: UnsafeMutablePointer<ibv_context>) -> UnsafeMutablePointer<ibv_comp_channel>? {
        if forced(.createCompletionChannel) != nil { return nil }
        return LibIbverbs.ibv_create_comp_channel(context)
    }

    /// `ibv_destroy_comp_channel`.
    @discardableResult
    static func ibv_destroy_comp_channel(_ channel: UnsafeMutablePointer<ibv_comp_channel>) -> Int32 {
        LibIbverbs.ibv_destroy_comp_channel(channel)
    }

    /// `ibv_create_cq`. Forced failure: nil.
    static func ibv_create_cq(_ context: UnsafeMutablePointer<ibv_context>, _ entries: Int32, _ cqContext: UnsafeMutableRawPointer?,
                              _ channel: UnsafeMutablePointer<ibv_comp_channel>?, _ vector: Int32) -> UnsafeMutablePointer<ibv_cq>? {
        if forced(.createCompletionQueue) != nil { return nil }
        return LibIbverbs.ibv_create_cq(context, entries, cqContext, channel, vector)
    }

    /// `ibv_destroy_cq`.
    @discardableResult
    static func ibv_destroy_cq(_ cq: UnsafeMutablePointer<ibv_cq>) -> Int32 { LibIbverbs.ibv_destroy_cq(cq) }

    /// `ibv_req_notify_cq` (static inline, through the shim). Forced failure: the errno.
    static func ibv_req_notify_cq(_ cq: UnsafeMutablePointer<ibv_cq>, _ solicitedOnly: Int32) -> Int32 {
        if let code = forced(.requestNotification) { return code }
        return daxpin_ibv_req_notify_cq(cq, solicitedOnly)
    }

    /// `ibv_get_cq_event`. Forced failure: -1.
    static func ibv_get_cq_event(_ channel: UnsafeMutablePointer<ibv_comp_channel>, _ cq: UnsafeMutablePointer<UnsafeMutablePointer<ibv_cq>?>,
                                 _ context: UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> Int32 {
        if forced(.getCompletionEvent) != nil { return -1 }
        return LibIbverbs.ibv_get_cq_event(channel, cq, context)
    }

    /// `ibv_ack_cq_events`.
    static func ibv_ack_cq_events(_ cq: UnsafeMutablePointer<ibv_cq>, _ count: UInt32) { LibIbverbs.ibv_ack_cq_events(cq, count) }

    /// `ibv_poll_cq` (static inline, through the shim). Forced failure: -1 (any negative count
    /// is a failure; the real call leaves errno undefined).
    static func ibv_poll_cq(_ cq: UnsafeMutablePointer<ibv_cq>, _ entries: Int32, _ completions: UnsafeMutablePointer<ibv_wc>) -> Int32 {
        if forced(.pollCompletionQueue) != nil { return -1 }
        return daxpin_ibv_poll_cq(cq, entries, completions)
    }

    /// `ibv_wc_status_str`.
    static func ibv_wc_status_str(_ status: ibv_wc_status) -> UnsafePointer<CChar>! { LibIbverbs.ibv_wc_status_str(status) }

    // MARK: Queue pairs and work requests

    /// `ibv_create_qp`. Forced failure: nil.
    static func ibv_create_qp(_ pd: UnsafeMutablePointer<ibv_pd>, _ attributes: UnsafeMutablePointer<ibv_qp_init_attr>) -> UnsafeMutablePointer<ibv_qp>? {
        if forced(.createQueuePair) != nil { return nil }
        return LibIbverbs.ibv_create_qp(pd, attributes)
    }

    /// `ibv_destroy_qp`.
    @discardableResult
    static func ibv_destroy_qp(_ qp: UnsafeMutablePointer<ibv_qp>) -> Int32 { LibIbverbs.ibv_destroy_qp(qp) }

    /// `ibv_query_qp`. Forced failure (the `modifyQueuePair` fault point): the errno.
    static func ibv_query_qp(_ qp: UnsafeMutablePointer<ibv_qp>, _ attributes: UnsafeMutablePointer<ibv_qp_attr>, _ mask: Int32,
                             _ initAttributes: UnsafeMutablePointer<ibv_qp_init_attr>) -> Int32 {
        if let code = forced(.modifyQueuePair) { return code }
        return LibIbverbs.ibv_query_qp(qp, attributes, mask, initAttributes)
    }

    /// `ibv_modify_qp`. Forced failure: the errno.
    static func ibv_modify_qp(_ qp: UnsafeMutablePointer<ibv_qp>, _ attributes: UnsafeMutablePointer<ibv_qp_attr>, _ mask: Int32) -> Int32 {
        if let code = forced(.modifyQueuePair) { return code }
        return LibIbverbs.ibv_modify_qp(qp, attributes, mask)
    }

    /// `ibv_post_send` (static inline, through the shim). Forced failure: the errno, with
    /// `bad` at the first request (none was posted).
    static func ibv_post_send(_ qp: UnsafeMutablePointer<ibv_qp>, _ request: UnsafeMutablePointer<ibv_send_wr>,
                              _ bad: UnsafeMutablePointer<UnsafeMutablePointer<ibv_send_wr>?>) -> Int32 {
        if let code = forced(.postSend) { bad.pointee = request; return code }
        return daxpin_ibv_post_send(qp, request, bad)
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
    /// Returns EOPNOTSUPP, adding nothing, in a build whose rdma-core predates FLUSH.
    static func ibv_wr_flush(_ qp: UnsafeMutablePointer<ibv_qp_ex>, rkey: UInt32, address: UInt64, length: Int,
                             type: UInt8, level: UInt8) -> Int32 {
        daxpin_ibv_wr_flush(qp, rkey, address, length, type, level)
    }

    /// `ibv_wr_atomic_write` (static inline, through the shim): adds an 8-byte ATOMIC WRITE of
    /// `*value` to the open batch. Returns EOPNOTSUPP, adding nothing, in a build whose
    /// rdma-core predates it.
    static func ibv_wr_atomic_write(_ qp: UnsafeMutablePointer<ibv_qp_ex>, rkey: UInt32, address: UInt64,
                                    value: UnsafeRawPointer) -> Int32 {
        daxpin_ibv_wr_atomic_write(qp, rkey, address, value)
    }

    /// `ibv_wr_complete` (static inline, through the shim): posts the batch. Forced failure (the
    /// `postSend` fault point): the errno, after aborting the batch (nothing was posted).
    static func ibv_wr_complete(_ qp: UnsafeMutablePointer<ibv_qp_ex>) -> Int32 {
        if let code = forced(.postSend) { daxpin_ibv_wr_abort(qp); return code }
        return daxpin_ibv_wr_complete(qp)
    }

    /// `ibv_wr_abort` (static inline, through the shim): drops the open batch.
    static func ibv_wr_abort(_ qp: UnsafeMutablePointer<ibv_qp_ex>) { daxpin_ibv_wr_abort(qp) }

    /// `ibv_post_recv` (static inline, through the shim). Forced failure: the errno, with
    /// `bad` at the first request (none was posted).
    static func ibv_post_recv(_ qp: UnsafeMutablePointer<ibv_qp>, _ request: UnsafeMutablePointer<ibv_recv_wr>,
                              _ bad: UnsafeMutablePointer<UnsafeMutablePointer<ibv_recv_wr>?>) -> Int32 {
        if let code = forced(.postReceive) { bad.pointee = request; return code }
        return daxpin_ibv_post_recv(qp, request, bad)
    }
}
