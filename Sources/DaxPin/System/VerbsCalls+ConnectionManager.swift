import CRdmacm
import Glibc
import LibIbverbs

// The librdmacm calls of ``VerbsCalls``. librdmacm reports every failure the same way, -1 (or
// nil) with errno set: each fallible wrapper throws that `Errno` (``Syscalls/valueOrErrno(_:retryOnInterrupt:_:)``).
extension VerbsCalls {
    /// `rdma_create_event_channel`.
    static func rdma_create_event_channel() throws(Errno) -> UnsafeMutablePointer<rdma_event_channel> {
        try Syscalls.pointerOrErrno(.rdmaCreateEventChannel) { CRdmacm.rdma_create_event_channel() }
    }

    /// `rdma_destroy_event_channel`.
    static func rdma_destroy_event_channel(_ channel: UnsafeMutablePointer<rdma_event_channel>) {
        CRdmacm.rdma_destroy_event_channel(channel)
    }

    /// `rdma_get_cm_event`.
    static func rdma_get_cm_event(_ channel: UnsafeMutablePointer<rdma_event_channel>,
                                  _ event: UnsafeMutablePointer<UnsafeMutablePointer<rdma_cm_event>?>) throws(Errno) {
        try Syscalls.nothingOrErrno(.rdmaGetEvent) { CRdmacm.rdma_get_cm_event(channel, event) }
    }

    /// `rdma_ack_cm_event`.
    @discardableResult
    static func rdma_ack_cm_event(_ event: UnsafeMutablePointer<rdma_cm_event>) -> Int32 { CRdmacm.rdma_ack_cm_event(event) }

    /// `rdma_event_str`.
    static func rdma_event_str(_ type: rdma_cm_event_type) -> UnsafePointer<CChar>! { CRdmacm.rdma_event_str(type) }

    /// `rdma_create_id`.
    static func rdma_create_id(_ channel: UnsafeMutablePointer<rdma_event_channel>?, _ id: UnsafeMutablePointer<UnsafeMutablePointer<rdma_cm_id>?>,
                               _ context: UnsafeMutableRawPointer?, _ space: rdma_port_space) throws(Errno) {
        try Syscalls.nothingOrErrno(.rdmaCreateID) { CRdmacm.rdma_create_id(channel, id, context, space) }
    }

    /// `rdma_destroy_id`.
    @discardableResult
    static func rdma_destroy_id(_ id: UnsafeMutablePointer<rdma_cm_id>) -> Int32 { CRdmacm.rdma_destroy_id(id) }

    /// `rdma_migrate_id`.
    static func rdma_migrate_id(_ id: UnsafeMutablePointer<rdma_cm_id>, _ channel: UnsafeMutablePointer<rdma_event_channel>?) throws(Errno) {
        try Syscalls.nothingOrErrno(.rdmaMigrateID) { CRdmacm.rdma_migrate_id(id, channel) }
    }

    /// `rdma_bind_addr`.
    static func rdma_bind_addr(_ id: UnsafeMutablePointer<rdma_cm_id>, _ address: UnsafeMutablePointer<sockaddr>) throws(Errno) {
        try Syscalls.nothingOrErrno(.rdmaBind) { CRdmacm.rdma_bind_addr(id, address) }
    }

    /// `rdma_listen`.
    static func rdma_listen(_ id: UnsafeMutablePointer<rdma_cm_id>, _ backlog: Int32) throws(Errno) {
        try Syscalls.nothingOrErrno(.rdmaListen) { CRdmacm.rdma_listen(id, backlog) }
    }

    /// `rdma_get_src_port` (network byte order).
    static func rdma_get_src_port(_ id: UnsafeMutablePointer<rdma_cm_id>) -> UInt16 { CRdmacm.rdma_get_src_port(id) }

    /// `rdma_get_peer_addr` (static inline: the id's destination address).
    static func rdma_get_peer_addr(_ id: UnsafeMutablePointer<rdma_cm_id>) -> UnsafeMutablePointer<sockaddr>! {
        CRdmacm.rdma_get_peer_addr(id)
    }

