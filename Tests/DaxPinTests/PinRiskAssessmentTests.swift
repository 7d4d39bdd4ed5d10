@testable import DaxPin
@testable import DaxPinVisibility
import Testing

extension DaxPin {
    /// Which mappings `daxpin ls --all` flags, and how it says why: the pure judgement, on facts
    /// shaped like what the testbed's processes show.
    @Suite struct VisibilityAssessment {
        static let tmpfsDevice = DeviceNumber(major: 0, minor: 27)
        static let base: UInt64 = 0x7f00_0000_0000

        static func file(_ kind: MemoryKind?, writable: Bool = true, inode: UInt64 = 100, path: String = "/dev/shm/buffer") -> MappedFile {
            let range = ProcessMapping(start: base, end: base + (1 << 20), readable: true, writable: writable, shared: true,
                                       offset: 0, device: tmpfsDevice, inode: inode, path: path)
            return MappedFile(path: path, device: tmpfsDevice, inode: inode, ranges: [range], kind: kind)
        }

        static func facts(files: [MappedFile], regions: Int = 0, pinned: Int? = nil, rings: [IoUringRegistration] = []) -> ProcessPinFacts {
            let entries = (0..<regions).map { RdmaMemoryRegionEntry(device: "rxe0", number: UInt32($0), length: 1 << 20, pid: 4711) }
            return ProcessPinFacts(pid: 4711, name: "pinner", uid: 0, pinnedBytes: pinned ?? (regions << 20),
                                   memoryRegions: entries, rings: rings, files: files)
        }

        static func lease(pid: Int32, inode: UInt64 = 100, breaking: Bool = false) -> KernelLease {
            KernelLease(pid: pid, device: tmpfsDevice, inode: inode, type: breaking ? "UNLCK" : "WRITE", breaking: breaking)
        }

        let modern = KernelBehaviour(version: KernelVersion(7, 2))
        let old = KernelBehaviour(version: KernelVersion(6, 1))

        @Test("MRs and an unleased writable tmpfs mapping: at risk, circumstantial, in words")
        func memoryRegionsFlagCircumstantially() throws {
            let judged = PinRiskAssessment.assess(Self.facts(files: [Self.file(.sharedMemory(fileSystem: "tmpfs"))], regions: 2),
                                                  leases: [], kernel: modern)
            #expect(judged.files.map(\.verdict) == [.atRisk(.circumstantial)])
            #expect(judged.files[0].leaseText == "none")
            let warning = try #require(judged.warnings.first)
            #expect(warning.evidence == .circumstantial && warning.path == "/dev/shm/buffer")
            #expect(warning.reason.contains("2 RDMA MR(s) (2097152 bytes on rxe0)"))
            #expect(warning.reason.contains("a truncate would leave its NIC writing into orphaned pages"))
            #expect(warning.reason.contains("no MR addresses (IOVA)"))
        }

        @Test("an io_uring buffer inside the mapping: at risk, exact; buffers elsewhere that explain VmPin: not pinned")
        func ioUringEvidenceIsExact() throws {
            let inside = IoUringRegistration(fd: 3, bufferCount: 1, buffers: [.init(index: 0, address: Self.base + 4096, length: 65536)])
            let judged = PinRiskAssessment.assess(Self.facts(files: [Self.file(.sharedMemory(fileSystem: "tmpfs"))], pinned: 65536,
                                                             rings: [inside]), leases: [], kernel: modern)
            #expect(judged.files.map(\.verdict) == [.atRisk(.exact)])
            let warning = try #require(judged.warnings.first)
            #expect(warning.reason.contains("io_uring buffer 0 of ring fd 3 (0x7f0000001000, 65536 bytes)"))
            #expect(warning.reason.contains("Exact: the kernel lists io_uring buffer addresses"))

            let elsewhere = IoUringRegistration(fd: 3, bufferCount: 1, buffers: [.init(index: 0, address: 0x1000, length: 16384)])
            let clean = PinRiskAssessment.assess(Self.facts(files: [Self.file(.sharedMemory(fileSystem: "tmpfs"))], pinned: 16384,
                                                            rings: [elsewhere]), leases: [], kernel: modern)
            #expect(clean.files.map(\.verdict) == [.notPinned] && clean.warnings.isEmpty)
            // VmPin beyond what the buffers explain: something else pins, somewhere.
            let more = PinRiskAssessment.assess(Self.facts(files: [Self.file(.sharedMemory(fileSystem: "tmpfs"))], pinned: 1 << 20,
                                                           rings: [elsewhere]), leases: [], kernel: modern)
            #expect(more.files.map(\.verdict) == [.atRisk(.circumstantial)])
            #expect(more.warnings.first?.reason.contains("VmPin shows 1048576 bytes pinned") == true)
            // A busy ring (addresses not listed) proves nothing either way.
            let busy = IoUringRegistration(fd: 3, bufferCount: 1, buffers: [])
            let unknown = PinRiskAssessment.assess(Self.facts(files: [Self.file(.sharedMemory(fileSystem: "tmpfs"))], pinned: 16384,
                                                              rings: [busy]), leases: [], kernel: modern)
            #expect(unknown.files.map(\.verdict) == [.atRisk(.circumstantial)])
        }

