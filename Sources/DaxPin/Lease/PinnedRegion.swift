import CLease
import Glibc
import SystemPackage

/// A mapped, populated and registered range of a leased file, lent by
/// ``LayoutLease/withRegion(_:_:)``. It owns its ``MemoryRegion``; both live inside the
/// lease, so neither can outlive it, and neither can be copied.
///
/// Revocation and ``LayoutLease/unpin(_:)`` wait for a running byte-access closure before they
/// deregister and unmap, and after revocation access throws ``DaxPinError/revoked(path:)``
/// instead of touching unmapped memory. The lease's bookkeeping lock is not held meanwhile, so
/// a closure may call back into its lease (another region, the trace, the state). Keep the
/// closures short: a lease break waits for them.
public struct PinnedRegion: ~Copyable {
    /// Identifies a region under its lease.
    public struct ID: Sendable, Hashable, CustomStringConvertible {
        /// The number the lease gave the region (1, 2, ...), as in revocation traces.
        public let rawValue: Int
        /// Human-readable text for messages and logs.
        public var description: String { "region \(rawValue)" }
    }

    let core: LeaseCore
    let resources: RegionInfo

    /// The registration the NIC uses for this region.
    public let memoryRegion: MemoryRegion

    init(core: LeaseCore, resources: RegionInfo) {
        self.core = core
        self.resources = resources
        self.memoryRegion = MemoryRegion(resources.registration, device: resources.device.name)
    }

    /// This region's identifier.
    public var id: ID { ID(rawValue: resources.id) }
    /// Offset of the region in the file.
    public var offset: Int { resources.offset }
    /// Length of the region in bytes.
    public var length: Int { resources.length }
    /// The strategy chosen at pin time.
    public var strategy: Strategy { resources.strategy }

    /// Reads the registered bytes (the file's pages, or the bounce buffer of a staged region).
    ///
    /// Typed throws when `body` throws nothing or ``DaxPinError``: a closure that calls a
    /// throwing function is inferred as throwing `any Error` (Swift 6 without the
    /// `FullTypedThrows` feature) and picks the general overload, generic over the closure's
    /// error `E`, whose error is untyped (the lease's ``DaxPinError`` or the closure's `E`);
    /// declare it `{ bytes throws(DaxPinError) in ... }` to keep this one.
    /// - Throws: `.revoked` after a break or release, `.regionNotFound` after `unpin`, or what
    ///   `body` throws.
    public func withBytes<R>(_ body: (RawSpan) throws(DaxPinError) -> R) throws(DaxPinError) -> R {
        try core.access(resources.id) { (region) throws(DaxPinError) -> R in
            try body(RawSpan(_unsafeBytes: UnsafeRawBufferPointer(start: region.registered, count: region.length)))
        }.get()
    }

    /// Reads the registered bytes, for a `body` that throws its own error `E`: then either a
    /// ``DaxPinError`` or an `E` can come out, so the error is untyped.
    @_documentation(visibility: internal)  // DocC cannot tell the overloads apart in a link
    public func withBytes<R, E: Error>(_ body: (RawSpan) throws(E) -> R) throws -> R {
        try core.access(resources.id) { (region) throws(E) -> R in
            try body(RawSpan(_unsafeBytes: UnsafeRawBufferPointer(start: region.registered, count: region.length)))
        }.get()
    }

    /// Writes the registered bytes. Read-only leases throw `.systemCall(EACCES)`.
    ///
    /// Typed throws when `body` throws nothing or ``DaxPinError``; a closure that calls a
    /// throwing function must say `throws(DaxPinError)` to keep it, or it picks the general
    /// overload (generic over the closure's error, untyped), as for reading.
    /// - Throws: `.systemCall(EACCES)` on a read-only lease, `.revoked` after a break or
    ///   release, `.regionNotFound` after `unpin`, or what `body` throws.
    public func withMutableBytes<R>(_ body: (inout MutableRawSpan) throws(DaxPinError) -> R) throws(DaxPinError) -> R {
        try mutableAccess(body).get()
    }

    /// Writes the registered bytes, for a `body` that throws its own error `E` (the error is
    /// then untyped: a ``DaxPinError`` or an `E`).
    @_documentation(visibility: internal)  // DocC cannot tell the overloads apart in a link
    public func withMutableBytes<R, E: Error>(_ body: (inout MutableRawSpan) throws(E) -> R) throws -> R {
        try mutableAccess(body).get()
    }

