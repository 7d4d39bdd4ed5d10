@testable import DaxPin
import CIbverbs
import CRdmacm
import Dispatch
import Glibc
import Synchronization
import Testing

extension DaxPin {
    /// The verbs and rdma_cm seam (`VerbsCalls`): a failure armed with `SyscallFaults` reaches
    /// each fault point and fails it in the C call's own convention, and the library's calls go
    /// through it. Runs on the host, which has no RDMA device.
    @Suite(.serialized) struct VerbsSeam {
        init() { SyscallFaults.disarm() }

        /// One fault point: its wrapper, called with placeholder objects that a forced failure
        /// never reaches. Whatever the C call's convention (nil, -1 with errno, or the error
        /// number returned), the wrapper throws the `Errno`.
        struct FaultPoint: Sendable, CustomTestStringConvertible {
            let call: Syscall
            let name: String
            let invoke: @Sendable () throws(Errno) -> Void
            var testDescription: String { name }
        }

        /// Never touched: the posts below are forced to fail.
        static let queuePair = Placeholder<ibv_qp>()

        static let faultPoints: [FaultPoint] = {
            let context = Placeholder<ibv_context>(), pd = Placeholder<ibv_pd>(), cq = Placeholder<ibv_cq>()
            let qp = Placeholder<ibv_qp>(), channel = Placeholder<ibv_comp_channel>(), id = Placeholder<rdma_cm_id>()
            let cmChannel = Placeholder<rdma_event_channel>(), address = Placeholder<sockaddr>()
            let device = Placeholder<ibv_device>(), mr = Placeholder<ibv_mr>()
            return [
                .init(call: .getDeviceList, name: "ibv_get_device_list") { () throws(Errno) in
                    var count: Int32 = 0
                    _ = try VerbsCalls.ibv_get_device_list(&count)
                },
                .init(call: .openDevice, name: "ibv_open_device") { () throws(Errno) in
                    _ = try VerbsCalls.ibv_open_device(device.pointer)
                },
                .init(call: .queryDevice, name: "ibv_query_device_ex") { () throws(Errno) in
                    var attributes = ibv_device_attr_ex()
                    try VerbsCalls.ibv_query_device_ex(context.pointer, &attributes)
                },
                .init(call: .queryPort, name: "ibv_query_port") { () throws(Errno) in
                    var attributes = ibv_port_attr()
                    try VerbsCalls.ibv_query_port(context.pointer, 1, &attributes)
                },
                .init(call: .queryGID, name: "ibv_query_gid") { () throws(Errno) in
                    var gid = ibv_gid()
                    try VerbsCalls.ibv_query_gid(context.pointer, 1, 0, &gid)
                },
                .init(call: .allocateProtectionDomain, name: "ibv_alloc_pd") { () throws(Errno) in
                    _ = try VerbsCalls.ibv_alloc_pd(context.pointer)
                },
                .init(call: .registerMemory, name: "ibv_reg_mr") { () throws(Errno) in
                    _ = try VerbsCalls.ibv_reg_mr(pd.pointer, nil, 4096, 0)
                },
                .init(call: .deregisterMemory, name: "ibv_dereg_mr") { () throws(Errno) in
                    try VerbsCalls.ibv_dereg_mr(mr.pointer)
                },
                .init(call: .adviseMemory, name: "ibv_advise_mr") { () throws(Errno) in
                    var sge = ibv_sge()
                    try VerbsCalls.ibv_advise_mr(pd.pointer, IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH, 0, &sge, 1)
                },
                .init(call: .createCompletionChannel, name: "ibv_create_comp_channel") { () throws(Errno) in
                    _ = try VerbsCalls.ibv_create_comp_channel(context.pointer)
                },
                .init(call: .createCompletionQueue, name: "ibv_create_cq") { () throws(Errno) in
                    _ = try VerbsCalls.ibv_create_cq(context.pointer, 16, nil, nil, 0)
                },
                .init(call: .requestNotification, name: "ibv_req_notify_cq") { () throws(Errno) in
                    try VerbsCalls.ibv_req_notify_cq(cq.pointer, 0)
                },
                .init(call: .getCompletionEvent, name: "ibv_get_cq_event") { () throws(Errno) in
                    var eventCQ: UnsafeMutablePointer<ibv_cq>?
                    var eventContext: UnsafeMutableRawPointer?
                    try VerbsCalls.ibv_get_cq_event(channel.pointer, &eventCQ, &eventContext)
                },
                .init(call: .pollCompletionQueue, name: "ibv_poll_cq") { () throws(Errno) in
                    var completion = ibv_wc()
                    _ = try VerbsCalls.ibv_poll_cq(cq.pointer, 1, &completion)
                },
                .init(call: .createQueuePair, name: "ibv_create_qp") { () throws(Errno) in
                    var attributes = ibv_qp_init_attr()
                    _ = try VerbsCalls.ibv_create_qp(pd.pointer, &attributes)
                },
                .init(call: .modifyQueuePair, name: "ibv_modify_qp") { () throws(Errno) in
                    var attributes = ibv_qp_attr()
                    try VerbsCalls.ibv_modify_qp(qp.pointer, &attributes, 0)
                },
                .init(call: .modifyQueuePair, name: "ibv_query_qp") { () throws(Errno) in
                    var attributes = ibv_qp_attr()
                    var initAttributes = ibv_qp_init_attr()
                    try VerbsCalls.ibv_query_qp(qp.pointer, &attributes, 0, &initAttributes)
                },
                .init(call: .rdmaCreateEventChannel, name: "rdma_create_event_channel") { () throws(Errno) in
                    _ = try VerbsCalls.rdma_create_event_channel()
                },
                .init(call: .rdmaGetEvent, name: "rdma_get_cm_event") { () throws(Errno) in
                    var event: UnsafeMutablePointer<rdma_cm_event>?
                    try VerbsCalls.rdma_get_cm_event(cmChannel.pointer, &event)
                },
                .init(call: .rdmaCreateID, name: "rdma_create_id") { () throws(Errno) in
                    var raw: UnsafeMutablePointer<rdma_cm_id>?
                    try VerbsCalls.rdma_create_id(cmChannel.pointer, &raw, nil, RDMA_PS_TCP)
                },
                .init(call: .rdmaMigrateID, name: "rdma_migrate_id") { () throws(Errno) in
                    try VerbsCalls.rdma_migrate_id(id.pointer, cmChannel.pointer)
                },
                .init(call: .rdmaBind, name: "rdma_bind_addr") { () throws(Errno) in
                    try VerbsCalls.rdma_bind_addr(id.pointer, address.pointer)
                },
                .init(call: .rdmaListen, name: "rdma_listen") { () throws(Errno) in try VerbsCalls.rdma_listen(id.pointer, 1) },
                .init(call: .rdmaResolveAddress, name: "rdma_resolve_addr") { () throws(Errno) in
                    try VerbsCalls.rdma_resolve_addr(id.pointer, nil, address.pointer, 100)
                },
                .init(call: .rdmaResolveRoute, name: "rdma_resolve_route") { () throws(Errno) in
                    try VerbsCalls.rdma_resolve_route(id.pointer, 100)
                },
                .init(call: .rdmaCreateQueuePair, name: "rdma_create_qp") { () throws(Errno) in
                    var attributes = ibv_qp_init_attr()
                    try VerbsCalls.rdma_create_qp(id.pointer, pd.pointer, &attributes)
                },
                .init(call: .rdmaCreateQueuePair, name: "rdma_create_qp_ex") { () throws(Errno) in
                    var attributes = ibv_qp_init_attr_ex()
                    try VerbsCalls.rdma_create_qp_ex(id.pointer, &attributes)
                },
                .init(call: .rdmaInitQueuePairAttributes, name: "rdma_init_qp_attr") { () throws(Errno) in
                    var attributes = ibv_qp_attr()
                    var mask: Int32 = 0
                    try VerbsCalls.rdma_init_qp_attr(id.pointer, &attributes, &mask)
                },
                .init(call: .rdmaConnect, name: "rdma_connect") { () throws(Errno) in try VerbsCalls.rdma_connect(id.pointer, nil) },
                .init(call: .rdmaAccept, name: "rdma_accept") { () throws(Errno) in try VerbsCalls.rdma_accept(id.pointer, nil) },
            ]
        }()

