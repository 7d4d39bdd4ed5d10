import SystemPackage

/// A lease on a file (or device-dax instance) that owns every region pinned under it.
///
/// Opening a `LayoutLease` opens the path, finds out what memory backs it and takes the
/// strongest lease the kernel offers: a layout lease if the kernel has one, else a write
/// lease (read-write) or a read lease (read-only) on the descriptor that maps the file.
/// Regions are pinned with ``pin(offset:length:on:policy:remoteAtomics:remoteFlush:)`` and reached
/// through ``withRegion(_:_:)``; they cannot outlive the lease because they live inside it.
///
/// When another process truncates, punches a hole in or opens the file, the kernel breaks
/// the lease and DaxPin revokes, in this order: the quiesce handler (bounded by its budget),
/// queue pairs to error, every MR deregistered, every region unmapped, `F_UNLCK`, close.
/// ``release()`` and `deinit` tear down in the same order. Afterwards every access
/// throws ``DaxPinError/revoked(path:)``.
///
/// ```swift
/// var lease = try LayoutLease(path: "/dev/shm/data", access: .readWrite)
/// let id = try lease.pin(offset: 0, length: 1 << 20, on: device)
/// let peerKeys = try lease.withRegion(id) { $0.memoryRegion.remote }
/// // ... hand peerKeys to a peer; it writes with RDMA WRITE ...
/// let trace = lease.release()
/// ```
public struct LayoutLease: ~Copyable {
    let core: LeaseCore

    /// Opens `path` and takes a lease for `access`.
    /// - Throws: `.fileNotFound`, `.unsupportedFileType`, `.readOnlyFileSystem`,
    ///   `.permissionDenied`, `.fileInUse` (the file is open elsewhere), `.leaseUnavailable`.
    public init(path: FilePath, access: Access = .readWrite, options: LeaseOptions = LeaseOptions()) throws(DaxPinError) {
        core = try LeaseCore.acquire(path: path.string, access: access, options: options)
    }

    /// Opens `path` and takes a lease for `access`.
    public init(path: String, access: Access = .readWrite, options: LeaseOptions = LeaseOptions()) throws(DaxPinError) {
        try self.init(path: FilePath(path), access: access, options: options)
    }

    private init(core: LeaseCore) { self.core = core }

    /// An owner for anonymous memory: no file, no lease; regions are private anonymous mappings
    /// (`pin(length:on:)`), torn down in the same order as file regions.
    public static func anonymous(options: LeaseOptions = LeaseOptions()) -> LayoutLease {
        LayoutLease(core: .anonymous(options: options))
    }

    /// The leased path.
    public var path: String { core.path }
    /// The access the lease was taken for.
    public var access: Access { core.access }
    /// What backs the memory.
    public var memory: MemoryKind { core.memory }
    /// Which lease the kernel granted.
    public var kind: LeaseKind { core.kind }
    /// Held, revoking or revoked.
    public var state: LeaseState { core.phase }
    /// Every teardown step so far (including `unpin`), with times.
    public var trace: RevocationTrace { core.trace }

    /// Lease events as an `AsyncSequence`: `breakNoticed`, then `revoked` with the trace,
    /// after which the sequence ends (a ``release()`` or drop has only `revoked`).
    ///
    /// Each call returns a new sequence, which first replays every event so far, then gets each
    /// later one, in order: a sequence made at any time, even during or after a break, sees
    /// `breakNoticed` before `revoked`, and several sequences each get every event. While the
    /// lease is held nothing has happened yet (``state`` says so); after revocation the
    /// sequence holds every event and ends at once.
    ///
    /// With a quiesce handler, `breakNoticed` arrives when the break is noticed, before the
    /// handler runs. Without one, the teardown starts at once on the watcher thread and both
    /// events arrive after it, so that waking a listener never delays the breaker: to act
    /// before the regions go, use ``LeaseOptions/quiesce``.
    public var events: AsyncStream<LeaseEvent> { core.events() }

    /// Blocks the calling thread until the lease has been revoked by a lease break (the
    /// teardown has finished), or `timeout` passed; returns the trace, or nil on timeout.
    /// For threads outside Swift concurrency; ``events`` is the asynchronous form.
    public func waitUntilRevoked(timeout: Duration) -> RevocationTrace? {
        core.waitUntilRevoked(timeout: timeout)
    }

