import Glibc
import SystemPackage

/// Owns one mmap'd range: ``unmap()`` removes it, and `deinit` removes it if nothing else did
/// (a failed pin's mapping goes away when the pin throws).
///
/// A mapping placed over the lease's ``AddressReservation`` is not unmapped on its own: it is
/// given back to the reservation (``giveBack(to:)``) or removed with the whole reservation
/// (``coveredByReservation()``), so the reservation never has a hole another mapping could take.
// Sendable: an address and a length; the memory behind it is touched only under the lease's
// access gate.
struct Mapping: ~Copyable, @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let length: Int
    /// Whether the range lies over the lease's reservation.
    let isReserved: Bool

    init(base: UnsafeMutableRawPointer, length: Int, isReserved: Bool) {
        self.base = base
        self.length = length
        self.isReserved = isReserved
    }

    /// Maps `length` bytes, or returns errno.
    static func map(length: Int, protection: Int32, flags: Int32, fd: Int32, offset: Int) -> Result<Mapping, Errno> {
        let address: UnsafeMutableRawPointer
        do throws(Errno) { address = try Syscalls.mmap(nil, length, protection, flags, fd, off_t(offset)) } catch { return .failure(error) }
        notInherited(address, length)
        return .success(Mapping(base: address, length: length, isReserved: false))
    }

    /// Removes the range (`munmap`). A reserved range is reserved again instead.
    consuming func unmap() {
        Self.remove(base: base, length: length, reserved: isReserved)
        discard self
    }

    /// Replaces the range by reserved address space (`unpin` of a region in the reservation);
    /// if the kernel refuses, the range is unmapped and the reservation marked not intact.
    consuming func giveBack(to reservation: inout AddressReservation) {
        if !reservation.reserveAgain(base: base, length: length) { try? Syscalls.munmap(base, length) }
        discard self
    }

    /// The whole reservation is about to be unmapped with one `munmap`, and this range with it.
    consuming func coveredByReservation() { discard self }

    deinit { Self.remove(base: base, length: length, reserved: isReserved) }

    /// A child forked without exec does not get the range (`MADV_DONTFORK`): its copy of a
    /// region would map the file's pages under no lease of its own. Best effort: without it the
    /// child's shared mapping is still removed by a truncate, like any other process's.
    static func notInherited(_ base: UnsafeMutableRawPointer, _ length: Int) {
        try? Syscalls.madvise(base, length, MADV_DONTFORK)
    }

    private static func remove(base: UnsafeMutableRawPointer, length: Int, reserved: Bool) {
        if reserved {
            if (try? Syscalls.mmap(base, length, PROT_NONE, AddressReservation.reservingFlags | MAP_FIXED, -1, 0)) != nil { return }
        }
        try? Syscalls.munmap(base, length)  // never leave a live file mapping behind
    }
}
