@testable import DaxPin
import Foundation
import Glibc
import Testing

extension DaxPin {
    /// What a lease break does with a staged region's bounce buffer: writes it back through the
    /// lease's descriptor before deregistration, and counts whatever it could not write.
    /// Serialized (as the whole `DaxPin` suite is): one test arms a process-wide fault of
    /// `fdatasync`, which only the write-back calls.
    @Suite(.serialized) struct StagedWriteBack {
        static let length = 64 << 10

        /// A fresh file of 0x11 bytes.
        static func file(in directory: String = HostDirs.tmpfs, name: String = #function) throws -> ScratchFile {
            try ScratchFile(in: directory, size: length, fill: 0x11, name: name)
        }

        /// A lease with one staged region over `file` (region 1), with 0x77 at byte 5 of every
        /// page of the bounce buffer (not yet in the file).
        static func stagedLease(_ file: ScratchFile, options: LeaseOptions = LeaseOptions(),
                                device: RDMADevice? = nil) throws -> LayoutLease {
            var lease = try LayoutLease(path: file.path, options: options)
            let id = try lease.pin(on: try device ?? testDevice(), policy: .only(.staged))
            try lease.withRegion(id) { region in
                #expect(region.strategy == .staged)
                try region.withMutableBytes { span in
                    for page in stride(from: 0, to: length, by: 4096) { span.storeBytes(of: 0x77, toByteOffset: page + 5, as: UInt8.self) }
                }
            }
            return lease
        }

        static func marked(_ bytes: Data, upTo end: Int) -> Bool {
            stride(from: 0, to: end, by: 4096).allSatisfy { bytes[$0 + 5] == 0x77 && bytes[$0 + 4] == 0x11 }
        }

        /// truncate(2) waits for the revocation, so the write-back sees the file's old size and
        /// writes the whole region; the truncate then removes what lies past its new size, as its
        /// caller asked. DaxPin cannot know that size during the break: nothing is reported dropped.
        @Test("a truncate break writes the whole region back, then the truncate shrinks the file")
        func truncateBreakWritesBackFirst() throws {
            let file = try Self.file()
            let lease = try Self.stagedLease(file)
            let breaker = try Breaker.truncate(file.path, to: 16 << 10)
            #expect(try #require(breaker.wait()).status == 0)
            #expect(eventually { lease.state.isRevoked })
            let trace = lease.trace
            #expect(trace.steps.contains(.wroteBack(region: 1, bytes: Self.length)), "\(trace)")
            #expect(trace.stagedBytesDropped == 0)
            let bytes = try #require(FileManager.default.contents(atPath: file.path))
            #expect(bytes.count == 16 << 10)
            #expect(Self.marked(bytes, upTo: 16 << 10))
            if Testbed.isActive { Testbed.ran(.movedBytes) }
        }