        @Test("a forced failure reaches each verbs and rdma_cm fault point and is thrown as its Errno", arguments: faultPoints)
        func forcedFailureIsThrown(point: FaultPoint) {
            defer { SyscallFaults.disarm() }
            let code = EHOSTUNREACH  // an errno none of these calls would pick by itself here
            SyscallFaults.arm(point.call, errno: code)
            #expect(throws: Errno(rawValue: code)) { try point.invoke() }
            #expect(SyscallFaults.isSpent(point.call))
        }

        @Test("a forced EINTR at each verbs and rdma_cm fault point is retried in the seam, not returned", arguments: faultPoints)
        func forcedInterruptIsRetried(point: FaultPoint) {
            defer { SyscallFaults.disarm() }
            // EINTR first, then a failure that stops the retry before the placeholder objects
            // are reached: the caller sees only the second.
            SyscallFaults.arm(point.call, errnos: [EINTR, EHOSTUNREACH])
            #expect(throws: Errno.noRouteToHost) { try point.invoke() }
            #expect(SyscallFaults.isSpent(point.call), "\(point.name) did not retry after EINTR")
        }

        @Test("ibv_post_send and ibv_post_recv forced to fail throw the errno and point bad_wr at the first request")
        func postFailuresNameTheFirstRequest() {
            defer { SyscallFaults.disarm() }
            let qp = Self.queuePair
            SyscallFaults.arm(.postSend, errno: ENOMEM)
            var send = ibv_send_wr()
            var badSend: UnsafeMutablePointer<ibv_send_wr>?
            let sent = withUnsafeMutablePointer(to: &send) { request in
                (Errno.of { () throws(Errno) in try VerbsCalls.ibv_post_send(qp.pointer, request, &badSend) }, badSend == request)
            }
            #expect(sent.0 == .noMemory && sent.1)
            SyscallFaults.arm(.postReceive, errno: EINVAL)
            var receive = ibv_recv_wr()
            var badReceive: UnsafeMutablePointer<ibv_recv_wr>?
            let received = withUnsafeMutablePointer(to: &receive) { request in
                (Errno.of { () throws(Errno) in try VerbsCalls.ibv_post_recv(qp.pointer, request, &badReceive) }, badReceive == request)
            }
            #expect(received.0 == .invalidArgument && received.1)
            #expect(SyscallFaults.isSpent(.postSend) && SyscallFaults.isSpent(.postReceive))
        }

