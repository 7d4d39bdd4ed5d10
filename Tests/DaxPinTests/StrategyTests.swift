@testable import DaxPin
import Foundation
import Testing

extension DaxPin {
    /// BRIEF.md's strategy matrix as a pure plan, and `pin` following it.
    @Suite struct StrategySelection {
        @Test func planFollowsTheMatrix() {
            let dax = MemoryKind.fsDAX(fileSystem: "ext4")
            #expect(StrategyPlan(memory: dax, odp: true, policy: .auto).candidates == [.onDemandPaging, .staged])
            #expect(StrategyPlan(memory: dax, odp: false, policy: .auto).candidates == [.pinned, .staged])
            #expect(StrategyPlan(memory: dax, odp: false, policy: .zeroCopy).candidates == [.pinned])
            #expect(StrategyPlan(memory: dax, odp: false, policy: .only(.onDemandPaging)).candidates == [])
            let devdax = MemoryKind.deviceDAX(name: "dax0.0", alignment: 2 << 20)
            #expect(StrategyPlan(memory: devdax, odp: false, policy: .zeroCopy).candidates == [.pinned])
            #expect(StrategyPlan(memory: .sharedMemory(fileSystem: "tmpfs"), odp: true, policy: .auto).candidates == [.pinned, .staged])
            #expect(StrategyPlan(memory: .pageCache(fileSystem: "ext4"), odp: true, policy: .auto).candidates == [.pinned, .onDemandPaging, .staged])
            #expect(StrategyPlan(memory: .anonymous, odp: false, policy: .only(.staged)).candidates == [.staged])
        }

        @Test("a refused pin of a page-cache file falls back to ODP, prefetched unless the lease's options say not",
              arguments: [true, false])
        func pageCacheFallsBackToODP(prefetch: Bool) throws {
            let file = try ScratchFile(in: FileManager.default.temporaryDirectory.path, size: 64 << 10)
            var options = LeaseOptions()
            options.prefetchOnDemandPaging = prefetch
            var lease = try LayoutLease(path: file.path, options: options)
            guard case .pageCache = lease.memory else {
                Issue.record("expected a page-cache file in \(FileManager.default.temporaryDirectory.path), got \(lease.memory)")
                return
            }
            // What a 6.5+ kernel answers for a writable long-term pin of a page-cache file.
            let recording = RecordingVerbs(odp: true, refusePinned: .badAddress)
            let id = try lease.pin(on: RDMADevice(provider: recording))
            #expect(try lease.withRegion(id) { $0.strategy } == .onDemandPaging)
            let calls = recording.calls
            #expect(calls.count == (prefetch ? 2 : 1), "\(calls)")
            if case .register(_, onDemand: true, let access) = calls.first {
                #expect(access == [.localWrite, .remoteWrite, .remoteRead])
            } else {
                Issue.record("no ODP registration: \(calls)")
            }
            #expect(calls.contains { if case .prefetch = $0 { true } else { false } } == prefetch, "\(calls)")
            _ = lease.release()
        }

        @Test("without ODP a refused pin stages, and zeroCopy refuses")
        func stagingAndZeroCopy() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            var lease = try LayoutLease(path: file.path)
            let refusing = RDMADevice(provider: RecordingVerbs(refusePinned: .notSupported))
            let id = try lease.pin(on: refusing)
            #expect(try lease.withRegion(id) { $0.strategy } == .staged)
            #expect(throws: DaxPinError.self) { _ = try lease.pin(on: refusing, policy: .zeroCopy) }
        }

        /// Peers write a staged region's bounce buffer: persist must copy those bytes back to
        /// the file, or a durable acknowledgement would promise bytes the file never gets.
        @Test("persist on a staged region writes the bounce buffer back to the file")
        func stagedPersistWritesBack() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10, fill: 0)
            var lease = try LayoutLease(path: file.path)
            let id = try lease.pin(on: RDMADevice(provider: RecordingVerbs(refusePinned: .notSupported)))
            #expect(try lease.withRegion(id) { $0.strategy } == .staged)
            try lease.withRegion(id) { region in
                try region.withMutableBytes { span in
                    for offset in 4096..<8192 { span.storeBytes(of: 0x3C, toByteOffset: offset, as: UInt8.self) }
                }
                try region.persist(offset: 4096, length: 4096)
            }
            var bytes = [UInt8](repeating: 0, count: 8192)
            let read = try bytes.withUnsafeMutableBytes { buffer in
                var span = MutableRawSpan(_unsafeBytes: buffer)
                return try lease.read(into: &span, at: 0)
            }
            #expect(read == 8192)
            #expect(bytes[4096..<8192].allSatisfy { $0 == 0x3C } && bytes[0..<4096].allSatisfy { $0 == 0 })
            _ = lease.release()
        }

        @Test("remote atomics only on request")
        func atomicsOnRequest() throws {
            var lease = LayoutLease.anonymous()
            let recording = RecordingVerbs()
            let device = RDMADevice(provider: recording)
            _ = try lease.pin(length: 4096, on: device)
            _ = try lease.pin(length: 4096, on: device, remoteAtomics: true)
            let flags = recording.calls.compactMap { call -> RegistrationAccess? in
                if case .register(_, _, let access) = call { access } else { nil }
            }
            #expect(flags == [[.localWrite, .remoteWrite, .remoteRead], [.localWrite, .remoteWrite, .remoteRead, .remoteAtomic]])
        }
    }
}
