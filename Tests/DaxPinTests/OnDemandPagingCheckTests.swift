@_spi(Testing) @testable import DaxPin
import Foundation
import Testing

extension DaxPin {
    /// The check against simulated devices: a faithful one passes at every path MTU, and each
    /// way of misplacing bytes is caught by the transfer built to catch it.
    @Suite struct OnDemandPagingFaults {
        static let pathMTUs = [256, 512, 1024, 2048, 4096]
        static let faults: [SimulatedODP] = [.payloadAtPageStart, .cursorNotAdvanced, .droppedWrites, .offBy(3), .offBy(-64),
                                             .wrongReads, .wrongWhenNotPresent, .staleAfterInvalidation]
        static let targets: [OnDemandPagingTarget] = [.memory, .file(directory: "/srv/dax", dax: true)]
        static let length = OnDemandPagingCheck.transfers(pathMTU: 4096, pageSize: SystemPage.size).length

        /// The index of the transfer that must catch `fault` at `mtu`, with 4 KiB pages.
        static func catchingTransfer(_ fault: SimulatedODP, pathMTU mtu: Int) -> Int? {
            switch fault {
            // The first WRITE packet that does not start a page: the second of the first WRITE,
            // unless packets are page-sized, then the WRITE that starts off a page boundary.
            case .payloadAtPageStart: mtu < 4096 ? 0 : 1
            // The first WRITE packet that crosses a page boundary.
            case .cursorNotAdvanced: mtu >= 2048 ? 1 : 2
            case .droppedWrites, .offBy: 0
            // The first READ packet that does not start a page.
            case .wrongReads: mtu < 4096 ? 4 : 5
            // The first WRITE begins each page it faults in at its start; the second does not.
            case .wrongWhenNotPresent: 1
            // The first transfer after the invalidation.
            case .staleAfterInvalidation: 6
            case .faithful, .refused: nil
            }
        }

        @Test("a faithful device is verified at every path MTU, on a memfd and on a file target",
              arguments: pathMTUs, targets)
        func faithfulDeviceAtEveryMTU(pathMTU: Int, target: OnDemandPagingTarget) {
            let loopback = SimulatedODPLoopback(length: Self.length, pathMTU: pathMTU, behaviour: .faithful, target: target)
            #expect(OnDemandPagingCheck.run(loopback) == .verified)
            #expect(loopback.invalidations == 1, "the target is invalidated once, before the re-fault transfers")
        }

        @Test("each fault is caught by its own transfer, at every path MTU and on both targets",
              arguments: faults, pathMTUs)
        func faultIsCaughtByItsTransfer(fault: SimulatedODP, pathMTU: Int) throws {
            try #require(SystemPage.size == 4096, "the expected transfers assume 4 KiB pages")
            let transfers = OnDemandPagingCheck.transfers(pathMTU: pathMTU, pageSize: SystemPage.size).transfers
            let expected = try #require(Self.catchingTransfer(fault, pathMTU: pathMTU))
            for target in Self.targets {
                let loopback = SimulatedODPLoopback(length: Self.length, pathMTU: pathMTU, behaviour: fault, target: target)
                let failure = try #require(OnDemandPagingCheck.firstFailure(loopback), "\(fault) at \(pathMTU) on \(target) passed")
                #expect(failure.transfer == expected, "\(fault) at \(pathMTU) on \(target): \(failure)")
                #expect(failure.description.hasPrefix("\(transfers[expected]) (path MTU \(pathMTU)) completed successfully, but"))
                #expect(failure.description.contains("bytes are wrong"))
            }
        }

        @Test("the plan faults every page in first, then invalidates and re-faults WRITEs and a READ")
        func planShape() {
            for mtu in Self.pathMTUs {
                let (transfers, length) = OnDemandPagingCheck.transfers(pathMTU: mtu, pageSize: 4096)
                let first = transfers.filter { !$0.refault }, again = transfers.filter(\.refault)
                #expect(transfers.prefix(first.count).allSatisfy { !$0.refault })
                #expect(again.contains { $0.direction == .write } && again.contains { $0.direction == .read })
                #expect(again.contains { $0.direction == .write && $0.offset % 4096 + $0.length > 4096 })
                // Re-fault transfers repeat first-fault ones, so a stale page holds the old bytes.
                #expect(again.allSatisfy { refault in first.contains { $0.range == refault.range } })
                // Each transfer stays in its own slot, inside the buffers.
                #expect(transfers.allSatisfy { $0.slot.contains($0.offset) && $0.range.upperBound <= $0.slot.upperBound })
                #expect(transfers.allSatisfy { $0.slot.upperBound < length })
                // Every byte moved, in all, stays small.
                #expect(transfers.reduce(0) { $0 + $1.length } < 100 << 10)
            }
        }
    }