        @Test("the library lists devices through the seam: a failed ibv_get_device_list is no device")
        func deviceListThroughTheSeam() {
            defer { SyscallFaults.disarm() }
            SyscallFaults.arm(.getDeviceList, errno: ENOMEM, times: 3)
            #expect(RDMADevice.availableDevices().isEmpty)
            #expect(throws: DaxPinError.noRDMADevice) { _ = try RDMADevice.openFirst() }
            #expect(throws: DaxPinError.unknownDevice(name: "rxe0", available: [])) { _ = try RDMADevice.open(named: "rxe0") }
            #expect(SyscallFaults.isSpent(.getDeviceList))
        }

        @Test("the listener and the client make their rdma_cm event channel through the seam; nothing is left")
        func eventChannelThroughTheSeam() {
            defer { SyscallFaults.disarm() }
            let before = ResourceCount.now()
            let reason = errnoText(EHOSTUNREACH)
            SyscallFaults.arm(.rdmaCreateEventChannel, errno: EHOSTUNREACH)
            #expect(throws: DaxPinError.connectionFailed(peer: "127.0.0.1:0", operation: "rdma_create_event_channel", reason: reason)) {
                _ = try RDMAListener(address: "127.0.0.1")
            }
            SyscallFaults.arm(.rdmaCreateEventChannel, errno: EHOSTUNREACH)
            #expect(throws: DaxPinError.connectionFailed(peer: "127.0.0.1:7471", operation: "rdma_create_event_channel", reason: reason)) {
                _ = try RDMAConnection.connect(to: "127.0.0.1", port: 7471, timeout: .seconds(1))
            }
            #expect(SyscallFaults.isSpent(.rdmaCreateEventChannel))
            let after = ResourceCount.after(expecting: before)
            #expect(after == before, "leaked: \(after.fdDifference(from: before))")
        }
    }
}

/// Zeroed memory standing in for a libibverbs or librdmacm object that a wrapper under a
/// forced failure must never touch. Lives as long as the process (the argument lists are static).
struct Placeholder<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>
    init() {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(MemoryLayout<T>.size, 1), alignment: MemoryLayout<T>.alignment)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: max(MemoryLayout<T>.size, 1))
        pointer = raw.assumingMemoryBound(to: T.self)
    }
}
