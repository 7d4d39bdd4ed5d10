import Glibc
import SystemPackage

/// Address space reserved (`PROT_NONE`, nothing committed) for one lease's regions: the region
/// at file offset X is mapped over the reservation at `base + X`, so every region of the lease
/// lies inside one range, and a revocation unmaps all of them with one `munmap`: one TLB flush
/// (a shootdown to every CPU that runs one of the process's threads) instead of one per region,
/// while the breaker waits. It also keeps file offsets and addresses congruent modulo 2 MiB,
/// so DAX memory can be mapped with huge pages.
///
/// A range given back by `unpin` is re-reserved (`PROT_NONE`), never left as a hole: another
/// mapping of the process could take a hole, and the final `munmap` of the whole range would
/// remove it. If the kernel fails a `MAP_FIXED` call here (it can leave a hole behind), the range
/// is reserved again; only if that fails too is the reservation marked not intact, and the
/// teardown then unmaps region by region instead, leaving the rest of the reservation (address
/// space only) in place.
struct AddressReservation {
    /// Where the reservation starts, as mmap returned it (with alignment slack).
    let start: UnsafeMutableRawPointer
    /// Bytes reserved from `start`.
    let length: Int
    /// The address of file offset 0: `start` rounded up to the alignment.
    let base: UnsafeMutableRawPointer
    /// Bytes usable from `base` (the file or device size when reserved, rounded up).
    let capacity: Int
    /// False once a `MAP_FIXED` call over the reservation failed.
    var intact = true

    /// The largest reservation made (address space only, but still a bound: 1 TiB).
    static let largest = 1 << 40
    /// Alignment of `base` for DAX memory: a PMD, so that huge pages can map it.
    static let hugePage = 2 << 20

    /// Reserves room for offsets `0..<capacity` aligned to `alignment`; nil if that is larger
    /// than ``largest`` or the kernel refuses (the regions are then mapped one by one).
    static func make(capacity: Int, alignment: Int) -> AddressReservation? {
        guard capacity > 0, capacity <= largest else { return nil }
        let length = capacity + (alignment > SystemPage.size ? alignment : 0)
        let start = Syscalls.mmap(nil, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let start, start != MAP_FAILED else { return nil }
        Mapping.live.add(1, ordering: .relaxed)
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
        let address = Syscalls.mmap(wanted, length, protection, flags | MAP_FIXED, fd, off_t(offset))
        guard let address, address != MAP_FAILED else {
            let code = Errno(rawValue: errno)
            // A failed MAP_FIXED may have removed what was there: reserve the range again, so
            // that the reservation has no hole; only if that fails too is it not intact.
            let again = Syscalls.mmap(wanted, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0)
            if again == nil || again == MAP_FAILED { intact = false }
            return .failure(code)
        }
        Mapping.live.add(1, ordering: .relaxed)
        return .success(Mapping(base: address, length: length))
    }

    /// Whether `mapping` lies inside the reservation.
    func contains(_ mapping: UnsafeMutableRawPointer) -> Bool {
        mapping >= base && mapping < base + capacity
    }

    /// Replaces a region's mapping by reserved address space (`unpin`, or a teardown while a
    /// pin is in flight). If the kernel refuses, the region is unmapped and the reservation is
    /// marked not intact.
    mutating func giveBack(_ mapping: Mapping) {
        let address = Syscalls.mmap(mapping.base, mapping.length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0)
        if address == nil || address == MAP_FAILED {
            intact = false
            Syscalls.munmap(mapping.base, mapping.length)  // never leave a live file mapping behind
        }
        Mapping.live.subtract(1, ordering: .relaxed)
    }

    /// Removes the whole reservation, and with it the `regionsInside` mappings that lie in it,
    /// with one `munmap`. Only for an intact reservation.
    func unmapAll(regionsInside: Int) {
        precondition(intact, "DaxPin: a reservation with a hole must not be unmapped as a whole")
        Syscalls.munmap(start, length)
        Mapping.live.subtract(1 + regionsInside, ordering: .relaxed)
    }
}
