@testable import DaxPin
import Foundation
import Glibc
import SystemPackage
import Testing

extension DaxPin {
    /// Every bad input gets a typed error, and the process holds nothing extra afterwards
    /// (fds from /proc/self/fd, mappings from /proc/self/maps, locks from /proc/locks).
    @Suite struct BadInput {
        init() throws {
            // Start the watcher (its thread and signal handler are process-lifetime) before counting.
            let warm = try ScratchFile(in: HostDirs.tmpfs, size: 4096)
            _ = try LayoutLease(path: warm.path).release()
        }

        /// Runs `body`, expects `expected`, and checks that nothing leaked.
        func expectClean(_ expected: (DaxPinError) -> Bool, sourceLocation: SourceLocation = #_sourceLocation,
                         _ body: () throws -> Void) {
            let before = ResourceCount.now()
            do {
                try body()
                Issue.record("expected an error", sourceLocation: sourceLocation)
            } catch let error as DaxPinError {
                #expect(expected(error), "unexpected error: \(error)", sourceLocation: sourceLocation)
                #expect(!error.description.isEmpty, sourceLocation: sourceLocation)
            } catch {
                Issue.record("untyped error \(error)", sourceLocation: sourceLocation)
            }
            let after = ResourceCount.after(expecting: before)
            #expect(after == before, "resources leaked: \(after.fdDifference(from: before))", sourceLocation: sourceLocation)
        }

        @Test func nonexistentPath() {
            expectClean({ $0 == .fileNotFound(path: "/nonexistent/daxpin") }) {
                _ = try LayoutLease(path: "/nonexistent/daxpin")
            }
        }

        @Test func directory() {
            expectClean({ $0 == .unsupportedFileType(path: HostDirs.tmpfs, type: "directory") }) {
                _ = try LayoutLease(path: HostDirs.tmpfs)
            }
        }

        @Test func fifo() throws {
            let path = "\(HostDirs.tmpfs)/daxpin-fifo-\(getpid())"
            #expect(mkfifo(path, 0o600) == 0)
            defer { unlink(path) }
            expectClean({ $0 == .unsupportedFileType(path: path, type: "FIFO") }) {
                _ = try LayoutLease(path: path)
            }
        }

