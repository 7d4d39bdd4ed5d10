@testable import DaxPin
import Foundation
import Glibc
import Testing

extension DaxPin {
    /// A process never breaks its own lease by mistake: a second lease on a file it already
    /// leases is refused before anything opens the file, and file I/O goes through the lease's
    /// own descriptor. Any open of a leased file breaks the lease, even this process's own.
    @Suite struct OwnLease {
        /// Whether the lease is still held, with no break noticed, after a pause long enough
        /// for the watcher to have revoked on a break.
        func stillHeld(_ lease: borrowing LayoutLease) -> Bool {
            usleep(100_000)
            return lease.state == .held && !lease.trace.steps.contains(.breakNoticed) && !lease.core.kernelIsBreaking()
        }

        @Test("a second lease on a leased file is refused without opening it; the first stays held")
        func secondLeaseRefused() async throws {
            for _ in 0..<3 {
                let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
                let alias = file.path + ".link"
                #expect(link(file.path, alias) == 0)
                defer { unlink(alias) }
                var first = try LayoutLease(path: file.path, access: .readWrite)
                _ = try first.pin(on: try testDevice())
                let events = first.events
                let opensBefore = openFileTargets().filter { $0 == file.path }.count
                for (path, access) in [(file.path, Access.readWrite), (file.path, .readOnly), (alias, .readWrite)] {
                    #expect(throws: DaxPinError.alreadyLeased(path: path, existingPath: file.path, existingAccess: .readWrite)) {
                        _ = try LayoutLease(path: path, access: access)
                    }
                }
                #expect(openFileTargets().filter { $0 == file.path }.count == opensBefore)
                let held = stillHeld(first)
                #expect(held)
                #expect(KernelLease.current().contains { $0.pid == getpid() && !$0.breaking })
                let trace = first.release()
                #expect(trace.reason == .released)
                var seen: [String] = []
                for await event in events {
                    if case .breakNoticed = event { seen.append("break") } else { seen.append("revoked") }
                }
                #expect(seen == ["revoked"], "the refused lease broke the first one")
                // The claim goes with the descriptor: the file can be leased again.
                let again = try LayoutLease(path: alias, access: .readWrite)
                #expect(again.kind == .write)
            }
            #expect(OwnLeases.shared.count == 0)
        }

        @Test("the refusal names the existing lease and what to do")
        func refusalText() {
            let text = DaxPinError.alreadyLeased(path: "/dev/shm/b", existingPath: "/dev/shm/a", existingAccess: .readOnly).description
            #expect(text.contains("/dev/shm/b") && text.contains("/dev/shm/a") && text.contains("read-only lease"))
            #expect(text.contains("read(into:at:)") && text.contains("release it first"))
        }

        @Test("read-only leases may share a file: a read-only open does not break a read lease")
        func readersShare() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            let first = try LayoutLease(path: file.path, access: .readOnly)
            let second = try LayoutLease(path: file.path, access: .readOnly)
            #expect(first.kind == .read && second.kind == .read)
            let bothHeld = stillHeld(first) && stillHeld(second)
            #expect(bothHeld)
            #expect(throws: DaxPinError.alreadyLeased(path: file.path, existingPath: file.path, existingAccess: .readOnly)) {
                _ = try LayoutLease(path: file.path, access: .readWrite)
            }
        }

        @Test("after a break the file can be leased again")
        func leaseAgainAfterBreak() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            let lease = try LayoutLease(path: file.path)
            let breaker = try Breaker.openForWrite(file.path)
            _ = try #require(breaker.wait())
            #expect(lease.waitUntilRevoked(timeout: .seconds(10)) != nil)
            let again = try LayoutLease(path: file.path)
            #expect(again.state == .held)
        }

        @Test("any open of a leased file by this process breaks the lease")
        func ownOpenBreaksTheLease() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            var lease = try LayoutLease(path: file.path)
            _ = try lease.pin(on: try testDevice())
            // A read-only open is enough; it blocks until the watcher has revoked.
            let fd = open(file.path, O_RDONLY | O_CLOEXEC)
            #expect(fd >= 0)
            close(fd)
            #expect(lease.waitUntilRevoked(timeout: .seconds(10)) != nil)
            #expect(lease.trace.reason == .leaseBreak)
            #expect(lease.state == .revoked(.leaseBreak))
        }

        @Test("read(into:at:) and write(_:at:) use the lease's own descriptor and keep the lease")
        func ownDescriptorIO() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 8192, fill: 0)
            var lease = try LayoutLease(path: file.path)
            let id = try lease.pin(on: try testDevice())
            try lease.write(Array("hello".utf8).span.bytes, at: 0)
            // The pinned mapping sees the bytes written through the descriptor, and back.
            try lease.withRegion(id) { region throws(DaxPinError) in
                let first = try region.withBytes { $0.unsafeLoad(fromByteOffset: 0, as: UInt8.self) }
                #expect(first == UInt8(ascii: "h"))
                try region.withMutableBytes { $0.storeBytes(of: UInt8(ascii: "W"), toByteOffset: 4096, as: UInt8.self) }
            }
            var buffer = [UInt8](repeating: 0, count: 5)
            var span = buffer.mutableSpan
            var bytes = span.mutableBytes
            #expect(try lease.read(into: &bytes, at: 0) == 5)
            #expect(buffer == Array("hello".utf8))
            var tail = [UInt8](repeating: 0, count: 16)
            var tailSpan = tail.mutableSpan
            var tailBytes = tailSpan.mutableBytes
            #expect(try lease.read(into: &tailBytes, at: 8192 - 4) == 4, "a read at the end stops at the end of the file")
            var one = [UInt8](repeating: 0, count: 1)
            var oneSpan = one.mutableSpan
            var oneBytes = oneSpan.mutableBytes
            #expect(try lease.read(into: &oneBytes, at: 4096) == 1)
            #expect(one == [UInt8(ascii: "W")])
            #expect(throws: DaxPinError.systemCall(operation: "pwrite", path: file.path, errno: .invalidArgument)) {
                try lease.write([UInt8(1)].span.bytes, at: -1)
            }
            let held = stillHeld(lease)
            #expect(held)
            let trace = lease.release()
            #expect(!trace.steps.contains(.breakNoticed))
        }

        @Test("own-descriptor I/O is refused once revoked, and writes on a read-only lease")
        func ownDescriptorIORefused() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 4096)
            let reader = try LayoutLease(path: file.path, access: .readOnly)
            #expect(throws: DaxPinError.systemCall(operation: "write through a read-only lease", path: file.path, errno: .permissionDenied)) {
                try reader.write([UInt8(1)].span.bytes, at: 0)
            }
            _ = reader.release()
            let lease = try LayoutLease(path: file.path)
            let breaker = try Breaker.truncate(file.path)
            _ = try #require(breaker.wait())
            #expect(lease.waitUntilRevoked(timeout: .seconds(10)) != nil)
            var buffer = [UInt8](repeating: 0, count: 4)
            var span = buffer.mutableSpan
            var bytes = span.mutableBytes
            #expect(throws: DaxPinError.revoked(path: file.path)) { _ = try lease.read(into: &bytes, at: 0) }
            let anonymous = LayoutLease.anonymous()
            #expect(throws: DaxPinError.self) { try anonymous.write([UInt8(1)].span.bytes, at: 0) }
        }
    }
}