    /// What the ODP verdict is keyed by, which scratch target a pin's check uses, and the
    /// accesses the check does not cover.
    @Suite struct OnDemandPagingVerdictCache {
        @Test("a verdict holds per device, memory kind, file system and path MTU")
        func cacheKey() throws {
            let key = "recording-cache-\(UUID().uuidString)"
            let directory = FileManager.default.temporaryDirectory.path
            let sibling = directory + "/daxpin-odp-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: sibling, withIntermediateDirectories: false)
            defer { try? FileManager.default.removeItem(atPath: sibling) }
            let recording = RecordingVerbs(odp: true, pathMTU: 1024, verdictKey: key)
            let device = RDMADevice(provider: recording)
            let ext4DAX = MemoryKind.fsDAX(fileSystem: "ext4")
            #expect(device.onDemandPaging(for: .readWrite, memory: ext4DAX, directory: directory) == .verified)
            #expect(device.onDemandPaging(for: .readWrite, memory: ext4DAX, directory: directory) == .verified)
            #expect(device.onDemandPaging(for: .readWrite, memory: ext4DAX, directory: sibling) == .verified, "same file system")
            #expect(recording.checkedTargets == [.file(directory: directory, dax: true)])
            #expect(device.onDemandPaging(for: .readWrite, memory: .pageCache(fileSystem: "ext4"), directory: directory) == .verified)
            #expect(device.onDemandPaging(for: .readWrite, memory: .sharedMemory(fileSystem: "tmpfs"), directory: HostDirs.tmpfs) == .verified)
            #expect(device.onDemandPaging(for: .readWrite) == .verified, "a memfd, as for tmpfs")
            #expect(recording.checkedTargets == [.file(directory: directory, dax: true), .file(directory: directory, dax: false), .memory])
            // Another object for the same device and MTU shares the verdicts; another MTU does not.
            let same = RecordingVerbs(odp: true, pathMTU: 1024, verdictKey: key)
            #expect(RDMADevice(provider: same).onDemandPaging(for: .readWrite, memory: ext4DAX, directory: directory) == .verified)
            #expect(same.checksRun == 0)
            let wider = RecordingVerbs(odp: true, pathMTU: 4096, verdictKey: key)
            #expect(RDMADevice(provider: wider).onDemandPaging(for: .readWrite, memory: ext4DAX, directory: directory) == .verified)
            #expect(wider.checkedTargets == [.file(directory: directory, dax: true)])
        }

        @Test("a file system on another device gets its own check")
        func otherFileSystem() throws {
            var tmp = stat(), shm = stat()
            let directory = FileManager.default.temporaryDirectory.path
            try #require(stat(directory, &tmp) == 0 && stat(HostDirs.tmpfs, &shm) == 0)
            try #require(tmp.st_dev != shm.st_dev, "\(directory) and \(HostDirs.tmpfs) are one file system here")
            let recording = RecordingVerbs(odp: true)
            let device = RDMADevice(provider: recording)
            _ = device.onDemandPaging(for: .readWrite, memory: .pageCache(fileSystem: "ext4"), directory: directory)
            _ = device.onDemandPaging(for: .readWrite, memory: .pageCache(fileSystem: "ext4"), directory: HostDirs.tmpfs)
            #expect(recording.checksRun == 2)
        }

        @Test("remote atomics and RDMA FLUSH over ODP are refused with the reason, without a check")
        func atomicsAndFlushAreRefused() {
            let recording = RecordingVerbs(odp: true)
            let device = RDMADevice(provider: recording)
            let dax = MemoryKind.fsDAX(fileSystem: "xfs"), directory = FileManager.default.temporaryDirectory.path
            for (atomics, flush, named) in [(true, false, "remote atomics"), (false, true, "RDMA FLUSH"),
                                            (true, true, "remote atomics and RDMA FLUSH")] {
                let verdict = device.onDemandPaging(for: .readWrite, memory: dax, directory: directory, remoteAtomics: atomics, remoteFlush: flush)
                #expect(verdict == .failed(reason: "DaxPin's check does not cover \(named) (it moves RDMA WRITEs and READs only), and this registration allows them"))
                let plan = StrategyPlan(memory: dax, onDemandPaging: verdict, policy: .auto)
                #expect(!plan.candidates.contains(.onDemandPaging))
                #expect(plan.skipped.contains { $0.reason.contains("does not cover \(named)") })
            }
            #expect(recording.checksRun == 0)
            // A read-only registration allows neither, whatever was asked.
            #expect(device.onDemandPaging(for: .readOnly, memory: dax, directory: directory, remoteAtomics: true) == .verified)
            #expect(recording.checksRun == 1)
        }