        @Test("remoteFlush on a read-only lease is refused before anything is mapped")
        func flushOnReadOnlyLease() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 65536)
            var lease = try LayoutLease(path: file.path, access: .readOnly)
            let device = try testDevice()
            expectClean({ if case .featureUnavailable("RDMA FLUSH", let reason) = $0 { reason.contains("read-only") } else { false } }) {
                _ = try lease.pin(length: 65536, on: device, remoteFlush: true)
            }
            _ = lease.release()
        }

        @Test("remoteFlush in a build without FLUSH names the rdma-core it needs", .enabled(if: !RDMABuildFeatures.current.flush))
        func flushWithoutBuildSupport() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 65536)
            var lease = try LayoutLease(path: file.path)
            let device = try testDevice()
            expectClean({ if case .featureUnavailable("RDMA FLUSH", let reason) = $0 { reason.contains("rdma-core 45") } else { false } }) {
                _ = try lease.pin(length: 65536, on: device, remoteFlush: true)
            }
            _ = lease.release()
        }

        @Test func otherCharacterDevice() {
            expectClean({ if case .unsupportedFileType(_, let type) = $0 { type.contains("not device-dax") } else { false } }) {
                _ = try LayoutLease(path: "/dev/null")
            }
        }

        @Test(.enabled(if: getuid() == 0, "mounting a read-only tmpfs needs root"))
        func readOnlyMount() throws {
            let dir = "\(FileManager.default.temporaryDirectory.path)/daxpin-ro-\(getpid())"
            #expect(mkdir(dir, 0o700) == 0)
            defer { rmdir(dir) }
            #expect(mount("tmpfs", dir, "tmpfs", 0, "size=1m") == 0)
            defer { umount2(dir, Int32(MNT_DETACH)) }
            let file = "\(dir)/data"
            #expect(FileManager.default.createFile(atPath: file, contents: Data(repeating: 1, count: 4096)))
            #expect(mount("tmpfs", dir, "tmpfs", UInt(MS_REMOUNT | MS_RDONLY), "size=1m") == 0)
            expectClean({ $0 == .readOnlyFileSystem(path: file) }) {
                _ = try LayoutLease(path: file, access: .readWrite)
            }
            // Read-only access works on the same file.
            let lease = try LayoutLease(path: file, access: .readOnly)
            #expect(lease.kind == .read)
        }

        @Test func rangeBeyondEndOfFile() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 8192)
            var lease = try LayoutLease(path: file.path)
            let device = try testDevice()
            expectClean({ $0 == .invalidRange(path: file.path, offset: 4096, length: 8192, problem: .beyondEnd(size: 8192)) }) {
                _ = try lease.pin(offset: 4096, length: 8192, on: device)
            }
        }

        @Test func zeroLength() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 8192)
            var lease = try LayoutLease(path: file.path)
            let device = try testDevice()
            expectClean({ $0 == .invalidRange(path: file.path, offset: 0, length: 0, problem: .zeroLength) }) {
                _ = try lease.pin(offset: 0, length: 0, on: device)
            }
            let empty = try ScratchFile(in: HostDirs.tmpfs, size: 0)
            var emptyLease = try LayoutLease(path: empty.path)
            expectClean({ $0 == .invalidRange(path: empty.path, offset: 0, length: 0, problem: .zeroLength) }) {
                _ = try emptyLease.pin(on: device)
            }
        }

        @Test func negativeAndUnalignedOffsets() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 8192)
            var lease = try LayoutLease(path: file.path)
            let device = try testDevice()
            expectClean({ $0 == .invalidRange(path: file.path, offset: -4096, length: 4096, problem: .negative) }) {
                _ = try lease.pin(offset: -4096, length: 4096, on: device)
            }
            expectClean({ $0 == .invalidRange(path: file.path, offset: 100, length: 4096, problem: .misaligned(alignment: 4096)) }) {
                _ = try lease.pin(offset: 100, length: 4096, on: device)
            }
        }

        @Test func fileOpenElsewhereInThisProcess() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 4096)
            let other = open(file.path, O_RDONLY | O_CLOEXEC)
            defer { close(other) }
            expectClean({ $0 == .fileInUse(path: file.path, lease: "write") && $0.description.contains("in this one") }) {
                _ = try LayoutLease(path: file.path, access: .readWrite)
            }
            // Readers do not conflict with a read lease.
            let reader = try LayoutLease(path: file.path, access: .readOnly)
            #expect(reader.kind == .read)
        }

        @Test func secondLeaseOnALeasedFile() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 4096)
            let first = try LayoutLease(path: file.path, access: .readOnly)
            expectClean({ $0 == .alreadyLeased(path: file.path, existingPath: file.path, existingAccess: .readOnly) }) {
                _ = try LayoutLease(path: file.path, access: .readWrite)
            }
            #expect(first.state == .held)
        }

        @Test func fileOpenElsewhereInAnotherProcess() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 4096)
            let holder = try Breaker.start(["/bin/sh", "-c", "exec 3<>\"$0\"; sleep 20", file.path])
            defer { kill(holder.pid, SIGKILL); _ = holder.wait(timeout: .seconds(5)) }
            #expect(eventually {
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(holder.pid)/fd/3")) == file.path
            })
            expectClean({ $0 == .fileInUse(path: file.path, lease: "write") }) {
                _ = try LayoutLease(path: file.path, access: .readWrite)
            }
            expectClean({ $0 == .fileInUse(path: file.path, lease: "read") }) {
                _ = try LayoutLease(path: file.path, access: .readOnly)
            }
        }

        @Test(.enabled(if: getuid() == 0, "switching /proc/sys/fs/leases-enable needs root"))
        func leasesDisabled() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 4096)
            let knob = "/proc/sys/fs/leases-enable"
            try "0".write(toFile: knob, atomically: false, encoding: .utf8)
            defer { try? "1".write(toFile: knob, atomically: false, encoding: .utf8) }
            expectClean({ if case .leaseUnavailable = $0 { true } else { false } }) {
                _ = try LayoutLease(path: file.path)
            }
        }

        @Test func noDeviceOrUnknownDevice() {
            let present = RDMADevice.availableDevices()
            if present.isEmpty {
                expectClean({ $0 == .noRDMADevice }) { _ = try RDMADevice.openFirst() }
            } else {
                // With devices present the first one opens, by the name libibverbs lists first.
                #expect((try? RDMADevice.openFirst())?.name == present.first)
            }
            expectClean({ $0 == .unknownDevice(name: "nosuch9", available: present) }) {
                _ = try RDMADevice.open(named: "nosuch9")
            }
        }

        @Test func registrationRefusedExplainsItself() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 8192)
            var lease = try LayoutLease(path: file.path)
            let device = RDMADevice(provider: RecordingVerbs(refusePinned: .notSupported))
            expectClean({ error in
                guard case .registrationRefused(let refusal) = error else { return false }
                let text = error.description
                return refusal.attempts.map(\.strategy) == [.pinned, .staged]
                    && refusal.attempts.first?.errno == .notSupported
                    && text.contains("EOPNOTSUPP") && text.contains("recording0") && text.contains("tmpfs")
                    && text.contains("Instead:")
            }) {
                _ = try lease.pin(on: device, policy: .zeroCopy)
            }
        }

        @Test func unpinTwiceAndUnknownRegion() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 8192)
            var lease = try LayoutLease(path: file.path)
            let id = try lease.pin(on: try testDevice())
            try lease.unpin(id)
            expectClean({ $0 == .regionNotFound(path: file.path, region: id.rawValue) }) {
                try lease.unpin(id)
            }
        }

        @Test func anonymousNeedsALength() throws {
            var lease = LayoutLease.anonymous()
            let device = try testDevice()
            expectClean({ if case .invalidRange(_, _, _, .zeroLength) = $0 { true } else { false } }) {
                _ = try lease.pin(on: device)
            }
        }
    }
}
