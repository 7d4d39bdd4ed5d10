import CIbverbs
import CRdmacm
import Glibc
import Synchronization
import SystemPackage

/// A reliable connection set up through librdmacm: an rdma_cm id with its queue pair
/// (`rdma_create_qp` on the connection's ``device``), a send and a receive completion queue,
/// and a small registered buffer pool for control messages.
///
/// - Control messages: ``send(_:timeout:)`` (SEND) and ``receive(timeout:)`` (RECV), up to
///   ``Options/messageSize`` bytes each.
/// - One-sided RDMA: ``write(_:to:offset:timeout:)`` and ``read(into:from:offset:timeout:)``
///   wait for their own completion; ``postWrite(_:to:offset:id:signaled:)`` and
///   ``postRead(into:from:offset:id:)`` with ``completions(timeout:)`` keep several in flight.
///
/// Register the memory used in work requests on ``device`` (for example
/// `lease.pin(on: connection.device)`): the queue pair lives on that device's protection domain.
/// Attach the connection to a lease with `lease.attach { connection.moveToError() }`.
public final class RDMAConnection: @unchecked Sendable {
    // The rdma_cm id and verbs objects are thread-safe; sends and receives are serialized
    // by `sends` and `receiveLock`.

    /// Sizes of the queues and the control-message pool.
    public struct Options: Sendable, Hashable {
        /// RDMA WRITE/READ work requests the caller keeps in flight at most.
        public var depth: Int
        /// Receive buffers posted for control messages.
        public var receiveSlots: Int
        /// The largest control message in bytes.
        public var messageSize: Int
        /// This side posts RDMA FLUSH (``RDMAConnection/postFlush(_:offset:length:id:)``): the
        /// queue pair is an extended one created with `IBV_QP_EX_WITH_FLUSH`. Needs a build with
        /// ``RDMABuildFeatures/flush`` and a device that offers it, or the connection is refused
        /// with ``DaxPinError/featureUnavailable(feature:reason:)``.
        public var postsFlush: Bool
        /// This side (the server, accepting) lets the peer FLUSH memory registered with
        /// ``RegistrationAccess/flushPersistent``: its queue pair's responder access includes
        /// FLUSH before the peer learns the connection is up, so the peer's first FLUSH is served.
        public var acceptsFlush: Bool
        /// This side posts RDMA ATOMIC WRITE (``RDMAConnection/postAtomicWrite(_:to:offset:id:)``):
        /// the queue pair is an extended one created with `IBV_QP_EX_WITH_ATOMIC_WRITE`. Needs
        /// ``RDMABuildFeatures/atomicWrite`` and a device that offers it, as ``postsFlush``.
        public var postsAtomicWrite: Bool
        /// Creates options; the defaults suit a storage protocol with small control messages.
        public init(depth: Int = 32, receiveSlots: Int = 16, messageSize: Int = 256,
                    postsFlush: Bool = false, acceptsFlush: Bool = false, postsAtomicWrite: Bool = false) {
            self.depth = depth; self.receiveSlots = receiveSlots; self.messageSize = messageSize
            self.postsFlush = postsFlush; self.acceptsFlush = acceptsFlush; self.postsAtomicWrite = postsAtomicWrite
        }

        /// The extended queue pair's operations beyond WRITE, READ and SEND that these options ask for.
        var extendedOperations: [String] {
            (postsFlush ? ["FLUSH"] : []) + (postsAtomicWrite ? ["ATOMIC WRITE"] : [])
        }
    }

    /// One finished RDMA WRITE or READ posted with an id.
    public struct WorkCompletion: Sendable, Hashable {
        /// The id given when posting.
        public let id: UInt64
        /// How it completed.
        public let status: QueuePair.Completion
    }

    /// The device (and protection domain) the queue pair lives on.
    public let device: RDMADevice
    /// The peer's address, for messages.
    public let peer: String
    /// What the peer sent with `rdma_accept` (client side) or `rdma_connect` (server side).
    public private(set) var peerPrivateData: [UInt8] = []

