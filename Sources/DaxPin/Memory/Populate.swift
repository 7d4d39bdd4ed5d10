import Dispatch
import Glibc

/// Faults a fresh mapping's pages in before it is registered (the work of `MAP_POPULATE`),
/// on several CPUs when the range is large, as QEMU's `prealloc-threads` does for guest RAM.
///
/// The registration pins every page anyway, but faulting file pages first is cheaper: a read
/// fault maps 16 page-cache pages at once, and those of a shared tmpfs mapping are writable
/// already, so the pin finds them ready. Faulting in parallel then divides the biggest part
/// of a large pin (Benchmarks/suites/pin_register_peers.sh measures pin + register). Device-dax,
/// and a range that goes to On-Demand Paging, are not populated at all (see `LeaseCore.pin`).
enum Populate {
    /// The least each thread takes: a smaller range is faulted on the calling thread, where
    /// handing it to another would cost more than it saves.
    static let minimumPart = 32 << 20
    /// Online CPUs, the most threads a populate uses.
    static let processors = Syscalls.onlineProcessors()

    /// Faults `[base, base + length)` in, for writing where `write` (a private writable
    /// mapping: allocates its pages as `MAP_POPULATE` would), else for reading. Parts start
    /// on multiples of `alignment` (the page or huge-page size). Best effort, like
    /// `MAP_POPULATE`: what a part cannot fault in (no memory, a hole past the end of the file,
    /// a kernel before 5.14 without `MADV_POPULATE_*`) is left to the registration's pin,
    /// which reports its own error. `threads` bounds the parts (tests vary it).
    static func range(_ base: UnsafeMutableRawPointer, length: Int, write: Bool, alignment: Int,
                      threads: Int = Populate.processors) {
        let advice = write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ
        let parts = min(threads, length / minimumPart)
        guard parts > 1 else {
            try? Syscalls.madvise(base, length, advice)
            return
        }
        let partLength = (length / parts + alignment - 1) / alignment * alignment
        let start = UInt(bitPattern: base)  // an address, so that the closure captures only Sendable values
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let offset = part * partLength
            guard offset < length, let address = UnsafeMutableRawPointer(bitPattern: start + UInt(offset)) else { return }
            try? Syscalls.madvise(address, min(partLength, length - offset), advice)
        }
    }
}
