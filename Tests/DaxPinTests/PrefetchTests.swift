@testable import DaxPin
import CLease
import Foundation
import Glibc
import Testing

extension DaxPin {
    /// `ibv_advise_mr` prefetch on an On-Demand Paging registration of fs-dax memory, on real rxe.
    /// DaxPin's ODP check refuses rxe on 7.x (its ODP misplaces WRITE payloads), so no pin
    /// reaches the prefetch there; this calls the library's prefetch on a registration made for
    /// the purpose, to prove what the prefetch does where it runs.
    @Suite(.enabled(if: Testbed.isActive, Testbed.skipReason)) struct ODPPrefetch {
        /// Which of `pages` pages from `base` are present in this process's page tables
        /// (`/proc/self/pagemap`, bit 63).
        static func presentPages(_ base: UnsafeMutableRawPointer, pages: Int) throws -> Int {
            let fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
            try #require(fd >= 0)
            defer { close(fd) }
            var entries = [UInt64](repeating: 0, count: pages)
            let read = entries.withUnsafeMutableBytes {
                pread(fd, $0.baseAddress, $0.count, off_t(UInt(bitPattern: base) / 4096 * 8))
            }
            try #require(read == pages * 8)
            return entries.filter { $0 & (1 << 63) != 0 }.count
        }

        @Test("PREFETCH_WRITE with FLUSH on an ODP registration of ext4-dax faults the whole range in before any peer access (where the device and rdma-core offer it)")
        func prefetchFaultsInFSDAX() throws {
            let device = try Testbed.rdmaDevice()
            let pages = 64, length = 64 * 4096
            let file = try ScratchFile(in: Testbed.required("DAXPIN_FSDAX_EXT4_DIR"), size: length, fill: 0)
            let fd = open(file.path, O_RDWR | O_CLOEXEC)
            try #require(fd >= 0)
            defer { close(fd) }
            let mapped = mmap(nil, length, PROT_READ | PROT_WRITE, Int32(DAXPIN_MAP_SHARED_VALIDATE) | Int32(DAXPIN_MAP_SYNC), fd, 0)
            try #require(mapped != MAP_FAILED)
            let base = try #require(mapped)
            defer { munmap(base, length) }
            #expect(try Self.presentPages(base, pages: pages) == 0, "the fresh mapping is already faulted in")

            let registered = device.provider.register(address: base, length: length, access: [.localWrite, .remoteWrite, .remoteRead],
                                                      onDemand: true)
            guard KernelBehaviour.running.rxeAdvertisesOnDemandPaging else {
                // 6.1's rxe has no On-Demand Paging: the registration itself is refused.
                guard case .failure = registered else {
                    Issue.record("an ODP registration succeeded on a kernel whose rxe does not offer ODP")
                    if case .success(let registration) = registered { _ = device.provider.deregister(registration) }
                    return
                }
                Testbed.ran(.refusalOnly)
                return
            }
            let registration = try registered.get()
            defer { _ = device.provider.deregister(registration) }
            #expect(try Self.presentPages(base, pages: pages) == 0, "an ODP registration faulted the range in by itself")

            let failure = device.provider.prefetch(registration, writable: true)
            // rxe's prefetch arrived in Linux 6.17 with rdma-core 59: older userspace answers EOPNOTSUPP.
            let userspaceHasIt = (RDMABuildFeatures.current.rdmaCoreRelease ?? 0) >= 59
            if userspaceHasIt {
                #expect(failure == nil, "ibv_advise_mr(PREFETCH_WRITE, FLUSH) failed: \(String(describing: failure))")
                // FLUSH makes the advice synchronous: every page is mapped once it returns.
                #expect(try Self.presentPages(base, pages: pages) == pages)
            } else {
                #expect(failure == .notSupported, "rdma-core \(String(describing: RDMABuildFeatures.current.rdmaCoreRelease)) prefetched")
                #expect(try Self.presentPages(base, pages: pages) == 0)
            }
            Testbed.ran(userspaceHasIt ? .objectsOnly : .refusalOnly)
        }
    }
}