    private func mutableAccess<R, E: Error>(_ body: (inout MutableRawSpan) throws(E) -> R) throws(DaxPinError) -> Result<R, E> {
        guard core.access == .readWrite else {
            throw .systemCall(operation: "write to a read-only pin", path: core.path, errno: .permissionDenied)
        }
        return try core.access(resources.id) { (region) throws(E) -> R in
            var span = MutableRawSpan(_unsafeBytes: UnsafeMutableRawBufferPointer(start: region.registered, count: region.length))
            return try body(&span)
        }
    }

    /// Makes `length` bytes at `offset` (relative to the region) durable in the file: a
    /// cache-line flush on DAX memory mapped with MAP_SYNC, `msync(MS_SYNC)` otherwise. A staged
    /// region's peers write into its bounce buffer, so for it this is ``writeBack(offset:length:)``:
    /// the bytes are copied back to the file first.
    public func persist(offset: Int = 0, length: Int? = nil) throws(DaxPinError) {
        if resources.strategy == .staged { return try writeBack(offset: offset, length: length) }
        let length = length ?? (resources.length - offset)
        try checkRange(offset, length)
        try core.access(resources.id) { (region) throws(DaxPinError) in
            try Self.persistFile(region, offset: offset, length: length, path: core.path)
        }.get()
    }

    /// Staged regions: copies file bytes into the registered bounce buffer.
    public func stageIn(offset: Int = 0, length: Int? = nil) throws(DaxPinError) {
        try copy(offset: offset, length: length, toFile: false)
    }

    /// Staged regions: copies the bounce buffer back to the file and makes it durable.
    public func writeBack(offset: Int = 0, length: Int? = nil) throws(DaxPinError) {
        try copy(offset: offset, length: length, toFile: true)
    }

    private func copy(offset: Int, length: Int?, toFile: Bool) throws(DaxPinError) {
        guard resources.strategy == .staged else {
            throw .wrongStrategy(operation: toFile ? "writeBack" : "stageIn", strategy: resources.strategy)
        }
        let length = length ?? (resources.length - offset)
        try checkRange(offset, length)
        try core.access(resources.id) { (region) throws(DaxPinError) in
            let file = region.mapping + offset, bounce = region.registered + offset
            if toFile {
                guard core.access == .readWrite else {
                    throw .systemCall(operation: "writeBack on a read-only pin", path: core.path, errno: .permissionDenied)
                }
                file.copyMemory(from: bounce, byteCount: length)
                try Self.persistFile(region, offset: offset, length: length, path: core.path)
            } else {
                bounce.copyMemory(from: file, byteCount: length)
            }
        }.get()
    }

    private func checkRange(_ offset: Int, _ length: Int) throws(DaxPinError) {
        guard offset >= 0, length >= 0, offset <= resources.length - length else {
            throw .invalidRange(path: core.path, offset: offset, length: length, problem: .beyondEnd(size: resources.length))
        }
    }

    private static func persistFile(_ region: RegionInfo, offset: Int, length: Int, path: String) throws(DaxPinError) {
        guard length > 0 else { return }
        if region.flushIsDurable, daxpin_flush_cache(region.mapping + offset, length) == 0 { return }
        let page = SystemPage.size
        let start = offset / page * page
        do throws(Errno) { try Syscalls.msync(region.mapping + start, offset + length - start, MS_SYNC) } catch {
            throw .systemCall(operation: "msync", path: path, errno: error)
        }
    }
}

/// A memory registration (`ibv_mr`) owned by its ``PinnedRegion``.
public struct MemoryRegion: ~Copyable {
    /// What a peer needs to address this region with one-sided RDMA: a plain value to send.
    public struct RemoteAccess: Sendable, Hashable, Codable {
        /// The registered virtual address.
        public let address: UInt64
        /// Registered length in bytes.
        public let length: Int
        /// The remote key peers put in RDMA READ/WRITE work requests.
        public let rkey: UInt32

        /// The keys a peer received (for example in rdma_cm private data).
        public init(address: UInt64, length: Int, rkey: UInt32) {
            self.address = address; self.length = length; self.rkey = rkey
        }
    }

    let registration: Registration
    /// The device the registration lives on.
    public let deviceName: String

    init(_ registration: Registration, device: String) {
        self.registration = registration
        self.deviceName = device
    }

    /// Address, length and rkey for peers.
    public var remote: RemoteAccess {
        RemoteAccess(address: registration.address, length: registration.length, rkey: registration.remoteKey)
    }

    /// The local key for scatter/gather entries of local work requests.
    public var localKey: UInt32 { registration.localKey }
}
