import CRdmacm
import Glibc

/// Listens for rdma_cm connections on an IPv4 address (`rdma_bind_addr`, `rdma_listen`).
///
/// Binding to a concrete address gives the listener its RDMA device: ``device`` adopts the
/// verbs context librdmacm opened for it and allocates a protection domain there. Register
/// exported memory on ``device`` (`lease.pin(on: listener.device)`); every accepted
/// connection's queue pair is created on the same protection domain, so its peers can use
/// those registrations.
public final class RDMAListener: @unchecked Sendable {
    /// What to answer a connection request, given the private data the client sent.
    public enum Decision: Sendable {
        /// Accept and send `privateData` (at most 196 bytes) with `rdma_accept`.
        case accept(privateData: [UInt8])
        /// Refuse and send `reason` (at most 148 bytes) with `rdma_reject`.
        case reject(reason: [UInt8])
    }

    /// The device the listener is bound to; connections and exported memory live on it.
    public let device: RDMADevice
    /// The bound address.
    public let address: String
    /// The bound port (the kernel's choice when 0 was asked for).
    public let port: UInt16
    private let events: CMEventChannel
    private let id: UnsafeMutablePointer<rdma_cm_id>

    /// Binds to `address`:`port` (0: any free port) and listens.
    /// - Throws: `.connectionFailed` naming the failing rdma_cm call, for example when no RDMA
    ///   device serves `address`.
    public init(address: String, port: UInt16 = 0, backlog: Int32 = 16) throws(DaxPinError) {
        let peer = "\(address):\(port)"
        let events = try CMEventChannel(peer: peer)
        var raw: UnsafeMutablePointer<rdma_cm_id>?
        do throws(Errno) { try VerbsCalls.rdma_create_id(events.channel, &raw, nil, RDMA_PS_TCP) } catch {
            throw .connectionFailed(peer: peer, operation: "rdma_create_id", reason: errnoText(error.rawValue))
        }
        guard let id = raw else { throw .connectionFailed(peer: peer, operation: "rdma_create_id", reason: "no id") }
        do throws(DaxPinError) {
            let refused = try withSocketAddress(address, port: port, peer: peer) { socketAddress in
                Errno.of { () throws(Errno) in try VerbsCalls.rdma_bind_addr(id, socketAddress) }
            }
            if let refused {
                throw .connectionFailed(peer: peer, operation: "rdma_bind_addr", reason: errnoText(refused.rawValue))
            }
            guard let verbs = id.pointee.verbs else {
                throw .connectionFailed(peer: peer, operation: "rdma_bind_addr",
                                        reason: "no RDMA device serves \(address); bind to the address of an RDMA interface")
            }
            do throws(Errno) { try VerbsCalls.rdma_listen(id, backlog) } catch {
                throw .connectionFailed(peer: peer, operation: "rdma_listen", reason: errnoText(error.rawValue))
            }
            self.device = RDMADevice(provider: try IbverbsProvider(adopting: verbs))
        } catch {
            VerbsCalls.rdma_destroy_id(id)
            throw error
        }
        self.events = events
        self.id = id
        self.address = address
        self.port = UInt16(bigEndian: VerbsCalls.rdma_get_src_port(id))
    }

    deinit { VerbsCalls.rdma_destroy_id(id) }

    /// Waits up to `timeout` for one connection request and answers it with `decide`.
    /// An accepted connection gets its own event channel (`rdma_migrate_id`) and queue pair.
    /// - Returns: The established connection, or nil when no request came, it was rejected,
    ///   or the client went away before the connection was established.
    public func accept(timeout: Duration, options: RDMAConnection.Options = RDMAConnection.Options(),
                       establishTimeout: Duration = .seconds(10),
                       decide: ([UInt8]) -> Decision) throws(DaxPinError) -> RDMAConnection? {
        guard let request = events.next(timeout: timeout) else { return nil }
        guard request.type == RDMA_CM_EVENT_CONNECT_REQUEST, let child = request.id else { return nil }
        var peer = "client"
        if let address = VerbsCalls.rdma_get_peer_addr(child), address.pointee.sa_family == sa_family_t(AF_INET) {
            address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { inet in
                peer = "\(Syscalls.formatIPv4(inet.pointee.sin_addr)):\(UInt16(bigEndian: inet.pointee.sin_port))"
            }
        }
        switch decide(request.privateData) {
        case .reject(let reason):
            _ = reason.withUnsafeBytes { VerbsCalls.rdma_reject(child, $0.baseAddress, UInt8(clamping: $0.count)) }
            VerbsCalls.rdma_destroy_id(child)
            return nil
        case .accept(let privateData):
            let channel = try CMEventChannel(peer: peer)
            do throws(Errno) { try VerbsCalls.rdma_migrate_id(child, channel.channel) } catch {
                VerbsCalls.rdma_reject(child, nil, 0)
                VerbsCalls.rdma_destroy_id(child)
                throw .connectionFailed(peer: peer, operation: "rdma_migrate_id", reason: errnoText(error.rawValue))
            }
            let connection: RDMAConnection
            do {
                connection = try RDMAConnection(id: child, events: channel, device: device, peer: peer, options: options)
            } catch {
                VerbsCalls.rdma_reject(child, nil, 0)
                VerbsCalls.rdma_destroy_id(child)
                throw error
            }
            do {
                try connection.accept(privateData: privateData, request: request, timeout: establishTimeout)
            } catch {
                return nil  // the connection's deinit disconnects and destroys the id
            }
            return connection
        }
    }
}