    let id: UnsafeMutablePointer<rdma_cm_id>
    private let events: CMEventChannel
    private let provider: IbverbsProvider
    /// Posts and completes the SENDs, WRITEs and READs: the layer QueuePair uses too.
    let sends: SendQueue
    let receiveCQ: CompletionQueue
    let options: Options
    let buffer: UnsafeMutableRawPointer
    let bufferRegistration: Registration
    let receiveLock = AnnotatedMutex(())
    /// Where the connection is in its life, in one atomic: what is closed, and what `deinit`
    /// still destroys, follow from it.
    let state = Atomic<ConnectionState>(.open)
    /// The extended view of the queue pair, for FLUSH and ATOMIC WRITE; nil unless
    /// ``Options/postsFlush`` or ``Options/postsAtomicWrite``.
    let extendedQueuePair: UnsafeMutablePointer<ibv_qp_ex>?

    /// Creates the CQs, the QP (on `device`'s PD) and the message pool for `id`, and posts the receives.
    init(id: UnsafeMutablePointer<rdma_cm_id>, events: CMEventChannel, device: RDMADevice,
         peer: String, options: Options) throws(DaxPinError) {
        guard let provider = device.ibverbs else {
            throw .deviceFailure(device: device.name, operation: "create a connection (not a libibverbs device)", errno: .notSupported)
        }
        if options.postsFlush || options.acceptsFlush, let refusal = RDMABuildFeatures.current.flushRefusal { throw refusal }
        if options.postsAtomicWrite, let refusal = RDMABuildFeatures.current.atomicWriteRefusal { throw refusal }
        guard let verbs = id.pointee.verbs, verbs == provider.context else {
            throw .connectionFailed(peer: peer, operation: "rdma_create_qp",
                                    reason: "the rdma_cm id is not on \(device.name)'s verbs context; open the device through the connection or listener")
        }
        self.id = id
        self.events = events
        self.device = device
        self.provider = provider
        self.peer = peer
        self.options = options
        let sendCQ = try CompletionQueue(context: verbs, depth: options.depth + 8, deviceName: device.name)
        sends = SendQueue(completionQueue: sendCQ, deviceName: device.name)
        receiveCQ = try CompletionQueue(context: verbs, depth: options.receiveSlots + 1, deviceName: device.name)
        var attributes = ibv_qp_init_attr()
        attributes.send_cq = sendCQ.cq
        attributes.recv_cq = receiveCQ.cq
        attributes.qp_type = IBV_QPT_RC
        attributes.sq_sig_all = 0
        attributes.cap.max_send_wr = UInt32(options.depth + 4)
        attributes.cap.max_recv_wr = UInt32(options.receiveSlots)
        attributes.cap.max_send_sge = 1
        attributes.cap.max_recv_sge = 1
        let bytes = (options.receiveSlots + 1) * options.messageSize
        let memory: UnsafeMutableRawPointer
        do throws(Errno) { memory = try Syscalls.allocateAligned(bytes, alignment: 4096) } catch {
            throw .deviceFailure(device: device.name, operation: "allocate the message pool", errno: error)
        }
        memset(memory, 0, bytes)
        switch provider.register(address: memory, length: bytes, access: [.localWrite], onDemand: false) {
        case .success(let registration): bufferRegistration = registration
        case .failure(let code):
            free(memory)
            throw .deviceFailure(device: device.name, operation: "ibv_reg_mr (message pool)", errno: code)
        }
        buffer = memory
        // Every stored property is set: a throw from here on runs `deinit`, which releases the
        // pool, the queue pair (if made) and the CQs once. The id stays the caller's to destroy.
        let extendedOperations = options.extendedOperations
        let extended: UnsafeMutablePointer<ibv_qp_ex>?
        do { extended = try Self.createQueuePair(id, pd: provider.pd, attributes, options: options) } catch {
            extendedQueuePair = nil
            abandon(queuePairMade: false)
            guard !extendedOperations.isEmpty, error == .invalidArgument || error == .notSupported else {
                throw .deviceFailure(device: device.name, operation: extendedOperations.isEmpty ? "rdma_create_qp" : "rdma_create_qp_ex",
                                     errno: error)
            }
            let asked = extendedOperations.joined(separator: " and ")
            throw .featureUnavailable(feature: "RDMA \(asked)", reason: "\(device.name) refused a queue pair that posts \(asked) (\(error.daxName)): the device, its provider or the kernel does not offer it")
        }
        extendedQueuePair = extended
        do {
            for slot in 0..<options.receiveSlots { try postReceive(slot: slot) }
        } catch {
            abandon(queuePairMade: true)
            throw error
        }
    }