        @Test("a failed write-back (fdatasync EIO) is counted as dropped, in the trace and the revoked event")
        func failedWriteBackIsCounted() async throws {
            defer { SyscallFaults.disarm() }
            let file = try Self.file()
            let lease = try Self.stagedLease(file)
            let events = lease.events
            let memory = [("memory", lease.memory.metricLabel)]
            SharedTestMetrics.settle()
            let droppedBefore = SharedTestMetrics.counter(DaxPinMetricNames.stagedBytesDropped, memory)
            SyscallFaults.arm(.sync, errno: EIO)
            let breaker = try Breaker.openForWrite(file.path)
            #expect(try #require(breaker.wait()).status == 0)
            var revoked: RevocationTrace?
            for await event in events {  // bounded: the stream ends after .revoked
                if case .revoked(let trace) = event { revoked = trace }
            }
            let trace = try #require(revoked)
            #expect(SyscallFaults.isSpent(.sync))
            #expect(trace.steps.contains(.wroteBack(region: 1, bytes: 0)), "\(trace)")
            #expect(trace.steps.contains(.stagedBytesDropped(region: 1, bytes: Self.length, cause: .writeFailed(errno: EIO))))
            #expect(trace.stagedBytesDropped == Self.length && trace.stagedBytesWrittenBack == 0)
            #expect(trace.description.contains("staged byte(s) dropped: write-back failed"))
            // Order: counted between stopping and deregistering, like the write-back itself.
            let dropped = try #require(trace.steps.firstIndex { if case .stagedBytesDropped = $0 { true } else { false } })
            #expect(dropped < trace.steps.firstIndex(of: .deregistered(region: 1))!)
            // The metrics come after the events (on the revoking thread, after F_UNLCK).
            #expect(eventually {
                SharedTestMetrics.settle()
                return SharedTestMetrics.counter(DaxPinMetricNames.stagedBytesDropped, memory) - droppedBefore == Int64(Self.length)
            })
        }

        @Test("with writeBackStagedOnBreak off nothing is written back and every staged byte is counted")
        func writeBackOffCountsEverything() throws {
            var options = LeaseOptions()
            options.writeBackStagedOnBreak = false
            let file = try Self.file()
            let lease = try Self.stagedLease(file, options: options)
            let breaker = try Breaker.openForWrite(file.path)
            #expect(try #require(breaker.wait()).status == 0)
            #expect(eventually { lease.state.isRevoked })
            let trace = lease.trace
            #expect(trace.steps.contains(.stagedBytesDropped(region: 1, bytes: Self.length, cause: .writeBackOff)), "\(trace)")
            #expect(trace.stagedBytesDropped == Self.length)
            let bytes = try #require(FileManager.default.contents(atPath: file.path))
            #expect(bytes[5] == 0x11)
        }

        @Test("release does not write back: that is the application's call")
        func releaseLeavesWriteBackToTheApplication() throws {
            let file = try Self.file()
            let lease = try Self.stagedLease(file)
            let trace = lease.release()
            #expect(trace.steps == [.deregistered(region: 1), .unmapped(region: 1), .leaseReleased, .closed])
            let bytes = try #require(FileManager.default.contents(atPath: file.path))
            #expect(bytes[5] == 0x11)
        }

        /// The real thing: a peer's RDMA WRITE into a staged region on tmpfs, ext4-dax and
        /// xfs-dax, then another process opens the file (a plain read open). The break stops
        /// the peer's queue pair, writes the region back and only then lets the open return:
        /// what the breaker reads has the peer's block.
        @Test("a peer's RDMA WRITE into a staged region survives an open by another process",
              .enabled(if: Testbed.isActive, Testbed.skipReason))
        func rdmaWriteSurvivesAnOpenBreak() throws {
            let device = try Testbed.rdmaDevice()
            for directory in [HostDirs.tmpfs] + HostDirs.others {
                let file = try Self.file(in: directory)
                let lease = try Self.stagedLease(file, device: device)
                let id = PinnedRegion.ID(rawValue: 1)
                let peer = try Peer(device: device)
                _ = lease.attach { peer.requester.moveToError() }
                let remote = try lease.withRegion(id) { $0.memoryRegion.remote }
                #expect(try peer.write(block: 3, pattern: 0x5C, to: remote) == .success, "\(directory)")
                let copy = file.path + ".read"
                defer { unlink(copy) }
                let breaker = try Breaker.readCopy(file.path, into: copy)
                #expect(try #require(breaker.wait()).status == 0)
                #expect(eventually { lease.state.isRevoked })
                let trace = lease.trace
                #expect(trace.steps == [.breakNoticed, .queuePairsStopped(count: 1), .wroteBack(region: 1, bytes: Self.length),
                                        .deregistered(region: 1), .unmapped(region: 1), .leaseReleased, .closed], "\(directory): \(trace)")
                let read = try #require(FileManager.default.contents(atPath: copy))
                #expect(read.count == Self.length)
                let block = read[3 * 4096..<4 * 4096]
                #expect(block.allSatisfy { $0 == 0x5C }, "\(directory): the peer's block is not in the file")
                #expect(Self.marked(read, upTo: 3 * 4096) && read[4 * 4096 + 5] == 0x77, "\(directory)")
                // After revocation the peer's RDMA reaches nothing.
                #expect((try? peer.write(block: 0, pattern: 0x66, to: remote)) != .success)
            }
            Testbed.ran(.movedBytes)
        }
    }
}
