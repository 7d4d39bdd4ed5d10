import Glibc
import SystemPackage

/// Owns address space reserved (`PROT_NONE`, nothing committed) for one lease's regions: the
/// region at file offset X is mapped over the reservation at `base + X`, so every region of the
/// lease lies inside one range, and a revocation unmaps all of them with one `munmap`: one TLB
/// flush (a shootdown to every CPU that runs one of the process's threads) instead of one per
/// region, while the breaker waits. It also keeps file offsets and addresses congruent modulo
/// 2 MiB, so DAX memory can be mapped with huge pages.
///
/// A range given back by `unpin` is re-reserved (`PROT_NONE`), never left as a hole: another
/// mapping of the process could take a hole, and the final `munmap` of the whole range would
/// remove it. If the kernel fails a `MAP_FIXED` call here (it can leave a hole behind), the range
/// is reserved again; only if that fails too is the reservation marked not intact, and the
/// teardown then unmaps region by region instead, leaving the rest of the reservation (address
/// space only) in place.
// Sendable: addresses only, and it lives under the lease lock.
struct AddressReservation: ~Copyable, @unchecked Sendable {
    /// Where the reservation starts, as mmap returned it (with alignment slack).
    let start: UnsafeMutableRawPointer
    /// Bytes reserved from `start`.
    let length: Int
    /// The address of file offset 0: `start` rounded up to the alignment.
    let base: UnsafeMutableRawPointer
    /// Bytes usable from `base` (the file or device size when reserved, rounded up).
    let capacity: Int
    /// False once a `MAP_FIXED` call over the reservation failed.
    private(set) var intact = true

    /// The largest reservation made (address space only, but still a bound: 1 TiB).
    static let largest = 1 << 40
    /// Alignment of `base` for DAX memory: a PMD, so that huge pages can map it.
    static let hugePage = 2 << 20
    /// How reserved address space is mapped.
    static let reservingFlags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE

    private init(start: UnsafeMutableRawPointer, length: Int, base: UnsafeMutableRawPointer, capacity: Int) {
        self.start = start; self.length = length; self.base = base; self.capacity = capacity
    }

    /// Reserves room for offsets `0..<capacity` aligned to `alignment`; nil if that is larger
    /// than ``largest`` or the kernel refuses (the regions are then mapped one by one).
    static func make(capacity: Int, alignment: Int) -> AddressReservation? {
        guard capacity > 0, capacity <= largest else { return nil }
        let length = capacity + (alignment > SystemPage.size ? alignment : 0)
        guard let start = try? Syscalls.mmap(nil, length, PROT_NONE, reservingFlags, -1, 0) else { return nil }
        let address = UInt(bitPattern: start), mask = UInt(alignment - 1)
        let base = UnsafeMutableRawPointer(bitPattern: (address + mask) & ~mask)!
        return AddressReservation(start: start, length: length, base: base, capacity: capacity)
    }

    /// Maps `length` bytes of `fd` at `offset` over the reservation at `base + offset`; nil
    /// (and nothing changed) when the range lies outside the reservation. After a failure the
    /// range is reserved again, or the reservation is marked not intact.
    mutating func map(length: Int, protection: Int32, flags: Int32, fd: Int32, offset: Int) -> Result<Mapping, Errno>? {
        guard intact, offset >= 0, length <= capacity, offset <= capacity - length else { return nil }
        let wanted = base + offset
        let address: UnsafeMutableRawPointer
        do throws(Errno) { address = try Syscalls.mmap(wanted, length, protection, flags | MAP_FIXED, fd, off_t(offset)) } catch {
            // A failed MAP_FIXED may have removed what was there: reserve the range again.
            _ = reserveAgain(base: wanted, length: length)
            return .failure(error)
        }
        Mapping.notInherited(address, length)
        return .success(Mapping(base: address, length: length, isReserved: true))
    }

    /// Reserves a range inside the reservation again (over a region's mapping, or what a failed
    /// `MAP_FIXED` left); false, and the reservation is marked not intact, if the kernel refuses.
    mutating func reserveAgain(base: UnsafeMutableRawPointer, length: Int) -> Bool {
        guard (try? Syscalls.mmap(base, length, PROT_NONE, Self.reservingFlags | MAP_FIXED, -1, 0)) == nil else { return true }
        intact = false
        return false
    }

    /// Whether `mapping` lies inside the reservation.
    func contains(_ address: UnsafeMutableRawPointer) -> Bool {
        address >= base && address < base + capacity
    }

    /// Removes the whole reservation, and with it every mapping that lies in it, with one
    /// `munmap`. Only for an intact reservation (one with a hole would remove what took it).
    consuming func unmap() {
        precondition(intact, "DaxPin: a reservation with a hole must not be unmapped as a whole")
        try? Syscalls.munmap(start, length)
        discard self
    }

    deinit {
        // Backstop: a reservation with a hole is left in place (address space only).
        if intact { try? Syscalls.munmap(start, length) }
    }
}