    /// Creates the id's queue pair: an extended one that can post FLUSH and ATOMIC WRITE as
    /// `options` ask (its extended view is returned), a plain one otherwise (nil returned).
    private static func createQueuePair(_ id: UnsafeMutablePointer<rdma_cm_id>, pd: UnsafeMutablePointer<ibv_pd>,
                                        _ attributes: ibv_qp_init_attr,
                                        options: Options) throws(Errno) -> UnsafeMutablePointer<ibv_qp_ex>? {
        var attributes = attributes
        guard options.postsFlush || options.postsAtomicWrite else {
            try VerbsCalls.rdma_create_qp(id, pd, &attributes)
            return nil
        }
        var extended = ibv_qp_init_attr_ex()
        extended.send_cq = attributes.send_cq
        extended.recv_cq = attributes.recv_cq
        extended.qp_type = attributes.qp_type
        extended.sq_sig_all = attributes.sq_sig_all
        extended.cap = attributes.cap
        extended.pd = pd
        extended.comp_mask = IBV_QP_INIT_ATTR_PD.rawValue | IBV_QP_INIT_ATTR_SEND_OPS_FLAGS.rawValue
        var operations = IBV_QP_EX_WITH_RDMA_WRITE.rawValue | IBV_QP_EX_WITH_RDMA_READ.rawValue | IBV_QP_EX_WITH_SEND.rawValue
        if options.postsFlush { operations |= UInt32(DAXPIN_IBV_QP_EX_WITH_FLUSH) }
        if options.postsAtomicWrite { operations |= IBV_QP_EX_WITH_ATOMIC_WRITE.rawValue }
        extended.send_ops_flags = UInt64(operations)
        try VerbsCalls.rdma_create_qp_ex(id, &extended)
        guard let qp = id.pointee.qp else { throw Errno.ioError }
        return ibv_qp_to_qp_ex(qp)
    }

    /// Leaves the rdma_cm id to the caller of a failed `init` (and its queue pair to `deinit`,
    /// when made): nothing is disconnected, and the id is not destroyed twice.
    private func abandon(queuePairMade: Bool) {
        state.store(queuePairMade ? .abandoned : .abandonedBeforeQueuePair, ordering: .releasing)
    }

    deinit {
        disconnect()
        let final = state.load(ordering: .acquiring)
        if final.ownsQueuePair { VerbsCalls.rdma_destroy_qp(id) }
        if final.ownsID { VerbsCalls.rdma_destroy_id(id) }
        _ = provider.deregister(bufferRegistration)
        free(buffer)
        // The CQs, then the event channel and the device, are released after this body.
    }

    // MARK: Connecting (client side)

