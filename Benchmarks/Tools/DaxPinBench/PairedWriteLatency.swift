// "write-latency": DaxPin's 64 B RDMA WRITE and the raw C one (peers/write_lat.c, loaded
// from its shared-library build) measured in one process, alternating in batches. Measured
// one after the other, in separate processes, the two series drifted apart by more than
// the difference between them: a process's writes can sit in a slow spell of the emulator
// for its whole run (one boot, five rounds: the C peer's median 22, 37, 22, 36 and 36 µs).
@_spi(Benchmarks) import DaxPin
import Glibc

/// The C side: write_lat_open / write_lat_once / write_lat_close from `library`.
private struct CWriteLatency {
    typealias Open = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>) -> OpaquePointer?
    typealias Once = @convention(c) (OpaquePointer) -> Int64
    typealias Close = @convention(c) (OpaquePointer) -> Void
    let state: OpaquePointer
    let once: Once
    let close: Close

    init(library: PeerLibrary, deviceName: String, path: String) {
        let open = library.function("write_lat_open", as: Open.self)
        once = library.function("write_lat_once", as: Once.self)
        close = library.function("write_lat_close", as: Close.self)
        guard let state = open(deviceName, path) else { fail("write_lat_open failed") }
        self.state = state
    }
}

func pairedWriteLatency(library: String, deviceName: String, dir: String, iterations: Int, warmUp: Int, batch: Int) {
    let device: RDMADevice
    do { device = try RDMADevice.open(named: deviceName) } catch { fail("\(error)") }
    // DaxPin's side: what DaxPinBenchmarks' "rdma write 64B" sets up (a 1 MiB tmpfs target
    // under a lease, a 4 KiB anonymous source, two connected queue pairs).
    let targetPath = "\(dir)/daxpin-bench-write-\(getpid())"
    createFile(targetPath, size: 1 << 20)
    var target: LayoutLease, source = LayoutLease.anonymous()
    let client: QueuePair, server: QueuePair
    let local: QueuePair.LocalBuffer, remote: MemoryRegion.RemoteAccess
    do {
        target = try LayoutLease(path: targetPath)
        let targetID = try target.pin(on: device)
        remote = try target.withRegion(targetID) { $0.memoryRegion.remote }
        let sourceID = try source.pin(length: 4096, on: device)
        local = try source.withRegion(sourceID) { region in
            QueuePair.LocalBuffer(address: region.memoryRegion.remote.address, length: 64, localKey: region.memoryRegion.localKey)
        }
        (client, server) = try loopbackPair(on: device)
    } catch {
        fail("DaxPin set-up: \(error)")
    }
    let cPath = "\(dir)/daxpin-bench-write-c-\(getpid())"
    let peer = CWriteLatency(library: PeerLibrary(library), deviceName: deviceName, path: cPath)

    func daxPinWrite() -> Int64 {
        let start = monotonicNanoseconds()
        let completion: QueuePair.Completion
        do { completion = try client.write(local, to: remote, offset: 128) } catch { fail("RDMA WRITE: \(error)") }
        let elapsed = monotonicNanoseconds() - start
        guard completion == .success else { fail("RDMA WRITE: \(completion)") }
        return elapsed
    }
    for _ in 0..<warmUp {
        _ = daxPinWrite()
        _ = peer.once(peer.state)
    }
    var daxPin: [Int64] = [], c: [Int64] = []
    daxPin.reserveCapacity(iterations)
    c.reserveCapacity(iterations)
    while daxPin.count < iterations {
        let count = min(batch, iterations - daxPin.count)
        for _ in 0..<count { daxPin.append(daxPinWrite()) }
        for _ in 0..<count { c.append(peer.once(peer.state)) }
    }
    peer.close(peer.state)
    unlink(cPath)
    for value in daxPin { print("DAXPIN \(value)") }
    for value in c { print("C \(value)") }
    _ = consume server
    _ = consume client
    _ = consume source
    _ = consume target
    unlink(targetPath)
}
