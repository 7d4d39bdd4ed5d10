@testable import DaxPin
import Glibc
import Synchronization
import Testing

extension DaxPin {
    /// The metrics the library emits through swift-metrics, read from the test process's one
    /// bootstrapped backend as deltas (the root suite is serialized, so no other test pins or
    /// revokes meanwhile). Host: recorded verbs; testbed: rxe0.
    @Suite struct MetricsEmission {
        typealias Names = DaxPinMetricNames

        @Test("pin, refusal, break, release and drop move the gauges, counters and timers")
        func pinBreakRelease() throws {
            _ = SharedTestMetrics.backend
            let recording = RecordingVerbs()
            let device = try testDevice(recording)
            let memory = ("memory", "shared-memory")
            let regionLabels = [("device", device.name), memory, ("strategy", "pinned")]
            func counter(_ name: String, _ labels: [(String, String)]) -> Int64 { SharedTestMetrics.counter(name, labels) }
            func gauge(_ name: String, _ labels: [(String, String)]) -> Double { SharedTestMetrics.gauge(name, labels) }
            SharedTestMetrics.settle()
            let before = (
                pins: counter(Names.pins, regionLabels),
                refusals: counter(Names.pinRefusals, [("device", device.name), memory, ("reason", "invalid-range")]),
                breaks: counter(Names.leaseBreaks, [memory]),
                revokedByBreak: counter(Names.revocations, [memory, ("reason", "break")]),
                released: counter(Names.revocations, [memory, ("reason", "release")]),
                dropped: counter(Names.revocations, [memory, ("reason", "dropped")]),
                stops: counter(Names.forcedStops, [memory]),
                overruns: counter(Names.quiesceOverruns, [memory]),
                leases: gauge(Names.leasesHeld, [memory]),
                regions: gauge(Names.regions, regionLabels),
                bytes: gauge(Names.pinnedBytes, regionLabels),
                breakTimes: SharedTestMetrics.timer(Names.revocationDuration, [memory, ("reason", "break")]).count,
                releaseTimes: SharedTestMetrics.timer(Names.revocationDuration, [memory, ("reason", "release")]).count,
                quiesceTimes: SharedTestMetrics.timer(Names.quiesceDuration, [memory]).count)

            // Pin two regions under a lease with a quiesce handler, and one refused pin.
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 1 << 20)
            var broken = try LayoutLease(path: file.path, options: LeaseOptions(quiesceBudget: .seconds(2)) { _ in })
            _ = try broken.pin(offset: 0, length: 64 << 10, on: device)
            _ = try broken.pin(offset: 128 << 10, length: 192 << 10, on: device)
            #expect(throws: DaxPinError.self) { try broken.pin(offset: 2 << 20, length: 4096, on: device) }
            SharedTestMetrics.settle()
            #expect(counter(Names.pins, regionLabels) - before.pins == 2)
            #expect(counter(Names.pinRefusals, [("device", device.name), memory, ("reason", "invalid-range")]) - before.refusals == 1)
            #expect(gauge(Names.leasesHeld, [memory]) - before.leases == 1)
            #expect(gauge(Names.regions, regionLabels) - before.regions == 2)
            #expect(gauge(Names.pinnedBytes, regionLabels) - before.bytes == Double(256 << 10))

            // Another process truncates: the break revokes, through the quiesce handler.
            let breaker = try Breaker.truncate(file.path)
            #expect(try #require(breaker.wait(timeout: .seconds(30))).status == 0)
            #expect(eventually { broken.state.isRevoked })
            SharedTestMetrics.settle()
            #expect(counter(Names.leaseBreaks, [memory]) - before.breaks == 1)
            #expect(counter(Names.revocations, [memory, ("reason", "break")]) - before.revokedByBreak == 1)
            let breakTimes = SharedTestMetrics.timer(Names.revocationDuration, [memory, ("reason", "break")])
            #expect(breakTimes.count - before.breakTimes == 1)
            // The timer holds the trace's own duration, from the break noticed to the close.
            #expect(breakTimes.last.map { $0 > 0 && $0 <= broken.trace.duration.nanoseconds } == true)
            #expect(SharedTestMetrics.timer(Names.quiesceDuration, [memory]).count - before.quiesceTimes == 1)
            #expect(gauge(Names.leasesHeld, [memory]) == before.leases)
            #expect(gauge(Names.regions, regionLabels) == before.regions)
            #expect(gauge(Names.pinnedBytes, regionLabels) == before.bytes)
            broken.release()  // already revoked: counted once
            SharedTestMetrics.settle()
            #expect(counter(Names.revocations, [memory, ("reason", "release")]) == before.released)