    /// Resolves `address` (`rdma_resolve_addr`, `rdma_resolve_route`), creates the queue pair
    /// on the device the route goes through and connects (`rdma_connect`) with `privateData`
    /// (at most 56 bytes). The connection's ``device`` is that device; pass `device` to share
    /// one protection domain between several connections on it. `source`, a local IPv4
    /// address, is passed to `rdma_resolve_addr` as the source: the connection then leaves
    /// through the RDMA device that owns that address (without it, the route decides; to an
    /// address of this host that is the loopback, i.e. the server's own device).
    /// - Throws: `.connectionRejected` with the server's reason, `.connectionFailed`.
    public static func connect(to address: String, port: UInt16, source: String? = nil, privateData: [UInt8] = [],
                               device: RDMADevice? = nil, options: Options = Options(),
                               timeout: Duration = .seconds(10)) throws(DaxPinError) -> RDMAConnection {
        let peer = "\(address):\(port)"
        let events = try CMEventChannel(peer: peer)
        var raw: UnsafeMutablePointer<rdma_cm_id>?
        do throws(Errno) { try VerbsCalls.rdma_create_id(events.channel, &raw, nil, RDMA_PS_TCP) } catch {
            throw .connectionFailed(peer: peer, operation: "rdma_create_id", reason: errnoText(error.rawValue))
        }
        guard let id = raw else { throw .connectionFailed(peer: peer, operation: "rdma_create_id", reason: "no id") }
        var connection: RDMAConnection?
        do throws(DaxPinError) {
            let milliseconds = Int32(clamping: timeout.components.seconds * 1000)
            let resolved: Errno? = try withSocketAddress(address, port: port, peer: peer) { destination throws(DaxPinError) in
                guard let source else { return Errno.of { () throws(Errno) in try VerbsCalls.rdma_resolve_addr(id, nil, destination, milliseconds) } }
                return try withSocketAddress(source, port: 0, peer: peer) { from in
                    Errno.of { () throws(Errno) in try VerbsCalls.rdma_resolve_addr(id, from, destination, milliseconds) }
                }
            }
            if let resolved {
                throw .connectionFailed(peer: peer, operation: "rdma_resolve_addr", reason: errnoText(resolved.rawValue))
            }
            _ = try events.expect(RDMA_CM_EVENT_ADDR_RESOLVED, peer: peer, operation: "rdma_resolve_addr", timeout: timeout)
            do throws(Errno) { try VerbsCalls.rdma_resolve_route(id, milliseconds) } catch {
                throw .connectionFailed(peer: peer, operation: "rdma_resolve_route", reason: errnoText(error.rawValue))
            }
            _ = try events.expect(RDMA_CM_EVENT_ROUTE_RESOLVED, peer: peer, operation: "rdma_resolve_route", timeout: timeout)
            guard let verbs = id.pointee.verbs else {
                throw .connectionFailed(peer: peer, operation: "rdma_resolve_route", reason: "no RDMA device on the route")
            }
            let chosen: RDMADevice
            if let device { chosen = device } else { chosen = RDMADevice(provider: try IbverbsProvider(adopting: verbs)) }
            let made = try RDMAConnection(id: id, events: events, device: chosen, peer: peer, options: options)
            connection = made
            let refused = Self.withConnectionParameters(privateData, responderResources: 16, initiatorDepth: 16) { parameters in
                Errno.of { () throws(Errno) in try VerbsCalls.rdma_connect(id, parameters) }
            }
            if let refused {
                throw .connectionFailed(peer: peer, operation: "rdma_connect", reason: errnoText(refused.rawValue))
            }
            let established = try events.expect(RDMA_CM_EVENT_ESTABLISHED, peer: peer, operation: "rdma_connect", timeout: timeout)
            made.peerPrivateData = established.privateData
            return made
        } catch {
            if let connection { connection.markClosed() } else { VerbsCalls.rdma_destroy_id(id) }
            throw error
        }
    }

