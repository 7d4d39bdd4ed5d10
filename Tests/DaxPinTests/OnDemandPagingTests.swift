@_spi(Testing) @testable import DaxPin
import Foundation
import Testing

extension DaxPin {
    /// On-Demand Paging is trusted only after DaxPin's check has moved bytes correctly through
    /// it: both verdicts, on the host with the recording stand-in's simulated loopback (the
    /// real devices are judged in `RealDevices`).
    @Suite struct OnDemandPagingVerification {
        @Test("a device that moves every byte right is verified, once per device")
        func faithfulDeviceIsVerified() {
            let recording = RecordingVerbs(odp: true, simulatedODP: .faithful)
            let device = RDMADevice(provider: recording)
            #expect(device.onDemandPaging(for: .readWrite) == .verified)
            #expect(device.onDemandPaging(for: .readOnly) == .verified)
            #expect(RDMADevice(provider: recording).onDemandPaging(for: .readWrite) == .verified)
            #expect(recording.checksRun == 1, "the verdict is cached per device")
        }

        @Test("rxe's page-start placement fails the check, at path MTU 1024 and 4096",
              arguments: [1024, 4096])
        func payloadAtPageStartFails(pathMTU: Int) {
            let recording = RecordingVerbs(odp: true, simulatedODP: .payloadAtPageStart, pathMTU: pathMTU)
            let verdict = RDMADevice(provider: recording).onDemandPaging(for: .readWrite)
            guard case .failed(let reason) = verdict else {
                Issue.record("expected a failed verdict, got \(verdict)")
                return
            }
            #expect(reason.contains("RDMA WRITE to offset"))
            #expect(reason.contains("(path MTU \(pathMTU)) completed successfully, but"))
            #expect(reason.contains("bytes are wrong"))
            #expect(!verdict.isUsable)
        }

        @Test("the transfers cover multi-packet, unaligned and not page-sized cases in separate slots")
        func transfersCoverTheCases() {
            for mtu in [256, 1024, 4096] {
                let (transfers, length) = OnDemandPagingCheck.transfers(pathMTU: mtu, pageSize: 4096)
                let writes = transfers.filter { $0.direction == .write }
                #expect(writes.contains { $0.offset % 4096 == 0 && $0.length > mtu })
                #expect(writes.contains { $0.offset % 4096 != 0 && $0.length > mtu })
                #expect(writes.contains { $0.length % 4096 != 0 })
                #expect(transfers.contains { $0.direction == .read && $0.length > mtu })
                // The first faults disjoint, inside the buffer, with untouched bytes after the last one.
                let ranges = transfers.filter { !$0.refault }.map { $0.offset..<($0.offset + $0.length) }.sorted { $0.lowerBound < $1.lowerBound }
                #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound <= $1.lowerBound })
                #expect(ranges.last!.upperBound < length)
            }
        }

        @Test("a check that cannot run is a failed verdict with the reason")
        func checkThatCannotRunFails() {
            let recording = RecordingVerbs(odp: true, simulatedODP: .refused(.invalidArgument))
            let verdict = RDMADevice(provider: recording).onDemandPaging(for: .readWrite)
            #expect(verdict == .failed(reason: "the check could not run on a memfd: \(DaxPinError.deviceFailure(device: "recording0", operation: "ibv_reg_mr(IBV_ACCESS_ON_DEMAND)", errno: .invalidArgument))"))
        }

        @Test("a device without ODP is not checked")
        func notOfferedIsNotChecked() {
            let recording = RecordingVerbs(odp: false)
            #expect(RDMADevice(provider: recording).onDemandPaging(for: .readWrite) == .notOffered)
            #expect(recording.checksRun == 0)
        }

        @Test("the plan uses ODP only when verified, and says why not")
        func planFollowsTheVerdict() {
            let dax = MemoryKind.fsDAX(fileSystem: "xfs")
            let failed = OnDemandPagingVerdict.failed(reason: "a 3072-byte RDMA WRITE ... completed successfully, but 2048 of its 3072 bytes are wrong")
            #expect(StrategyPlan(memory: dax, onDemandPaging: .verified, policy: .auto).candidates == [.onDemandPaging, .staged])
            let plan = StrategyPlan(memory: dax, onDemandPaging: failed, policy: .auto)
            #expect(plan.candidates == [.pinned, .staged])
            #expect(plan.skipped.first?.reason.contains("advertises On-Demand Paging, but it failed DaxPin's check") == true)
            #expect(plan.skipped.first?.reason.contains("2048 of its 3072 bytes are wrong") == true)
            #expect(StrategyPlan(memory: dax, onDemandPaging: failed, policy: .only(.onDemandPaging)).candidates == [])
            #expect(StrategyPlan.considersOnDemandPaging(memory: dax, policy: .auto))
            #expect(!StrategyPlan.considersOnDemandPaging(memory: .sharedMemory(fileSystem: "tmpfs"), policy: .auto))
            #expect(StrategyPlan.considersOnDemandPaging(memory: .sharedMemory(fileSystem: "tmpfs"), policy: .only(.onDemandPaging)))
        }