        @Test("a page-cache pin checks ODP on an unnamed file in the pinned file's directory")
        func pinChecksInTheFilesDirectory() throws {
            let file = try ScratchFile(in: FileManager.default.temporaryDirectory.path, size: 64 << 10)
            var lease = try LayoutLease(path: file.path)
            guard case .pageCache = lease.memory else {
                Issue.record("expected a page-cache file in \(FileManager.default.temporaryDirectory.path), got \(lease.memory)")
                return
            }
            let recording = RecordingVerbs(odp: true, refusePinned: .badAddress)
            let device = RDMADevice(provider: recording)
            let id = try lease.pin(on: device)
            #expect(try lease.withRegion(id) { $0.strategy } == .onDemandPaging)
            let directory = String(file.path[..<file.path.lastIndex(of: "/")!])
            #expect(recording.checkedTargets == [.file(directory: directory, dax: false)])
            // Atomics are not covered by the check: the same pin stages.
            let atomic = try lease.pin(on: device, remoteAtomics: true)
            #expect(try lease.withRegion(atomic) { $0.strategy } == .staged)
            #expect(recording.checksRun == 1)
        }
    }
}

extension DaxPin {
    /// The check's scratch targets on the host's file systems: made where the pin is, untouched
    /// until the device writes them, and invalidated as the check needs.
    @Suite struct OnDemandPagingScratchTargets {
        /// How many of the mapping's pages are resident (`mincore`).
        static func residentPages(_ bytes: UnsafeMutableRawBufferPointer) -> Int {
            var vector = [UInt8](repeating: 0, count: (bytes.count + SystemPage.size - 1) / SystemPage.size)
            guard mincore(bytes.baseAddress, bytes.count, &vector) == 0 else { return -1 }
            return vector.reduce(0) { $0 + Int($1 & 1) }
        }

        @Test("a file target is an unnamed, untouched file in the directory; a punched hole reads zero")
        func fileTarget() throws {
            let directory = FileManager.default.temporaryDirectory.path + "/daxpin-odp-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            // Asked for as fs-dax on a file system without DAX: mapped plainly shared instead.
            let scratch = try OnDemandPagingScratch(.file(directory: directory, dax: true), length: 64 << 10)
            #expect(!scratch.isSynchronous)
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty, "O_TMPFILE leaves no name")
            #expect(Self.residentPages(scratch.bytes) == 0, "nothing pre-faults the target")
            #expect(!scratch.invalidationKeepsContents)
            for i in stride(from: 0, to: scratch.bytes.count, by: 1000) { scratch.bytes[i] = 0x5A }
            try scratch.invalidate().get()
            #expect(scratch.bytes.allSatisfy { $0 == 0 })
        }

        @Test("a memfd target is untouched and keeps its bytes through MADV_DONTNEED")
        func memoryTarget() throws {
            let scratch = try OnDemandPagingScratch(.memory, length: 64 << 10)
            #expect(Self.residentPages(scratch.bytes) == 0)
            #expect(scratch.invalidationKeepsContents)
            scratch.bytes[4096 + 7] = 0x5A
            try scratch.invalidate().get()
            #expect(scratch.bytes[4096 + 7] == 0x5A)
        }

        @Test("where O_TMPFILE is refused, the target is a new name unlinked at once")
        func fileTargetWithoutTmpfile() throws {
            defer { SyscallFaults.disarm() }
            let directory = FileManager.default.temporaryDirectory.path + "/daxpin-odp-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            SyscallFaults.arm(.open, errno: EOPNOTSUPP)  // the O_TMPFILE open only: the fault is taken once
            let scratch = try OnDemandPagingScratch(.file(directory: directory, dax: false), length: 16 << 10)
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty, "the name was not unlinked")
            #expect(Self.residentPages(scratch.bytes) == 0)
            try scratch.invalidate().get()
            #expect(scratch.bytes.allSatisfy { $0 == 0 })
        }

        @Test("a failed hole punch is a typed error naming the target")
        func failedInvalidation() throws {
            let scratch = try OnDemandPagingScratch(.file(directory: FileManager.default.temporaryDirectory.path, dax: false), length: 4096)
            SyscallFaults.arm(.fallocate, errno: EIO)
            defer { SyscallFaults.disarm() }
            #expect(throws: DaxPinError.systemCall(operation: "fallocate(FALLOC_FL_PUNCH_HOLE)", path: scratch.kind.description, errno: .ioError)) {
                try scratch.invalidate().get()
            }
        }

        @Test("a directory where no file can be made is a typed error naming it")
        func unusableDirectory() {
            let missing = "/nonexistent-\(UUID().uuidString)"
            #expect(throws: DaxPinError.systemCall(operation: "open(O_TMPFILE)", path: missing, errno: .noSuchFileOrDirectory)) {
                try OnDemandPagingScratch(.file(directory: missing, dax: false), length: 4096)
            }
        }
    }
}
