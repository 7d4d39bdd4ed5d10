import CRdmacm
import Glibc

/// An rdma_cm event channel (`rdma_create_event_channel`) read with a timeout: its
/// descriptor is non-blocking and waited on with `poll(2)`.
final class CMEventChannel: @unchecked Sendable {
    let channel: UnsafeMutablePointer<rdma_event_channel>

    /// One event, copied out and already acknowledged (`rdma_ack_cm_event`).
    struct Event {
        let type: rdma_cm_event_type
        let id: UnsafeMutablePointer<rdma_cm_id>?
        let status: Int32
        let privateData: [UInt8]
        let responderResources: UInt8
        let initiatorDepth: UInt8
        var name: String { String(cString: VerbsCalls.rdma_event_str(type)) }
    }

    init(peer: String) throws(DaxPinError) {
        let channel: UnsafeMutablePointer<rdma_event_channel>
        do throws(Errno) { channel = try VerbsCalls.rdma_create_event_channel() } catch {
            throw .connectionFailed(peer: peer, operation: "rdma_create_event_channel", reason: errnoText(error.rawValue))
        }
        // Blocking, the event loop below would wait in rdma_get_cm_event past every timeout.
        do throws(Errno) { try Syscalls.setNonBlocking(channel.pointee.fd) } catch {
            VerbsCalls.rdma_destroy_event_channel(channel)
            throw .connectionFailed(peer: peer, operation: "set the event channel non-blocking", reason: errnoText(error.rawValue))
        }
        self.channel = channel
    }

    deinit { VerbsCalls.rdma_destroy_event_channel(channel) }

    /// The next event, or nil when none arrives within `timeout`.
    func next(timeout: Duration) -> Event? {
        let deadline = ContinuousClock.now + timeout
        while true {
            var raw: UnsafeMutablePointer<rdma_cm_event>?
            if (try? VerbsCalls.rdma_get_cm_event(channel, &raw)) != nil, let event = raw {
                let conn = event.pointee.param.conn
                let data: [UInt8] = conn.private_data.map {
                    Array(UnsafeRawBufferPointer(start: $0, count: Int(conn.private_data_len)))
                } ?? []
                let copy = Event(type: event.pointee.event, id: event.pointee.id, status: event.pointee.status,
                                 privateData: data, responderResources: conn.responder_resources,
                                 initiatorDepth: conn.initiator_depth)
                VerbsCalls.rdma_ack_cm_event(event)
                return copy
            }
            let left = ContinuousClock.now.duration(to: deadline)
            if left <= .zero { return nil }
            var descriptor = pollfd(fd: channel.pointee.fd, events: Int16(POLLIN), revents: 0)
            let milliseconds = max(1, Int32(clamping: left.wholeMilliseconds))
            _ = try? Syscalls.poll(&descriptor, milliseconds)
        }
    }

    /// Waits for `expected`; any other event (or none in time) is a failure naming what came.
    func expect(_ expected: rdma_cm_event_type, peer: String, operation: String, timeout: Duration) throws(DaxPinError) -> Event {
        guard let event = next(timeout: timeout) else {
            throw .connectionFailed(peer: peer, operation: operation, reason: "no answer within \(timeout)")
        }
        if event.type == RDMA_CM_EVENT_REJECTED {
            throw .connectionRejected(peer: peer, reason: event.privateData)
        }
        guard event.type == expected else {
            throw .connectionFailed(peer: peer, operation: operation, reason: "\(event.name) (status \(event.status))")
        }
        return event
    }
}

/// An IPv4 socket address for rdma_cm calls.
func withSocketAddress<R>(_ address: String, port: UInt16, peer: String,
                          _ body: (UnsafeMutablePointer<sockaddr>) throws(DaxPinError) -> R) throws(DaxPinError) -> R {
    var socketAddress = sockaddr_in()
    socketAddress.sin_family = sa_family_t(AF_INET)
    socketAddress.sin_port = port.bigEndian
    guard let parsed = Syscalls.parseIPv4(address) else {
        throw .connectionFailed(peer: peer, operation: "parse address", reason: "\(address) is not an IPv4 address")
    }
    socketAddress.sin_addr = parsed
    return try withUnsafeMutablePointer(to: &socketAddress) { (pointer) throws(DaxPinError) -> R in
        try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (address) throws(DaxPinError) -> R in try body(address) }
    }
}
