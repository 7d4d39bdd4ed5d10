import CIbverbs
import CRdmacm  // verbs enum constants resolve through it once any file imports librdmacm
import Glibc

/// A reliable-connected queue pair with its own completion queue, for one-sided RDMA
/// WRITE and READ against a peer's ``MemoryRegion/RemoteAccess``.
///
/// Connect two queue pairs by exchanging their ``endpoint`` values (through rdma_cm or any
/// out-of-band channel) and calling ``connect(to:access:)`` on both. Attach a queue pair to a
/// lease with ``LayoutLease/attach(stop:)`` and ``moveToError()`` so a forced revocation
/// stops its RDMA before the MRs it uses are deregistered.
public final class QueuePair: @unchecked Sendable {
    // ibverbs objects are thread-safe; posting and completing are serialized by `sends`.
    /// What the peer needs to connect to this queue pair.
    public struct Endpoint: Sendable, Hashable, Codable {
        /// The queue pair number (`qp_num`).
        public let queuePairNumber: UInt32
        /// The first packet sequence number this side sends.
        public let packetSequenceNumber: UInt32
        /// The port LID (InfiniBand; zero on RoCE).
        public let localID: UInt16
        /// The port GID (RoCE needs it; IB uses the LID).
        public let gid: [UInt8]
    }

    /// How a work request completed.
    public enum Completion: Sendable, Hashable, CustomStringConvertible {
        /// The work request completed successfully.
        case success
        /// The peer refused the access: unknown or revoked rkey, or out-of-bounds address.
        case remoteAccessError
        /// The peer did not answer within the retry budget.
        case retryExceeded
        /// The queue pair was flushed (it is in the error state).
        case flushed
        /// Any other `ibv_wc_status`.
        case failed(status: UInt32)

        /// Human-readable text for messages and logs.
        public var description: String {
            switch self {
            case .success: "success"
            case .remoteAccessError: "remote access error"
            case .retryExceeded: "retry exceeded"
            case .flushed: "flushed"
            case .failed(let status): "failed (\(String(cString: VerbsCalls.ibv_wc_status_str(ibv_wc_status(status)))))"
            }
        }

        /// The completion a work completion's `ibv_wc_status` reports (QueuePair and
        /// RDMAConnection share it).
        init(_ status: ibv_wc_status) {
            self = switch status {
            case IBV_WC_SUCCESS: .success
            case IBV_WC_REM_ACCESS_ERR: .remoteAccessError
            case IBV_WC_RETRY_EXC_ERR: .retryExceeded
            case IBV_WC_WR_FLUSH_ERR: .flushed
            default: .failed(status: status.rawValue)
            }
        }
    }

    /// A local buffer for the scatter/gather entry of a work request.
    public struct LocalBuffer: Sendable, Hashable {
        /// Start of the buffer (inside a registration of this device).
        public let address: UInt64
        /// Bytes to transfer.
        public let length: Int
        /// The registration's local key (`MemoryRegion.localKey`).
        public let localKey: UInt32
        /// A scatter/gather entry.
        public init(address: UInt64, length: Int, localKey: UInt32) {
            self.address = address; self.length = length; self.localKey = localKey
        }
    }

    /// The device the queue pair lives on.
    public let device: RDMADevice
    private let provider: IbverbsProvider
    private let qp: UnsafeMutablePointer<ibv_qp>
    /// Posts and completes the work requests: the layer RDMAConnection uses too.
    private let sends: SendQueue
    private let port: UInt8 = 1
    private let gidIndex: Int32
    private let psn: UInt32

    /// Creates an RC queue pair on `device` (`ibv_create_cq`, `ibv_create_qp`).
    public init(device: RDMADevice, depth: Int = 64) throws(DaxPinError) {
        guard let provider = device.provider as? IbverbsProvider else {
            throw .deviceFailure(device: device.name, operation: "create a queue pair (not a libibverbs device)", errno: .notSupported)
        }
        self.device = device
        self.provider = provider
        // Released by ARC if the queue pair cannot be made.
        let completions = try CompletionQueue(context: provider.context, depth: depth * 2, deviceName: device.name)
        var attributes = ibv_qp_init_attr()
        attributes.send_cq = completions.cq
        attributes.recv_cq = completions.cq
        attributes.qp_type = IBV_QPT_RC
        attributes.sq_sig_all = 1
        attributes.cap.max_send_wr = UInt32(depth)
        attributes.cap.max_recv_wr = UInt32(depth)
        attributes.cap.max_send_sge = 1
        attributes.cap.max_recv_sge = 1
        let qp: UnsafeMutablePointer<ibv_qp>
        do throws(Errno) { qp = try VerbsCalls.ibv_create_qp(provider.pd, &attributes) } catch {
            throw .deviceFailure(device: device.name, operation: "ibv_create_qp", errno: error)
        }
        self.qp = qp
        self.sends = SendQueue(completionQueue: completions, deviceName: device.name)
        self.gidIndex = Self.chooseGID(provider.context, port: 1)
        self.psn = UInt32.random(in: 0..<(1 << 24))
    }

    // The completion queue goes after this body, once the queue pair that reports to it is gone.
    deinit { VerbsCalls.ibv_destroy_qp(qp) }

    /// Prefers an IPv4-mapped RoCE GID (reachable on the interface's address), else the first non-zero one.
    private static func chooseGID(_ context: UnsafeMutablePointer<ibv_context>, port: UInt8) -> Int32 {
        var portAttributes = ibv_port_attr()
        guard (try? VerbsCalls.ibv_query_port(context, port, &portAttributes)) != nil else { return 0 }
        var firstNonZero: Int32 = -1
        for index in 0..<portAttributes.gid_tbl_len {
            var gid = ibv_gid()
            guard (try? VerbsCalls.ibv_query_gid(context, port, index, &gid)) != nil else { continue }
            let raw = withUnsafeBytes(of: gid.raw) { Array($0) }
            if raw.allSatisfy({ $0 == 0 }) { continue }
            if raw[0..<10].allSatisfy({ $0 == 0 }), raw[10] == 0xff, raw[11] == 0xff { return index }
            if firstNonZero < 0 { firstNonZero = index }
        }
        return max(firstNonZero, 0)
    }

