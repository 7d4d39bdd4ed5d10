@testable import DaxPin
import Dispatch
import Foundation
import Glibc
import Synchronization
import Testing

extension DaxPin {
    /// Byte access does not hold the lease's bookkeeping lock: an access closure may call back
    /// into its lease, and revocation waits for a running access before it deregisters and
    /// unmaps, and lets none start afterwards.
    @Suite struct AccessGate {
        @Test("an access closure can call back into its lease: state, trace, kind, another region's bytes")
        func callBackIntoTheLease() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            var lease = try LayoutLease(path: file.path)
            let device = try testDevice()
            let first = try lease.pin(offset: 0, length: 4096, on: device)
            let second = try lease.pin(offset: 4096, length: 4096, on: device)
            let seen = try lease.withRegion(first) { region in
                try region.withBytes { bytes in
                    // Each of these takes the lease lock, which a running access must not hold.
                    #expect(!lease.state.isRevoked)
                    #expect(lease.trace.steps.isEmpty)
                    _ = lease.kind
                    return try lease.withRegion(second) { other in
                        try other.withBytes { $0.unsafeLoad(fromByteOffset: 0, as: UInt8.self) }
                    } &+ bytes.unsafeLoad(fromByteOffset: 0, as: UInt8.self)
                }
            }
            #expect(seen == 0xA5 &+ 0xA5)  // ScratchFile fills with 0xA5
            let trace = lease.release()
            #expect(trace.steps.first == .deregistered(region: 1))
        }

        @Test("a lease break waits for a running access, then deregisters while still mapped; no access starts after")
        func revocationWaitsForARunningAccess() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            let recording = RecordingVerbs()
            var lease = try LayoutLease(path: file.path)
            let id = try lease.pin(on: try testDevice(recording))
            let core = lease.core
            let entered = DispatchSemaphore(value: 0), finished = DispatchSemaphore(value: 0)
            let observed = Mutex<(intactInside: Bool, endedAt: ContinuousClock.Instant?)>((false, nil))
            DispatchQueue.global().async {
                _ = try? core.access(id.rawValue) { region in
                    entered.signal()
                    usleep(300_000)  // the break arrives meanwhile
                    let intact = isMapped(region.registered, region.length)
                        && (Testbed.isActive || recording.liveRegistrations == 1)
                    observed.withLock { $0 = (intact, .now) }
                }
                finished.signal()
            }
            #expect(entered.wait(timeout: .now() + 10) == .success)
            let breaker = try Breaker.openForWrite(file.path)
            let result = try #require(breaker.wait(timeout: .seconds(30)))
            #expect(result.status == 0)
            #expect(finished.wait(timeout: .now() + 10) == .success)
            #expect(eventually { lease.state.isRevoked })
            let (intact, endedAt) = observed.withLock { $0 }
            #expect(intact, "the region was torn down under a running access")
            let deregisteredAt = try #require(lease.trace.entries.first { $0.step == .deregistered(region: 1) }?.at)
            #expect(deregisteredAt >= (try #require(endedAt)), "deregistered before the access ended")
            #expect(throws: DaxPinError.revoked(path: file.path)) { try lease.withRegion(id) { _ in } }
            if Testbed.isActive { Testbed.ran(.objectsOnly) }
        }
    }
}