            // A release with a stop action attached, and a lease dropped without release.
            let second = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            var released = try LayoutLease(path: second.path)
            _ = try released.pin(length: 64 << 10, on: device)
            _ = released.attach { }
            SharedTestMetrics.settle()
            #expect(gauge(Names.regions, regionLabels) - before.regions == 1)
            released.release()
            do {
                let third = try ScratchFile(in: HostDirs.tmpfs, size: 4096)
                _ = try LayoutLease(path: third.path)
            }
            SharedTestMetrics.settle()
            #expect(counter(Names.revocations, [memory, ("reason", "release")]) - before.released == 1)
            #expect(counter(Names.revocations, [memory, ("reason", "dropped")]) - before.dropped == 1)
            #expect(counter(Names.forcedStops, [memory]) - before.stops == 1)
            #expect(SharedTestMetrics.timer(Names.revocationDuration, [memory, ("reason", "release")]).count - before.releaseTimes == 1)
            #expect(counter(Names.pins, regionLabels) - before.pins == 3)
            #expect(counter(Names.leaseBreaks, [memory]) - before.breaks == 1)
            #expect(counter(Names.quiesceOverruns, [memory]) == before.overruns)
            #expect(gauge(Names.regions, regionLabels) == before.regions)
            #expect(gauge(Names.leasesHeld, [memory]) == before.leases)
            if Testbed.isActive { Testbed.ran(.objectsOnly) }
        }

        @Test("a quiesce handler that overruns its budget is counted, with its duration")
        func quiesceOverrun() throws {
            _ = SharedTestMetrics.backend
            let memory = ("memory", "shared-memory")
            SharedTestMetrics.settle()
            let overruns = SharedTestMetrics.counter(Names.quiesceOverruns, [memory])
            let quiesceTimes = SharedTestMetrics.timer(Names.quiesceDuration, [memory]).count
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 4096)
            let lease = try LayoutLease(path: file.path, options: LeaseOptions(quiesceBudget: .milliseconds(50)) { _ in
                usleep(300_000)
            })
            #expect(try #require(Breaker.truncate(file.path).wait(timeout: .seconds(30))).status == 0)
            #expect(eventually { lease.state.isRevoked })
            SharedTestMetrics.settle()
            #expect(SharedTestMetrics.counter(Names.quiesceOverruns, [memory]) - overruns == 1)
            let times = SharedTestMetrics.timer(Names.quiesceDuration, [memory])
            #expect(times.count - quiesceTimes == 1)
            // Measured to the budget's end, not to the handler's return.
            #expect(times.last.map { $0 >= 50_000_000 && $0 < 300_000_000 } == true, "\(times)")
        }

        @Test("labels: memory kinds and revocation reasons are the documented, bounded values")
        func boundedLabels() {
            let kinds: [MemoryKind] = [.deviceDAX(name: "dax0.0", alignment: 2 << 20), .fsDAX(fileSystem: "ext4"),
                                       .sharedMemory(fileSystem: "tmpfs"), .sharedMemory(fileSystem: "hugetlbfs"),
                                       .pageCache(fileSystem: "xfs"), .anonymous]
            #expect(Set(kinds.map(\.metricLabel)) == Set(Names.memoryKindValues))
            let reasons = [RevocationReason.leaseBreak.metricLabel(lost: false), RevocationReason.leaseBreak.metricLabel(lost: true),
                           RevocationReason.released.metricLabel(lost: false), RevocationReason.dropped.metricLabel(lost: false)]
            #expect(Set(reasons) == Set(Names.revocationReasonValues) && reasons.count == 4)
            let errors: [DaxPinError] = [.invalidRange(path: "/p", offset: 0, length: 0, problem: .zeroLength),
                                         .revoked(path: "/p"), .noRDMADevice,
                                         .systemCall(operation: "mmap", path: "/p", errno: .noMemory),
                                         .featureUnavailable(feature: "RDMA FLUSH", reason: "r")]
            #expect(Set(errors.map(\.refusalLabel)).isSubset(of: Set(Names.refusalReasonValues)))
            #expect(errors.map(\.refusalLabel) == ["invalid-range", "revoked", "other", "system-call", "feature-unavailable"])
        }

        @Test("gauge totals: leases by memory kind, regions and bytes by device, memory and strategy")
        func gaugeTotals() {
            let leases: [UInt64: PinGauges.Lease] = [
                1: PinGauges.Lease(memory: "shared-memory", regions: [("rxe0", "pinned", 4096), ("rxe0", "pinned", 8192)]),
                2: PinGauges.Lease(memory: "fs-dax", regions: [("rxe0", "staged", 1 << 20)]),
                3: PinGauges.Lease(memory: "shared-memory", regions: []),
            ]
            let (byMemory, regions) = PinGauges.totals(of: leases)
            #expect(byMemory == ["shared-memory": 2, "fs-dax": 1])
            let pinned = regions[PinGauges.RegionKey(device: "rxe0", memory: "shared-memory", strategy: "pinned")]
            #expect(pinned?.count == 2 && pinned?.bytes == 12288)
            let staged = regions[PinGauges.RegionKey(device: "rxe0", memory: "fs-dax", strategy: "staged")]
            #expect(staged?.count == 1 && staged?.bytes == 1 << 20)
            #expect(regions.count == 2)
        }
    }
}

extension Duration {
    /// Whole nanoseconds, as swift-metrics' timers hold them.
    var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }
}