    /// Maps, populates and registers `length` bytes at `offset` on `device`, choosing the
    /// strategy from the memory kind, the device's On-Demand Paging support and `policy`.
    ///
    /// - Parameters:
    ///   - offset: Start in the file; a multiple of the page size (of the device alignment on device-dax).
    ///   - length: Bytes to pin; nil pins to the end of the file. Required for anonymous memory.
    ///   - device: The RDMA device (and protection domain) to register the range on.
    ///   - policy: Which strategies DaxPin may choose: ``StrategyPolicy/auto`` by default.
    ///   - remoteAtomics: Also allow remote atomics (off by default: narrowest access).
    ///   - remoteFlush: Also let peers make their WRITEs durable with a native RDMA FLUSH to the
    ///     persistence domain (`IBV_ACCESS_FLUSH_PERSISTENT`; off by default). Needs read-write
    ///     persistent memory (device-dax, fs-dax), a device and kernel that offer FLUSH (rxe:
    ///     Linux 6.2 and later), and a build with rdma-core 45 or later
    ///     (``RDMABuildFeatures/flush``). Never staged: a FLUSH of a copy persists nothing.
    /// - Returns: The region's identifier, for ``withRegion(_:_:)`` and ``unpin(_:)``.
    /// - Throws: `.invalidRange`, `.registrationRefused` (with every strategy tried, the
    ///   kernel's errno and what to do instead), `.featureUnavailable` (FLUSH asked of a build
    ///   without it, or of read-only access), `.revoked`, `.systemCall`.
    public mutating func pin(offset: Int = 0, length: Int? = nil, on device: RDMADevice,
                             policy: StrategyPolicy = .auto, remoteAtomics: Bool = false,
                             remoteFlush: Bool = false) throws(DaxPinError) -> PinnedRegion.ID {
        PinnedRegion.ID(rawValue: try core.pin(offset: offset, length: length, device: device, policy: policy,
                                               remoteAtomics: remoteAtomics, remoteFlush: remoteFlush))
    }

    /// Lends the region `id` to `body`. The region cannot escape the closure.
    ///
    /// Typed throws when `body` throws nothing or ``DaxPinError``, so a `do`/`catch` around it
    /// catches a ``DaxPinError``. A closure that calls a throwing function is inferred as
    /// throwing `any Error` (Swift 6 without the `FullTypedThrows` feature) and picks the
    /// general overload, `withRegion<R, E: Error>(_:_: (borrowing PinnedRegion) throws(E) -> R) throws -> R`,
    /// whose error is untyped (the lease's ``DaxPinError`` or the closure's `E`); declare the
    /// closure's error to keep this one:
    ///
    /// ```swift
    /// try lease.withRegion(id) { region throws(DaxPinError) in
    ///     try region.persist(offset: 0, length: 4096)
    /// }
    /// ```
    /// - Throws: `.revoked` after a break or release, `.regionNotFound`, or what `body` throws.
    public func withRegion<R>(_ id: PinnedRegion.ID, _ body: (borrowing PinnedRegion) throws(DaxPinError) -> R) throws(DaxPinError) -> R {
        try body(try region(id))
    }

    // Hidden from the reference only because DocC cannot tell the two overloads apart in a
    // link; the typed overload's documentation describes it.
    /// Lends the region `id` to a `body` that throws its own error `E`. Either a
    /// ``DaxPinError`` (the lease's) or an `E` (the body's) can come out, so the error is
    /// untyped: one typed error for both would need a wrapper type around each.
    /// - Throws: `.revoked` after a break or release, `.regionNotFound`, or what `body` throws.
    @_documentation(visibility: internal)
    public func withRegion<R, E: Error>(_ id: PinnedRegion.ID, _ body: (borrowing PinnedRegion) throws(E) -> R) throws -> R {
        try body(try region(id))
    }

    private func region(_ id: PinnedRegion.ID) throws(DaxPinError) -> PinnedRegion {
        let snapshot = try core.access(id.rawValue) { (info) -> RegionInfo in info }.get()
        return PinnedRegion(core: core, resources: snapshot)
    }

    /// Deregisters and unmaps one region, in that order.
    public mutating func unpin(_ id: PinnedRegion.ID) throws(DaxPinError) {
        try core.unpin(id.rawValue)
    }

    /// Moves attached queue pairs (or anything else) to a stopped state during a forced
    /// revocation, after quiesce and before deregistration. Returns a token for ``detach(_:)``.
    /// Without a quiesce handler it runs on the lease watcher thread: keep it short (moving
    /// a queue pair to the error state is one `ibv_modify_qp`).
    public func attach(stop: @escaping @Sendable () -> Void) -> AttachmentToken {
        AttachmentToken(rawValue: core.attach(stop))
    }

    /// Removes a stop action added with ``attach(stop:)``.
    public func detach(_ token: AttachmentToken) { core.detach(token.rawValue) }

    /// Tears down every region and the lease in dependency order and returns the trace.
    /// If the kernel already broke the lease, returns that revocation's trace.
    @discardableResult
    public consuming func release() -> RevocationTrace {
        core.revoke(reason: .released)
    }

    deinit {
        core.revoke(reason: .dropped)
    }
}

/// Identifies a stop action attached to a lease.
public struct AttachmentToken: Sendable, Hashable {
    let rawValue: Int
}