    /// This queue pair's address for the peer.
    public var endpoint: Endpoint {
        var portAttributes = ibv_port_attr()
        try? VerbsCalls.ibv_query_port(provider.context, port, &portAttributes)
        var gid = ibv_gid()
        try? VerbsCalls.ibv_query_gid(provider.context, port, gidIndex, &gid)
        return Endpoint(queuePairNumber: qp.pointee.qp_num, packetSequenceNumber: psn,
                        localID: portAttributes.lid, gid: withUnsafeBytes(of: gid.raw) { Array($0) })
    }

    /// Moves the queue pair through INIT, RTR and RTS towards `remote`.
    /// `access` is what the peer may do to memory on this side.
    public func connect(to remote: Endpoint, access: RegistrationAccess = [.localWrite, .remoteWrite, .remoteRead]) throws(DaxPinError) {
        var portAttributes = ibv_port_attr()
        do throws(Errno) { try VerbsCalls.ibv_query_port(provider.context, port, &portAttributes) } catch {
            throw .deviceFailure(device: device.name, operation: "ibv_query_port", errno: error)
        }

        var attr = ibv_qp_attr()
        attr.qp_state = IBV_QPS_INIT
        attr.pkey_index = 0
        attr.port_num = port
        attr.qp_access_flags = UInt32(access.rawValue)
        try modify(&attr, [IBV_QP_STATE, IBV_QP_PKEY_INDEX, IBV_QP_PORT, IBV_QP_ACCESS_FLAGS], "INIT")

        attr = ibv_qp_attr()
        attr.qp_state = IBV_QPS_RTR
        attr.path_mtu = portAttributes.active_mtu
        attr.dest_qp_num = remote.queuePairNumber
        attr.rq_psn = remote.packetSequenceNumber
        attr.max_dest_rd_atomic = 1
        attr.min_rnr_timer = 12
        attr.ah_attr.is_global = 1
        attr.ah_attr.dlid = remote.localID
        attr.ah_attr.port_num = port
        attr.ah_attr.grh.hop_limit = 1
        attr.ah_attr.grh.sgid_index = UInt8(gidIndex)
        withUnsafeMutableBytes(of: &attr.ah_attr.grh.dgid.raw) { bytes in
            for (index, byte) in remote.gid.prefix(16).enumerated() { bytes[index] = byte }
        }
        try modify(&attr, [IBV_QP_STATE, IBV_QP_AV, IBV_QP_PATH_MTU, IBV_QP_DEST_QPN, IBV_QP_RQ_PSN,
                           IBV_QP_MAX_DEST_RD_ATOMIC, IBV_QP_MIN_RNR_TIMER], "RTR")

        attr = ibv_qp_attr()
        attr.qp_state = IBV_QPS_RTS
        attr.timeout = 14
        attr.retry_cnt = 7
        attr.rnr_retry = 7
        attr.sq_psn = psn
        attr.max_rd_atomic = 1
        try modify(&attr, [IBV_QP_STATE, IBV_QP_TIMEOUT, IBV_QP_RETRY_CNT, IBV_QP_RNR_RETRY, IBV_QP_SQ_PSN,
                           IBV_QP_MAX_QP_RD_ATOMIC], "RTS")
    }

    /// Moves the queue pair to the error state: outstanding and future work is flushed,
    /// the portable way to stop in-flight RDMA before deregistering its memory.
    public func moveToError() {
        var attr = ibv_qp_attr()
        attr.qp_state = IBV_QPS_ERR
        _ = try? modify(&attr, [IBV_QP_STATE], "ERR")
    }

    private func modify(_ attr: inout ibv_qp_attr, _ mask: [ibv_qp_attr_mask], _ state: String) throws(DaxPinError) {
        let bits = mask.reduce(Int32(0)) { $0 | Int32(bitPattern: $1.rawValue) }
        do throws(Errno) { try VerbsCalls.ibv_modify_qp(qp, &attr, bits) } catch {
            throw .deviceFailure(device: device.name, operation: "ibv_modify_qp(\(state))", errno: error)
        }
    }

    /// RDMA WRITE of `local` to `remote` at `offset`; waits for the completion up to `timeout`.
    public func write(_ local: LocalBuffer, to remote: MemoryRegion.RemoteAccess, offset: Int = 0,
                      timeout: Duration = .seconds(10)) throws(DaxPinError) -> Completion {
        try post(IBV_WR_RDMA_WRITE, local, remote, offset, timeout)
    }

    /// RDMA READ from `remote` at `offset` into `local`; waits for the completion up to `timeout`.
    public func read(into local: LocalBuffer, from remote: MemoryRegion.RemoteAccess, offset: Int = 0,
                     timeout: Duration = .seconds(10)) throws(DaxPinError) -> Completion {
        try post(IBV_WR_RDMA_READ, local, remote, offset, timeout)
    }

    private func post(_ opcode: ibv_wr_opcode, _ local: LocalBuffer, _ remote: MemoryRegion.RemoteAccess,
                      _ offset: Int, _ timeout: Duration) throws(DaxPinError) -> Completion {
        try sends.postAndWait(timeout: timeout) { (id) throws(Errno) in
            try postOneSided(on: qp, opcode, id: id, local: local, remote: remote, offset: offset)
        }
    }
}
