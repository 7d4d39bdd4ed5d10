@testable import DaxPin
import Foundation
import Glibc
import Testing

extension DaxPin {
    /// Truncate, hole punch and open-for-write by another process during sustained RDMA
    /// WRITE traffic, repeated. CI runs `DAXPIN_FAULT_TRIALS` (default 5) trials per breaker;
    /// `Scripts/reliability` runs the full count (50). The guest does not inherit the host's
    /// environment: pass the variable with `Scripts/testbed /usr/bin/env DAXPIN_FAULT_TRIALS=50 BIN ...`.
    @Suite(.enabled(if: Testbed.isActive, Testbed.skipReason)) struct FaultTrials {
        static var trials: Int { Int(Testbed.env["DAXPIN_FAULT_TRIALS"] ?? "") ?? 5 }
        static let regionSize = 256 << 10
        static let writerBlocks = 48
        static let lateBlock = 60

        @Test("breakers during traffic, repeated", arguments: LeaseBreak.Kind.allCases)
        func breakDuringTrafficTrials(kind: LeaseBreak.Kind) throws {
            let device = try Testbed.rdmaDevice()
            let directory = try Testbed.required("DAXPIN_TMPFS_DIR")
            var passed = 0
            for trial in 0..<Self.trials {
                let file = try ScratchFile(in: directory, size: Self.regionSize)
                let writer = Writer()
                var lease = try LayoutLease(path: file.path, options: LeaseOptions(quiesceBudget: .seconds(5)) { _ in
                    writer.stopAndDrain()
                })
                let id = try lease.pin(on: device)
                let remote = try lease.withRegion(id) { $0.memoryRegion.remote }
                let peer = try Peer(device: device)
                writer.start(peer, remote: remote, blocks: Self.writerBlocks)
                guard eventually(timeout: .seconds(30), { writer.ackCount >= 10 }) else {
                    Issue.record("trial \(trial): no traffic")
                    continue
                }
                let breaker = try kind.start(file.path)
                guard let result = breaker.wait(timeout: .seconds(40)) else {
                    Issue.record("trial \(trial): breaker never finished")
                    continue
                }
                let revoked = eventually { lease.state.isRevoked }
                let releasedAt = lease.trace.entries.first { $0.step == .leaseReleased }?.at
                // The breaker could only finish after the lease was released.
                let blockedUntilRelease = releasedAt.map { result.status == 0 && breaker.started < $0 } ?? false
                let drained = writer.waitFinished() && writer.state.withLock { $0.failure } == nil
                let latePattern = UInt8(0xB0 + trial % 64)  // per trial; never a writer pattern (1...150) nor the 0xA5 fill
                let late = try peer.write(block: Self.lateBlock, pattern: latePattern, to: remote)
                let bytes = try Data(contentsOf: URL(fileURLWithPath: file.path))
                let acked = writer.lastAcked
                var intact = !bytes.contains(latePattern)
                switch kind {
                case .truncate:
                    intact = intact && bytes.isEmpty
                case .openForWrite, .punchHole:
                    for block in 0..<(Self.regionSize / Peer.blockSize) {
                        let punched = kind == .punchHole && block == 0
                        let expected: UInt8 = punched ? 0 : (acked[block] ?? 0xA5)
                        let slice = bytes[(block * Peer.blockSize)..<((block + 1) * Peer.blockSize)]
                        if !slice.allSatisfy({ $0 == expected }) { intact = false }
                    }
                }
                let ok = revoked && blockedUntilRelease && drained && late == .remoteAccessError && intact
                    && result.blocked < .seconds(10)
                if ok { passed += 1 } else {
                    Issue.record("trial \(trial) (\(kind)): revoked \(revoked), blocked until release \(blockedUntilRelease), drained \(drained), late write \(late), intact \(intact), breaker \(result.blocked)")
                }
                lease.release()
            }
            print("fault trials \(kind): \(passed)/\(Self.trials) passed")
            #expect(passed == Self.trials)
            Testbed.ran(.movedBytes)
        }
    }
}
