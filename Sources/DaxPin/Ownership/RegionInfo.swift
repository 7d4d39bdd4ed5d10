/// What a pinned region is: its place in the file, its strategy, where its bytes are mapped and
/// its registration's keys. Copyable facts, for byte access, ``PinnedRegion`` and the pin
/// registry; the kernel objects themselves are owned by an ``OwnedRegion``.
struct RegionInfo: @unchecked Sendable {
    let id: Int
    let offset: Int
    let length: Int
    let strategy: Strategy
    /// The file (or anonymous) mapping. Dereferenced only during a byte access, which
    /// revocation and `unpin` wait for before they unmap.
    let mapping: UnsafeMutableRawPointer
    /// The bytes mapped (a multiple of the mapping alignment).
    let mappedLength: Int
    /// The registered buffer: the mapping itself, or the bounce buffer of a staged region.
    let registered: UnsafeMutableRawPointer
    /// The registration's address, length and keys.
    let registration: Registration
    /// Whether `persist` is a cache flush (MAP_SYNC DAX mapping) rather than msync.
    let flushIsDurable: Bool
    /// The device the region is registered on.
    let device: RDMADevice
}
