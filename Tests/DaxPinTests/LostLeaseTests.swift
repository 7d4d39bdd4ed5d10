@testable import DaxPin
import Dispatch
import Foundation
import Glibc
import Synchronization
import Testing

extension DaxPin {
    /// A lease the kernel took back (lease-break-time ran out before the revocation finished) is
    /// reported as lost, never as released, and everything under it is still torn down.
    @Suite(.serialized) struct LostLease {
        /// Holds a byte access to `region` for 2.5 s on another thread, so that a revocation
        /// waits for it; returns once the access has begun, with the signal of its end.
        static func holdAccess(_ core: LeaseCore, region: Int) -> DispatchSemaphore {
            let entered = DispatchSemaphore(value: 0), finished = DispatchSemaphore(value: 0)
            DispatchQueue.global().async {
                _ = try? core.access(region) { _ in
                    entered.signal()
                    usleep(2_500_000)
                }
                finished.signal()
            }
            #expect(entered.wait(timeout: .now() + 10) == .success)
            return finished
        }

        @Test("F_UNLCK finding no lease (forced EAGAIN) records leaseLost, not leaseReleased")
        func forcedLostLease() throws {
            defer { SyscallFaults.disarm() }
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            var lease = try LayoutLease(path: file.path)
            _ = try lease.pin(length: 4096, on: try testDevice())
            SyscallFaults.arm(.setLease, errno: EAGAIN)
            let trace = lease.release()
            #expect(trace.steps == [.deregistered(region: 1), .unmapped(region: 1), .leaseLost, .closed])
            #expect(trace.leaseWasLost)
            #expect(trace.description.contains("lease lost"))
        }

        /// The real kernel: with `lease-break-time` at 1 s, a byte access that runs for 2.5 s
        /// holds the revocation up past it; the kernel drops the lease and the breaker's open
        /// returns while the MR is still registered. DaxPin then deregisters, unmaps and reports
        /// the lease lost.
        @Test("the kernel drops the lease after lease-break-time: the break is reported as lost, the MR deregistered",
              .enabled(if: Testbed.isActive, Testbed.skipReason))
        func kernelDropsTheLease() throws {
            let knob = "/proc/sys/fs/lease-break-time"
            let saved = readTextFile(knob).trimmingCharacters(in: " \n")
            try "1\n".write(toFile: knob, atomically: false, encoding: .utf8)
            defer { try? "\(saved)\n".write(toFile: knob, atomically: false, encoding: .utf8) }
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            var lease = try LayoutLease(path: file.path, options: LeaseOptions(quiesceBudget: .milliseconds(100)))
            let id = try lease.pin(length: 4096, on: try Testbed.rdmaDevice())
            let core = lease.core
            let finished = Self.holdAccess(core, region: id.rawValue)
            let breaker = try Breaker.openForWrite(file.path)
            let result = try #require(breaker.wait(timeout: .seconds(30)))
            // The kernel let the breaker go after about lease-break-time, not after the revocation.
            #expect(result.blocked < .milliseconds(2_400), "breaker blocked \(result.blocked)")
            #expect(finished.wait(timeout: .now() + 10) == .success)
            #expect(eventually { lease.state.isRevoked })
            let trace = lease.trace
            #expect(trace.leaseWasLost, "\(trace)")
            #expect(trace.steps.contains(.deregistered(region: 1)) && trace.steps.contains(.unmapped(region: 1)))
            #expect(!trace.steps.contains(.leaseReleased))
            Testbed.ran(.objectsOnly)
        }

        /// A truncate that went through because the kernel dropped the lease (lease-break-time
        /// 1 s, an access closure of 2.5 s holding the revocation up): when DaxPin gets to the
        /// staged write-back the file is already 16 KiB. Nothing is written (it is past the
        /// deadline, and the breaker may own the file now), nothing grows the file again, and
        /// every staged byte is reported: the 48 KiB past the new end as such, the rest as late.
        @Test("a truncate after the kernel dropped the lease: the staged bytes past the new size are reported dropped",
              .enabled(if: Testbed.isActive, Testbed.skipReason))
        func truncateReportsDroppedStagedBytes() throws {
            let knob = "/proc/sys/fs/lease-break-time"
            let saved = readTextFile(knob).trimmingCharacters(in: " \n")
            try "1\n".write(toFile: knob, atomically: false, encoding: .utf8)
            defer { try? "\(saved)\n".write(toFile: knob, atomically: false, encoding: .utf8) }
            let length = 64 << 10, newSize = 16 << 10
            let file = try ScratchFile(in: HostDirs.tmpfs, size: length, fill: 0x11)
            var lease = try LayoutLease(path: file.path, options: LeaseOptions(quiesceBudget: .milliseconds(100)))
            let id = try lease.pin(on: try Testbed.rdmaDevice(), policy: .only(.staged))
            try lease.withRegion(id) { region in
                try region.withMutableBytes { $0.storeBytes(of: 0x77, toByteOffset: 5, as: UInt8.self) }
            }
            // The truncating process is started (and its Python up) before the access begins.
            let trigger = file.path + ".go"
            defer { unlink(trigger); unlink(trigger + ".ready") }
            let breaker = try Breaker.truncateWhenTold(file.path, to: newSize, trigger: trigger)
            try #require(eventually(timeout: .seconds(30)) { access(trigger + ".ready", F_OK) == 0 }, "the breaker never started")
            let core = lease.core
            let finished = Self.holdAccess(core, region: id.rawValue)
            let told = ContinuousClock.now
            #expect(FileManager.default.createFile(atPath: trigger, contents: nil))
            let result = try #require(breaker.wait(timeout: .seconds(30)))
            // The kernel let the truncate go after about lease-break-time, not after the revocation.
            let blocked = told.duration(to: .now)
            #expect(result.status == 0 && blocked < .milliseconds(2_400), "breaker: \(result), \(blocked) after the trigger")
            #expect(finished.wait(timeout: .now() + 10) == .success)
            #expect(eventually { lease.state.isRevoked })
            let trace = lease.trace
            #expect(trace.leaseWasLost, "\(trace)")
            #expect(trace.steps.contains(.stagedBytesDropped(region: 1, bytes: length - newSize, cause: .pastEndOfFile(size: newSize))), "\(trace)")
            #expect(trace.steps.contains(.stagedBytesDropped(region: 1, bytes: newSize, cause: .deadline)), "\(trace)")
            #expect(trace.stagedBytesDropped == length && trace.stagedBytesWrittenBack == 0)
            #expect(file.size == newSize, "the write-back grew the truncated file again")
            Testbed.ran(.objectsOnly)
        }
    }
}