        @Test("a lease held by the process protects the mapping; one held by another process does not")
        func leases() throws {
            let facts = Self.facts(files: [Self.file(.sharedMemory(fileSystem: "tmpfs"))], regions: 1)
            let own = PinRiskAssessment.assess(facts, leases: [Self.lease(pid: 4711)], kernel: modern)
            #expect(own.files.map(\.verdict) == [.leased] && own.warnings.isEmpty && own.files[0].leaseText == "write lease")
            let breaking = PinRiskAssessment.assess(facts, leases: [Self.lease(pid: 4711, breaking: true)], kernel: modern)
            #expect(breaking.files[0].leaseText == "lease (unlck), breaking" && breaking.files[0].verdict == .leased)
            let other = PinRiskAssessment.assess(facts, leases: [Self.lease(pid: 99)], kernel: modern)
            #expect(other.files.map(\.verdict) == [.atRisk(.circumstantial)])
            #expect(other.files[0].leaseText == "write lease of pid 99")
            #expect(other.warnings.first?.reason.contains("whose lease belongs to pid 99, not to this process") == true)
            let elsewhere = PinRiskAssessment.assess(facts, leases: [Self.lease(pid: 4711, inode: 101)], kernel: modern)
            #expect(elsewhere.files.map(\.verdict) == [.atRisk(.circumstantial)], "a lease on another file does not count")
        }

        @Test("memory kinds: fs-dax is never pinned long term, device-dax cannot be truncated, read-only cannot be written, unknown stays unknown")
        func memoryKinds() {
            let files = [Self.file(.fsDAX(fileSystem: "ext4"), inode: 1), Self.file(.deviceDAX(name: "dax0.0", alignment: 2 << 20), inode: 2),
                         Self.file(.sharedMemory(fileSystem: "tmpfs"), writable: false, inode: 3), Self.file(nil, inode: 4)]
            let judged = PinRiskAssessment.assess(Self.facts(files: files, regions: 1), leases: [], kernel: modern)
            #expect(judged.files.map(\.verdict) == [.notLongTermPinnable, .notTruncatable, .readOnly, .unknown])
            #expect(judged.warnings.isEmpty)
            #expect(judged.files.map(\.verdict.label) == ["no long-term pin (fs-dax)", "cannot be truncated", "read-only", "unknown"])
        }

        @Test("page cache: flagged on both kernels; from 6.5 the warning adds that such a pin can only be read-only")
        func pageCachePerKernel() {
            let facts = Self.facts(files: [Self.file(.pageCache(fileSystem: "ext4"), path: "/srv/data")], regions: 1)
            let onOld = PinRiskAssessment.assess(facts, leases: [], kernel: old)
            let onModern = PinRiskAssessment.assess(facts, leases: [], kernel: modern)
            #expect(onOld.warnings.count == 1 && onModern.warnings.count == 1)
            #expect(onOld.warnings[0].reason.contains("page-cache file on ext4"))
            #expect(!onOld.warnings[0].reason.contains("can only be read-only"))
            #expect(onModern.warnings[0].reason.contains("refuses writable long-term pins of page-cache files"))
        }

        @Test("MRs with VmPin 0 are On-Demand Paging MRs, which pin nothing: not flagged; unknown VmPin stays circumstantial")
        func onDemandPagingMemoryRegions() {
            let file = Self.file(.sharedMemory(fileSystem: "tmpfs"))
            let odp = PinRiskAssessment.assess(Self.facts(files: [file], regions: 1, pinned: 0), leases: [], kernel: modern)
            #expect(odp.files.map(\.verdict) == [.notPinned] && odp.warnings.isEmpty)
            var unknown = Self.facts(files: [file], regions: 1)
            unknown.pinnedBytes = nil
            #expect(PinRiskAssessment.assess(unknown, leases: [], kernel: modern).files.map(\.verdict) == [.atRisk(.circumstantial)])
        }

        @Test("a process that pins nothing (a DaxPin publisher with a lease only) gets no warning")
        func noPinsNoWarning() {
            let facts = ProcessPinFacts(pid: 5, name: "daxpin", uid: 0, pinnedBytes: 0,
                                        files: [Self.file(.sharedMemory(fileSystem: "tmpfs"))], publishesRegistry: true)
            let judged = PinRiskAssessment.assess(facts, leases: [], kernel: modern)
            #expect(judged.files.map(\.verdict) == [.notPinned] && judged.warnings.isEmpty)
        }
    }
}