    /// `rdma_resolve_addr`.
    static func rdma_resolve_addr(_ id: UnsafeMutablePointer<rdma_cm_id>, _ source: UnsafeMutablePointer<sockaddr>?,
                                  _ destination: UnsafeMutablePointer<sockaddr>, _ milliseconds: Int32) throws(Errno) {
        try Syscalls.nothingOrErrno(.rdmaResolveAddress) { CRdmacm.rdma_resolve_addr(id, source, destination, milliseconds) }
    }

    /// `rdma_resolve_route`.
    static func rdma_resolve_route(_ id: UnsafeMutablePointer<rdma_cm_id>, _ milliseconds: Int32) throws(Errno) {
        try Syscalls.nothingOrErrno(.rdmaResolveRoute) { CRdmacm.rdma_resolve_route(id, milliseconds) }
    }

    /// `rdma_create_qp`.
    static func rdma_create_qp(_ id: UnsafeMutablePointer<rdma_cm_id>, _ pd: UnsafeMutablePointer<ibv_pd>?,
                               _ attributes: UnsafeMutablePointer<ibv_qp_init_attr>) throws(Errno) {
        try Syscalls.nothingOrErrno(.rdmaCreateQueuePair) { CRdmacm.rdma_create_qp(id, pd, attributes) }
    }

    /// `rdma_create_qp_ex` (an extended queue pair, for RDMA FLUSH). (the same
    /// fault point as `rdma_create_qp`).
    static func rdma_create_qp_ex(_ id: UnsafeMutablePointer<rdma_cm_id>,
                                  _ attributes: UnsafeMutablePointer<ibv_qp_init_attr_ex>) throws(Errno) {
        try Syscalls.nothingOrErrno(.rdmaCreateQueuePair) { CRdmacm.rdma_create_qp_ex(id, attributes) }
    }

    /// `rdma_init_qp_attr`: the attributes rdma_cm would use to move the id's queue pair to
    /// `attributes.qp_state`.
    static func rdma_init_qp_attr(_ id: UnsafeMutablePointer<rdma_cm_id>, _ attributes: UnsafeMutablePointer<ibv_qp_attr>,
                                  _ mask: UnsafeMutablePointer<Int32>) throws(Errno) {
        try Syscalls.nothingOrErrno(.rdmaInitQueuePairAttributes) { CRdmacm.rdma_init_qp_attr(id, attributes, mask) }
    }

    /// `rdma_destroy_qp`.
    static func rdma_destroy_qp(_ id: UnsafeMutablePointer<rdma_cm_id>) { CRdmacm.rdma_destroy_qp(id) }

    /// `rdma_connect`.
    static func rdma_connect(_ id: UnsafeMutablePointer<rdma_cm_id>, _ parameters: UnsafeMutablePointer<rdma_conn_param>?) throws(Errno) {
        try Syscalls.nothingOrErrno(.rdmaConnect) { CRdmacm.rdma_connect(id, parameters) }
    }

    /// `rdma_accept`.
    static func rdma_accept(_ id: UnsafeMutablePointer<rdma_cm_id>, _ parameters: UnsafeMutablePointer<rdma_conn_param>?) throws(Errno) {
        try Syscalls.nothingOrErrno(.rdmaAccept) { CRdmacm.rdma_accept(id, parameters) }
    }

    /// `rdma_reject`.
    @discardableResult
    static func rdma_reject(_ id: UnsafeMutablePointer<rdma_cm_id>, _ data: UnsafeRawPointer?, _ length: UInt8) -> Int32 {
        CRdmacm.rdma_reject(id, data, length)
    }

    /// `rdma_disconnect`.
    @discardableResult
    static func rdma_disconnect(_ id: UnsafeMutablePointer<rdma_cm_id>) -> Int32 { CRdmacm.rdma_disconnect(id) }
}
