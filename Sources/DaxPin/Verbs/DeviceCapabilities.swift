/// What an RDMA device can do, as far as the strategy choice is concerned.
public struct DeviceCapabilities: Sendable, Hashable {
    /// On-Demand Paging support for one transport (`ibv_odp_caps.per_transport_caps`).
    public struct ODPSupport: Sendable, Hashable {
        /// Whether SEND, RECV, RDMA WRITE, RDMA READ and atomics fault pages in on demand.
        public var send = false, receive = false, write = false, read = false, atomic = false
        /// Whether RDMA WRITE and READ both fault pages in on demand.
        public var readWrite: Bool { write && read }
        /// Support flags, all off by default.
        public init(send: Bool = false, receive: Bool = false, write: Bool = false, read: Bool = false, atomic: Bool = false) {
            self.send = send; self.receive = receive; self.write = write; self.read = read; self.atomic = atomic
        }
    }

    /// Whether the device offers On-Demand Paging at all (`IBV_ODP_SUPPORT`).
    public var odp: Bool
    /// ODP per transport: reliable connected, unreliable connected, unreliable datagram.
    public var odpRC: ODPSupport, odpUC: ODPSupport, odpUD: ODPSupport
    /// The largest memory registration the device accepts, in bytes.
    public var maxMRSize: UInt64
    /// The number of memory regions the device supports.
    public var maxMRCount: Int

    /// Capabilities; the defaults describe a device without ODP and without limits.
    public init(odp: Bool = false, odpRC: ODPSupport = .init(), odpUC: ODPSupport = .init(),
                odpUD: ODPSupport = .init(), maxMRSize: UInt64 = .max, maxMRCount: Int = .max) {
        self.odp = odp; self.odpRC = odpRC; self.odpUC = odpUC; self.odpUD = odpUD
        self.maxMRSize = maxMRSize; self.maxMRCount = maxMRCount
    }

    /// Whether RC queue pairs can use an ODP registration for the given access.
    public func odpUsable(for access: Access) -> Bool {
        guard odp else { return false }
        return access == .readOnly ? odpRC.read : odpRC.readWrite
    }
}
