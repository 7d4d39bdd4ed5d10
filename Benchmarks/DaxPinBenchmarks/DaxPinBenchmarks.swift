// In-process DaxPin measurements (package-benchmark). They need the testbed: an RDMA device
// (DAXPIN_RDMA_DEVICE), a tmpfs (DAXPIN_TMPFS_DIR) and device-dax (DAXPIN_DEVDAX_PATH);
// Benchmarks/run-in-testbed runs them there through BenchmarkTool.
import Benchmark
@_spi(Benchmarks) import DaxPin
import Glibc

/// 256 MiB, the size the C and librpma peers register too.
let pinBytes = 256 << 20

/// State created once per process: leases are noncopyable, so they live in a class.
final class Fixture: @unchecked Sendable {
    // Only the benchmark thread touches it, one benchmark at a time.
    static let shared = Fixture()
    /// An environment variable, if set.
    func environment(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
    lazy var device: RDMADevice = {
        do { return try RDMADevice.open(named: environment("DAXPIN_RDMA_DEVICE") ?? "rxe0") } catch { fatalError("\(error)") }
    }()
    var tmpfsLease: LayoutLease?
    var devdaxLease: LayoutLease?
    var writeTarget: LayoutLease?
    var writeSource: LayoutLease?
    var pair: (client: QueuePair, server: QueuePair, local: QueuePair.LocalBuffer, remote: MemoryRegion.RemoteAccess)?

    func tmpfsPath(_ name: String, size: Int) -> String {
        let path = "\(environment("DAXPIN_TMPFS_DIR") ?? "/dev/shm")/\(name)"
        let fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        precondition(fd >= 0 && ftruncate(fd, off_t(size)) == 0, "cannot create \(path)")
        close(fd)
        return path
    }

    /// Pins and registers `pinBytes`, then unpins; only the pin is measured, from a settled
    /// library (the previous unpin's pin-registry write, due a few milliseconds later, would
    /// otherwise land inside this pin: a cost of the unpin, not of the pin).
    func pinOnce(_ lease: inout LayoutLease, _ benchmark: Benchmark) {
        do {
            BackgroundWork.settle()
            benchmark.startMeasurement()
            let id = try lease.pin(offset: 0, length: pinBytes, on: device)
            benchmark.stopMeasurement()
            try lease.unpin(id)
        } catch {
            fatalError("pin: \(error)")
        }
    }

    func connect() throws {
        let target = tmpfsPath("daxpin-bench-write", size: 1 << 20)
        var lease = try LayoutLease(path: target)
        let targetID = try lease.pin(on: device)
        let remote = try lease.withRegion(targetID) { $0.memoryRegion.remote }
        var source = LayoutLease.anonymous()
        let sourceID = try source.pin(length: 4096, on: device)
        let local = try source.withRegion(sourceID) { region in
            QueuePair.LocalBuffer(address: region.memoryRegion.remote.address, length: 64, localKey: region.memoryRegion.localKey)
        }
        let server = try QueuePair(device: device), client = try QueuePair(device: device)
        try server.connect(to: client.endpoint)
        try client.connect(to: server.endpoint)
        writeTarget = consume lease
        writeSource = consume source
        pair = (client, server, local, remote)
    }
}

let benchmarks: @Sendable () -> Void = {
    // Microseconds: in milliseconds the percentiles are whole numbers, a 2 % step at ~55 ms.
    let throughput = Benchmark.Configuration(
        metrics: [.wallClock], timeUnits: .microseconds, warmupIterations: 1,
        maxDuration: .seconds(120), maxIterations: 9)

    Benchmark("pin+register 256MiB tmpfs", configuration: throughput) { benchmark in
        let fixture = Fixture.shared
        if fixture.tmpfsLease == nil {
            do { fixture.tmpfsLease = try LayoutLease(path: fixture.tmpfsPath("daxpin-bench-pin", size: pinBytes)) } catch { fatalError("\(error)") }
        }
        fixture.pinOnce(&fixture.tmpfsLease!, benchmark)
    }

    Benchmark("pin+register 256MiB device-dax", configuration: throughput) { benchmark in
        let fixture = Fixture.shared
        guard let path = fixture.environment("DAXPIN_DEVDAX_PATH") else { fatalError("DAXPIN_DEVDAX_PATH is not set") }
        if fixture.devdaxLease == nil {
            do { fixture.devdaxLease = try LayoutLease(path: path) } catch { fatalError("\(error)") }
        }
        fixture.pinOnce(&fixture.devdaxLease!, benchmark)
    }

    Benchmark("rdma write 64B", configuration: .init(
        metrics: [.wallClock], timeUnits: .nanoseconds, warmupIterations: 200,
        maxDuration: .seconds(60), maxIterations: 5000)) { benchmark in
        let fixture = Fixture.shared
        if fixture.pair == nil {
            do { try fixture.connect() } catch { fatalError("connect: \(error)") }
        }
        let (client, _, local, remote) = fixture.pair!
        benchmark.startMeasurement()
        let completion = try client.write(local, to: remote, offset: 128)
        benchmark.stopMeasurement()
        precondition(completion == .success, "RDMA WRITE: \(completion)")
    }
}