    /// Server side: accepts with `privateData` and waits for the connection to be established.
    func accept(privateData: [UInt8], request: CMEventChannel.Event, timeout: Duration) throws(DaxPinError) {
        peerPrivateData = request.privateData
        let (responderResources, initiatorDepth) = (min(request.initiatorDepth, 16), min(request.responderResources, 16))
        if options.acceptsFlush {
            try moveToReadyToSendAcceptingFlush(responderResources: responderResources, initiatorDepth: initiatorDepth)
        }
        let refused = Self.withConnectionParameters(privateData, responderResources: responderResources, initiatorDepth: initiatorDepth) { parameters in
            guard options.acceptsFlush, let qp = id.pointee.qp else {
                return Errno.of { () throws(Errno) in try VerbsCalls.rdma_accept(id, parameters) }
            }
            // rdma_accept would reset the queue pair's access (INIT again, then RTR, RTS) before
            // answering; with the queue pair detached it only answers, naming it by number.
            parameters.pointee.qp_num = qp.pointee.qp_num
            id.pointee.qp = nil
            defer { id.pointee.qp = qp }
            return Errno.of { () throws(Errno) in try VerbsCalls.rdma_accept(id, parameters) }
        }
        if let refused {
            throw .connectionFailed(peer: peer, operation: "rdma_accept", reason: errnoText(refused.rawValue))
        }
        _ = try events.expect(RDMA_CM_EVENT_ESTABLISHED, peer: peer, operation: "rdma_accept", timeout: timeout)
    }

    /// The `rdma_conn_param` of both sides (`rdma_connect`, `rdma_accept`): `privateData`,
    /// the read depths, and the largest retry budgets (ODP faults are answered with RNR NAKs).
    private static func withConnectionParameters(_ privateData: [UInt8], responderResources: UInt8, initiatorDepth: UInt8,
                                                 _ body: (UnsafeMutablePointer<rdma_conn_param>) -> Errno?) -> Errno? {
        privateData.withUnsafeBytes { data in
            var parameters = rdma_conn_param()
            parameters.private_data = data.baseAddress
            parameters.private_data_len = UInt8(clamping: data.count)
            parameters.responder_resources = responderResources
            parameters.initiator_depth = initiatorDepth
            parameters.retry_count = 7
            parameters.rnr_retry_count = 7
            return body(&parameters)
        }
    }

    // MARK: State

    /// True once either side disconnected (an `RDMA_CM_EVENT_DISCONNECTED` arrived, or
    /// ``disconnect()`` was called). Checks the connection's event channel without waiting.
    public var isClosed: Bool {
        if state.load(ordering: .acquiring) != .open { return true }
        while let event = events.next(timeout: .zero) {
            if event.type == RDMA_CM_EVENT_DISCONNECTED || event.type == RDMA_CM_EVENT_DEVICE_REMOVAL
                || event.type == RDMA_CM_EVENT_TIMEWAIT_EXIT {
                markClosed()
                VerbsCalls.rdma_disconnect(id)
            }
        }
        return state.load(ordering: .acquiring) != .open
    }

    /// Moves the queue pair to the error state: in-flight and later work is flushed, so
    /// no RDMA on it touches memory after this returns. Safe from any thread, any number of times.
    public func moveToError() {
        var attributes = ibv_qp_attr()
        attributes.qp_state = IBV_QPS_ERR
        if let qp = id.pointee.qp { try? VerbsCalls.ibv_modify_qp(qp, &attributes, Int32(bitPattern: IBV_QP_STATE.rawValue)) }
    }

    /// Disconnects (`rdma_disconnect`): the queue pair goes to the error state and the peer
    /// gets a disconnect event. Idempotent.
    public func disconnect() {
        guard markClosed() else { return }
        VerbsCalls.rdma_disconnect(id)
    }

    /// Moves an open connection to closed; false if it was not open (closed or abandoned).
    @discardableResult
    func markClosed() -> Bool {
        state.compareExchange(expected: .open, desired: .closed, ordering: .acquiringAndReleasing).exchanged
    }
}

/// An ``RDMAConnection``'s life: open until either side disconnects; abandoned when its `init`
/// failed and the caller keeps the rdma_cm id (with or without a queue pair made on it).
enum ConnectionState: UInt8, AtomicRepresentable {
    case open, closed, abandoned, abandonedBeforeQueuePair

    /// Whether `deinit` destroys the queue pair.
    var ownsQueuePair: Bool { self != .abandonedBeforeQueuePair }
    /// Whether `deinit` destroys the rdma_cm id (an abandoned one is the caller's).
    var ownsID: Bool { self == .open || self == .closed }
}
