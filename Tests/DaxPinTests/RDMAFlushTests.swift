@testable import DaxPin
import Foundation
import Glibc
import Testing

extension DaxPin {
    /// Native RDMA FLUSH on real rxe: what the build, the kernel and the memory allow, for both
    /// outcomes. The stable leg builds against Debian 12's rdma-core 44 (no FLUSH), the newest
    /// leg against the newest rdma-core on Linux 7.x (FLUSH from 6.2).
    @Suite(.enabled(if: Testbed.isActive, Testbed.skipReason), .serialized) struct RDMAFlush {
        /// What this leg must find: FLUSH compiled in exactly when the headers are rdma-core 45+,
        /// and the kernel's rxe accepting the access from 6.2.
        static var build: RDMABuildFeatures { .current }
        static var kernelAcceptsFlush: Bool { KernelBehaviour.running.rxeAcceptsFlushAccess }

        /// A device-dax range no other test writes: 96 MiB in, one 2 MiB page.
        static let daxOffset = 96 << 20, daxLength = 2 << 20

        @Test("the build reports the rdma-core it loaded, FLUSH exactly from rdma-core 45, ATOMIC WRITE from 44")
        func buildFeatures() throws {
            let release = try #require(Self.build.rdmaCoreRelease, "the loaded libibverbs did not name its rdma-core release")
            #expect(Self.build.flush == (release >= 45))
            #expect(Self.build.atomicWrite, "rdma-core 44's headers already declare ibv_wr_atomic_write")
            // The testbed's legs: Debian 12's rdma-core 44 on 6.1, a newer one on the newest kernel.
            if KernelBehaviour.running.version < KernelVersion(6, 2) {
                #expect(release == 44, "the stable leg should build against Debian 12's rdma-core")
            } else {
                #expect(release >= 45, "the newest kernel's leg should build against the newest rdma-core")
            }
            #expect(Self.build.description.contains("rdma-core \(release)"))
            Testbed.ran(.objectsOnly)
        }

        @Test("an acknowledged FLUSH means the bytes are in the device-dax memory (or FLUSH is refused with the reason)")
        func flushToDeviceDAX() throws {
            let address = try Testbed.required("DAXPIN_RDMA_ADDR")
            let path = try Testbed.required("DAXPIN_DEVDAX_PATH")
            let listener = try RDMAListener(address: address)
            // Released by its deinit on every way out (a defer cannot consume it).
            var lease = try LayoutLease(path: path)
            guard Self.build.flush else {
                // Refused before anything is registered or connected, naming the fix.
                #expect {
                    _ = try lease.pin(offset: Self.daxOffset, length: Self.daxLength, on: listener.device, remoteFlush: true)
                } throws: { error in
                    guard case .featureUnavailable("RDMA FLUSH", let reason)? = error as? DaxPinError else { return false }
                    return reason.contains("rdma-core 45") && reason.contains("PKG_CONFIG_PATH") && !reason.contains("Scripts/")
                }
                #expect {
                    _ = try RDMAConnection.connect(to: address, port: listener.port, options: .init(postsFlush: true), timeout: .seconds(10))
                } throws: { error in
                    if case .featureUnavailable("RDMA FLUSH", _)? = error as? DaxPinError { true } else { false }
                }
                Testbed.ran(.refusalOnly)
                return
            }
            guard Self.kernelAcceptsFlush else {
                #expect {
                    _ = try lease.pin(offset: Self.daxOffset, length: Self.daxLength, on: listener.device, remoteFlush: true)
                } throws: { error in
                    guard case .registrationRefused(let refusal)? = error as? DaxPinError else { return false }
                    return refusal.attempts.contains { $0.errno == .invalidArgument && $0.reason.contains("does not offer RDMA FLUSH") }
                }
                Testbed.ran(.refusalOnly)
                return
            }
            let id = try lease.pin(offset: Self.daxOffset, length: Self.daxLength, on: listener.device, remoteFlush: true)
            let remote = try lease.withRegion(id) { $0.memoryRegion.remote }

            let client = Background {
                Result { () throws(DaxPinError) -> RDMAConnection in
                    try RDMAConnection.connect(to: address, port: listener.port, options: .init(postsFlush: true), timeout: .seconds(10))
                }
            }
            let server = try #require(try listener.accept(timeout: .seconds(10), options: .init(acceptsFlush: true)) { _ in
                .accept(privateData: [])
            })
            let connection = try #require(client.wait()).get()
            defer { connection.disconnect(); server.disconnect() }

            var source = LayoutLease.anonymous()
            let block = 64 << 10
            let sourceID = try source.pin(length: block, on: connection.device)
            let pattern = (0..<block).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            let local = try source.withRegion(sourceID) { region in
                try region.withMutableBytes { bytes in
                    for (offset, byte) in pattern.enumerated() { bytes.storeBytes(of: byte, toByteOffset: offset, as: UInt8.self) }
                }
                return QueuePair.LocalBuffer(address: region.memoryRegion.remote.address, length: block,
                                             localKey: region.memoryRegion.localKey)
            }
            // The accepted side was made without postsFlush: it cannot post one.
            #expect(throws: DaxPinError.featureUnavailable(
                feature: "RDMA FLUSH", reason: "the connection to \(server.peer) was made without Options.postsFlush: connect with it to post FLUSH")) {
                _ = try server.flush(remote, length: 4096)
            }
            // A FLUSH whose post fails (forced at the seam) is a typed error, and posts nothing:
            // the next FLUSH on the same queue pair completes normally.
            SyscallFaults.arm(.postSend, errno: ENOMEM)
            #expect(throws: DaxPinError.deviceFailure(device: connection.device.name, operation: "ibv_wr_complete", errno: .noMemory)) {
                _ = try connection.flush(remote, length: 4096)
            }
            SyscallFaults.disarm()
            #expect(try connection.flush(remote, length: 4096) == .success)
            // The WRITE unsignaled, the FLUSH behind it: the FLUSH's success covers both.
            try connection.postWrite(local, to: remote, offset: 8192, id: 1, signaled: false)
            #expect(try connection.flush(remote, offset: 8192, length: block) == .success)

            // The bytes, read through a mapping of the device of our own (not the registered one).
            let fd = open(path, O_RDWR | O_CLOEXEC)
            try #require(fd >= 0)
            defer { close(fd) }
            let mapped = mmap(nil, Self.daxLength, PROT_READ, MAP_SHARED, fd, off_t(Self.daxOffset))
            try #require(mapped != MAP_FAILED)
            defer { munmap(mapped, Self.daxLength) }
            let landed = Array(UnsafeRawBufferPointer(start: mapped! + 8192, count: block))
            #expect(landed == pattern)

            // A responder whose queue pair was not made to admit FLUSH refuses it: the access
            // that acceptsFlush sets before the accept answers is what the first FLUSH needs.
            let plainClient = Background {
                Result { () throws(DaxPinError) -> RDMAConnection in
                    try RDMAConnection.connect(to: address, port: listener.port, options: .init(postsFlush: true), timeout: .seconds(10))
                }
            }
            let plainServer = try #require(try listener.accept(timeout: .seconds(10)) { _ in .accept(privateData: []) })
            let plain = try #require(plainClient.wait()).get()
            let plainResult = try plain.flush(remote, offset: 8192, length: block)
            let accepting = try #require(server.responderAccess), plainAccess = try #require(plainServer.responderAccess)
            #expect(accepting.contains(.flushPersistent), "acceptsFlush: responder access 0x\(String(accepting.rawValue, radix: 16))")
            print("responder access: acceptsFlush 0x\(String(accepting.rawValue, radix: 16)), rdma_cm's default 0x\(String(plainAccess.rawValue, radix: 16)); FLUSH to the default: \(plainResult)")
            #expect((plainResult == .success) == plainAccess.contains(.flushPersistent),
                    "rdma_cm's default access 0x\(String(plainAccess.rawValue, radix: 16)) and the FLUSH's \(plainResult) disagree")
            plain.disconnect(); plainServer.disconnect()
            _ = source.release()
            _ = lease.release()
            Testbed.ran(.movedBytes)
        }

        @Test("an ATOMIC WRITE places 8 bytes whole in device-dax, a misaligned one writes nothing (or it is refused with the reason)")
        func atomicWriteToDeviceDAX() throws {
            let address = try Testbed.required("DAXPIN_RDMA_ADDR")
            let path = try Testbed.required("DAXPIN_DEVDAX_PATH")
            let listener = try RDMAListener(address: address)
            guard Self.build.atomicWrite else {
                #expect {
                    _ = try RDMAConnection.connect(to: address, port: listener.port, options: .init(postsAtomicWrite: true), timeout: .seconds(10))
                } throws: { error in
                    guard case .featureUnavailable("RDMA ATOMIC WRITE", let reason)? = error as? DaxPinError else { return false }
                    return reason.contains("rdma-core 44")
                }
                Testbed.ran(.refusalOnly)
                return
            }
            var lease = try LayoutLease(path: path)
            let flush = Self.build.flush
            let id = try lease.pin(offset: Self.daxOffset, length: Self.daxLength, on: listener.device, remoteFlush: flush)
            let remote = try lease.withRegion(id) { $0.memoryRegion.remote }
            let client = Background {
                Result { () throws(DaxPinError) -> RDMAConnection in
                    try RDMAConnection.connect(to: address, port: listener.port, options: .init(postsFlush: flush, postsAtomicWrite: true),
                                               timeout: .seconds(10))
                }
            }
            let server = try #require(try listener.accept(timeout: .seconds(10)) { _ in .accept(privateData: []) })
            let connection = try #require(client.wait()).get()
            defer { connection.disconnect(); server.disconnect() }
            // The accepted side did not ask for it.
            #expect {
                _ = try server.atomicWrite(1, to: remote, offset: 0)
            } throws: { error in
                if case .featureUnavailable("RDMA ATOMIC WRITE", let reason)? = error as? DaxPinError { reason.contains("postsAtomicWrite") } else { false }
            }

            let fd = open(path, O_RDWR | O_CLOEXEC)
            try #require(fd >= 0)
            defer { close(fd) }
            let mapped = mmap(nil, Self.daxLength, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off_t(Self.daxOffset))
            try #require(mapped != MAP_FAILED)
            let view = try #require(mapped)
            defer { munmap(view, Self.daxLength) }
            memset(view + 12288, 0x5A, 64)  // around both targets: what must stay
            let record: UInt64 = 0x1122_3344_5566_7788
            let placed = try connection.atomicWrite(record, to: remote, offset: 12288 + 8)
            guard KernelBehaviour.running.rxePlacesAtomicWrite else {
                // The headers and the provider take it (the queue pair was made with it); the
                // kernel's rxe does not know the opcode and fails the work request locally.
                #expect("\(placed)" == "failed (local QP operation error)", "\(placed)")
                #expect((0..<64).allSatisfy { view.load(fromByteOffset: 12288 + $0, as: UInt8.self) == 0x5A })
                _ = lease.release()
                Testbed.ran(.refusalOnly)
                return
            }
            #expect(placed == .success)
            if flush { #expect(try connection.flush(remote, offset: 12288, length: 64) == .success) }
            #expect(view.load(fromByteOffset: 12288 + 8, as: UInt64.self) == record)
            #expect(view.load(fromByteOffset: 12288, as: UInt64.self) == 0x5A5A_5A5A_5A5A_5A5A)
            #expect(view.load(fromByteOffset: 12288 + 16, as: UInt64.self) == 0x5A5A_5A5A_5A5A_5A5A)
            // Misaligned: the responder refuses it and writes nothing (the queue pair then errs).
            let misaligned = try connection.atomicWrite(0xFFFF_FFFF_FFFF_FFFF, to: remote, offset: 12288 + 36)
            #expect(misaligned != .success)
            #expect((32..<48).allSatisfy { view.load(fromByteOffset: 12288 + $0, as: UInt8.self) == 0x5A },
                    "a misaligned ATOMIC WRITE changed bytes")
            _ = lease.release()
            Testbed.ran(.movedBytes)
        }

        @Test("the kernel refuses FLUSH access on a tmpfs MR, and the refusal says why")
        func flushRefusedOnTmpfs() throws {
            let device = try Testbed.rdmaDevice()
            let file = try ScratchFile(in: Testbed.required("DAXPIN_TMPFS_DIR"), size: 1 << 20, fill: 0)
            var lease = try LayoutLease(path: file.path)
            let before = ResourceCount.now()
            #expect {
                _ = try lease.pin(length: 1 << 20, on: device, remoteFlush: true)
            } throws: { error in
                guard let error = error as? DaxPinError else { return false }
                if !Self.build.flush {
                    if case .featureUnavailable("RDMA FLUSH", _) = error { return true }
                    return false
                }
                guard case .registrationRefused(let refusal) = error else { return false }
                // The kernel's EINVAL, explained for tmpfs; the staged copy is never offered.
                let pinned = refusal.attempts.first { $0.strategy == .pinned }
                let staged = refusal.attempts.first { $0.strategy == .staged }
                return pinned?.errno == .invalidArgument
                    && pinned?.reason.contains("only on persistent memory") == true
                    && (staged == nil || staged?.errno == nil)
                    && refusal.advice.first?.contains("without remoteFlush") == true
            }
            #expect(ResourceCount.after(expecting: before) == before, "a refused pin left something behind")
            // Without FLUSH the same range pins.
            let id = try lease.pin(length: 1 << 20, on: device)
            #expect(try lease.withRegion(id) { $0.strategy } == .pinned)
            _ = lease.release()
            Testbed.ran(.refusalOnly)
        }
    }
}