        @Test("a page-cache pin with a failed verdict stages instead of trusting ODP; zero copy refuses with the reason")
        func failedVerdictFallsBack() throws {
            let file = try ScratchFile(in: FileManager.default.temporaryDirectory.path, size: 64 << 10)
            var lease = try LayoutLease(path: file.path)
            guard case .pageCache = lease.memory else {
                Issue.record("expected a page-cache file in \(FileManager.default.temporaryDirectory.path), got \(lease.memory)")
                return
            }
            // A 6.5+ kernel refuses the writable pin; the device's ODP misplaces WRITEs.
            let recording = RecordingVerbs(odp: true, refusePinned: .badAddress, simulatedODP: .payloadAtPageStart)
            let device = RDMADevice(provider: recording)
            let id = try lease.pin(on: device)
            #expect(try lease.withRegion(id) { $0.strategy } == .staged)
            #expect(!recording.calls.contains { if case .register(_, onDemand: true, _) = $0 { true } else { false } })
            #expect {
                _ = try lease.pin(on: device, policy: .zeroCopy)
            } throws: { error in
                guard case DaxPinError.registrationRefused(let refusal) = error else { return false }
                let text = refusal.description
                return text.contains("on-demand paging: the device advertises On-Demand Paging, but it failed DaxPin's check")
                    && text.contains("bytes are wrong") && text.contains("Instead: place the file on tmpfs")
            }
            #expect(recording.checksRun == 1)
        }

        @Test("tmpfs pins never pay for the check; the test-only trust skips it")
        func checkOnlyWhenNeeded() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            var lease = try LayoutLease(path: file.path)
            let recording = RecordingVerbs(odp: true, simulatedODP: .payloadAtPageStart)
            let device = RDMADevice(provider: recording)
            let id = try lease.pin(on: device)
            #expect(try lease.withRegion(id) { $0.strategy } == .pinned)
            #expect(recording.checksRun == 0)
            device.trustOnDemandPagingWithoutCheck()
            let odp = try lease.pin(on: device, policy: .only(.onDemandPaging))
            #expect(try lease.withRegion(odp) { $0.strategy } == .onDemandPaging)
            #expect(recording.checksRun == 0)
        }

        @Test("the kernel table: what 6.1 and 7.2 allow")
        func kernelTable() {
            let old = KernelBehaviour(version: KernelVersion(6, 1)), new = KernelBehaviour(version: KernelVersion(7, 2))
            #expect(!old.pinsReadOnlySharedFileMappings && new.pinsReadOnlySharedFileMappings)
            #expect(old.pinsWritablePageCache && !new.pinsWritablePageCache)
            #expect(!old.rxeAdvertisesOnDemandPaging && new.rxeAdvertisesOnDemandPaging)
            #expect(!old.pinsFSDAX && !new.pinsFSDAX)
            #expect(KernelVersion(release: "7.2.13+deb14-amd64") == KernelVersion(7, 2))
            #expect(KernelVersion(release: "6.1.0-57-amd64")! < KernelVersion(6, 15))
            #expect(KernelVersion(release: "garbage") == nil)
            let pageCache = MemoryKind.pageCache(fileSystem: "ext4")
            #expect(old.refusal(of: .pinned, memory: pageCache, access: .readWrite) == nil)
            #expect(new.refusal(of: .pinned, memory: pageCache, access: .readWrite)?.errno == EFAULT)
            let forecast = StrategyForecast(path: "/srv/f", memory: pageCache, access: .readWrite, device: "rxe0",
                                            onDemandPaging: .failed(reason: "x"), policy: .auto, kernel: new)
            #expect(forecast.strategy == .staged)
            #expect(forecast.reasons.contains { $0.contains("failed DaxPin's check") })
            let oldForecast = StrategyForecast(path: "/srv/f", memory: pageCache, access: .readWrite, device: "rxe0",
                                               onDemandPaging: .notOffered, policy: .auto, kernel: old)
            #expect(oldForecast.strategy == .pinned)
        }
    }
}
