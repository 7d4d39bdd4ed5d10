// The core demo (Scripts/demo runs it in the testbed): pin a tmpfs file region, register it
// on the RDMA device, let a peer queue pair write into it, truncate the file from another
// process, and print what happened and the revocation trace.
import DaxPin
import Dispatch
import Glibc
import Synchronization

@main
struct CoreDemo {
    static func main() throws {
        let directory = environment("DAXPIN_TMPFS_DIR") ?? "/dev/shm"
        let path = "\(directory)/daxpin-demo-\(Syscalls.processID())"
        let size = 1 << 20
        try createFile(path, size: size)
        defer { try? Syscalls.unlink(path) }

        let device = try environment("DAXPIN_RDMA_DEVICE").map { try RDMADevice.open(named: $0) } ?? RDMADevice.openFirst()
        let stop = Atomic<Bool>(false)
        let drained = DispatchSemaphore(value: 0)
        var lease = try LayoutLease(path: path, options: LeaseOptions(quiesceBudget: .seconds(5)) { request in
            print("quiesce: the kernel is breaking the lease on \(request.path); telling the peer to stop")
            stop.store(true, ordering: .releasing)
            _ = drained.wait(timeout: .now() + 4)
        })
        print("file     \(path) (\(lease.memory), \(lease.kind))")
        let id = try lease.pin(on: device)
        let remote = try lease.withRegion(id) { region in
            print("region   \(region.length) bytes, strategy \(region.strategy), rkey 0x\(String(region.memoryRegion.remote.rkey, radix: 16)) on \(device.name)")
            return region.memoryRegion.remote
        }

        // The peer: a second queue pair on the same device (rxe loops the traffic back).
        let server = try QueuePair(device: device)
        let client = try QueuePair(device: device)
        try server.connect(to: client.endpoint)
        try client.connect(to: server.endpoint)
        var source = LayoutLease.anonymous()
        let sourceID = try source.pin(length: 4096, on: device)
        let local = try source.withRegion(sourceID) { region in
            try region.withMutableBytes { bytes in
                for offset in 0..<4096 { bytes.storeBytes(of: 0x42, toByteOffset: offset, as: UInt8.self) }
            }
            return QueuePair.LocalBuffer(address: region.memoryRegion.remote.address, length: 4096, localKey: region.memoryRegion.localKey)
        }
        let written = Atomic<Int>(0)
        let peer = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            var block = 0
            while !stop.load(ordering: .acquiring), block < 10_000 {
                guard (try? client.write(local, to: remote, offset: (block % 256) * 4096)) == .success else { break }
                written.add(1, ordering: .relaxed)
                block += 1
            }
            drained.signal()
            peer.signal()
        }
        while written.load(ordering: .relaxed) < 20 { Syscalls.sleep(microseconds: 1000) }
        print("traffic  peer is writing with RDMA WRITE (\(written.load(ordering: .relaxed)) writes so far)")

        print("truncate another process truncates the file now (the kernel would wait up to \(LeaseBreakTime.current))")
        fflush(nil)  // before the child writes its line to the same stdout
        // Tools/timed-truncate, next to this binary (Scripts/demo --core builds it): it prints how
        // long its own truncate(2) blocked, without its start-up.
        let truncator = try spawn([Self.timedTruncate, path, "0"])
        try Syscalls.waitForExit(truncator)
        _ = peer.wait(timeout: .now() + 10)
        print("peer     \(written.load(ordering: .relaxed)) writes acknowledged before the break")

        let late = try client.write(local, to: remote, offset: 0, timeout: .seconds(5))
        print("peer     next RDMA WRITE after revocation: \(late)")
        print("lease    \(lease.state)")
        print("revocation trace:")
        print(lease.trace)
        lease.release()
        guard late != .success else {
            print("FAIL: a write succeeded after revocation")
            exit(1)
        }
        print("OK: nothing reached the file after revocation")
    }

    static func createFile(_ path: String, size: Int) throws {
        do throws(Errno) {
            let fd = try Syscalls.open(path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0o600)
            defer { try? Syscalls.close(fd) }
            try Syscalls.ftruncate(fd, off_t(size))
        } catch {
            throw DaxPinError.systemCall(operation: "create", path: path, errno: error)
        }
    }

    /// Tools/timed-truncate's binary, beside this one.
    static var timedTruncate: String {
        let exe = (try? Syscalls.readLink("/proc/self/exe")) ?? "."
        return String(exe[..<(exe.lastIndex(of: "/") ?? exe.endIndex)]) + "/timed_truncate"
    }

    static func spawn(_ arguments: [String]) throws -> pid_t {
        do throws(Errno) { return try Syscalls.spawn(arguments) } catch {
            throw DaxPinError.systemCall(operation: "posix_spawn", path: arguments[0], errno: error)
        }
    }
}

/// An environment variable, if set.
func environment(_ name: String) -> String? {
    Syscalls.environment(name)
}
