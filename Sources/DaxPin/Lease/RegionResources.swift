import Glibc
import Synchronization
import SystemPackage

/// The kernel objects behind one pinned region, torn down by `LeaseCore` in dependency order.
/// Immutable after creation; the pointers are only dereferenced under the lease lock.
struct RegionResources: @unchecked Sendable {
    let id: Int
    let offset: Int
    let length: Int
    let strategy: Strategy
    /// The file (or anonymous) mapping.
    let mapping: UnsafeMutableRawPointer
    /// The bytes mapped (a multiple of the mapping alignment).
    let mappedLength: Int
    /// The registered buffer: the mapping itself, or the bounce buffer of a staged region.
    let registered: UnsafeMutableRawPointer
    let registration: Registration
    /// Whether `persist` is a cache flush (MAP_SYNC DAX mapping) rather than msync.
    let flushIsDurable: Bool
    /// The device the registration lives on (kept open while the region exists).
    let device: RDMADevice

    func with(id: Int) -> RegionResources {
        RegionResources(id: id, offset: offset, length: length, strategy: strategy, mapping: mapping,
                        mappedLength: mappedLength, registered: registered, registration: registration,
                        flushIsDurable: flushIsDurable, device: device)
    }

    var stagingBuffer: UnsafeMutableRawPointer? { strategy == .staged ? registered : nil }

    /// The file (or anonymous) mapping as a ``Mapping``.
    var fileMapping: Mapping { Mapping(base: mapping, length: mappedLength) }

    /// Unmaps the bounce buffer of a staged region (nothing for other strategies).
    func unmapStagingBuffer() {
        if let staging = stagingBuffer { Mapping(base: staging, length: mappedLength).unmap() }
    }
}

/// One mmap'd range; unmapped on the error paths of `pin`. Only an address and a length (the
/// memory behind it is touched under the lease lock), so it may cross into the lock's closures.
struct Mapping: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let length: Int

    /// Mappings DaxPin made and has not removed: lets tests prove that no failure path leaks
    /// one (anonymous mappings cannot be told apart from thread stacks in /proc/self/maps).
    static let live = Atomic<Int>(0)

    /// Maps `length` bytes, or returns errno.
    static func map(length: Int, protection: Int32, flags: Int32, fd: Int32, offset: Int) -> Result<Mapping, Errno> {
        let address = Syscalls.mmap(nil, length, protection, flags, fd, off_t(offset))
        guard let address, address != MAP_FAILED else { return .failure(Errno(rawValue: errno)) }
        live.add(1, ordering: .relaxed)
        return .success(Mapping(base: address, length: length))
    }

    func unmap() {
        Syscalls.munmap(base, length)
        Mapping.live.subtract(1, ordering: .relaxed)
    }
}
