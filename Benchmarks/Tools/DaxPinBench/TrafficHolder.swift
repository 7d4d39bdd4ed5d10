// "hold-traffic": the "hold" holder whose lease has a queue pair carrying RDMA WRITEs when the
// break arrives, so that a revocation runs every step it documents: the quiesce handler stops
// the writer and waits for its WRITE in flight, the stop action moves both queue pairs to the
// error state, then deregister, unmap, unlock, close. The breaker times it as it times "hold".
@_spi(Benchmarks) import DaxPin
import Dispatch
import Glibc
import Synchronization

/// The writer's side of one lease: a flag the quiesce handler raises, and whether a WRITE is
/// in flight.
private final class TrafficState: Sendable {
    let stop = Atomic<Bool>(false)
    let inFlight = Atomic<Bool>(false)
    let writes = Atomic<Int>(0)
    let finished = DispatchSemaphore(value: 0)

    /// The quiesce handler: no new WRITE after this, and the one in flight completes (or the
    /// deadline passes; revocation then goes ahead and the stop action flushes it).
    func quiesce(_ request: QuiesceRequest) {
        stop.store(true, ordering: .sequentiallyConsistent)
        while inFlight.load(ordering: .sequentiallyConsistent), ContinuousClock.now < request.deadline {
            usleep(50)
        }
    }
}

/// `reps` breaks of one lease of `regions` regions of `regionBytes` on a tmpfs file in `dir`,
/// each with a loopback queue pair writing 4 KiB blocks into the first region from another
/// thread from before READY until the break. After each break: "WRITES <count>", then "CPU <ns>"
/// and the TRACE line, as "hold" prints them (`awaitBreak`).
func holdWithTraffic(dir: String, regions: Int, regionBytes: Int, reps: Int, deviceName: String) {
    let device: RDMADevice
    do { device = try RDMADevice.open(named: deviceName) } catch { fail("\(error)") }
    _ = LeaseWatcherThread.id
    let block = 4096
    guard regionBytes >= block else { fail("regions must hold a 4 KiB block") }
    var sourceOwner = LayoutLease.anonymous()
    let (sourceAddress, sourceKey) = pinSourceBlock(&sourceOwner, blockSize: block, on: device)
    let source = QueuePair.LocalBuffer(address: sourceAddress, length: block, localKey: sourceKey)
    let slot = Slot(path: "\(dir)/daxpin-traffic-holder-\(getpid())")
    for _ in 0..<reps {
        let traffic = TrafficState()
        var options = LeaseOptions()
        options.quiesce = { traffic.quiesce($0) }
        guard let first = take(slot, regions: regions, regionBytes: regionBytes, device: device, options: options) else {
            fail("no region to write into")
        }
        let pair: (requester: QueuePair, responder: QueuePair)
        let remote: MemoryRegion.RemoteAccess
        do {
            remote = try slot.lease!.withRegion(first) { $0.memoryRegion.remote }
            pair = try loopbackPair(on: device)
        } catch {
            fail("lease on \(slot.path): \(error)")
        }
        _ = slot.lease?.attach { [pair] in
            pair.requester.moveToError()
            pair.responder.moveToError()
        }
        let blocks = regionBytes / block
        DispatchQueue.global().async { [pair] in
            var index = 0
            while !traffic.stop.load(ordering: .sequentiallyConsistent) {
                traffic.inFlight.store(true, ordering: .sequentiallyConsistent)
                let landed = (try? pair.requester.write(source, to: remote, offset: index % blocks * block, timeout: .seconds(5))) == .success
                traffic.inFlight.store(false, ordering: .sequentiallyConsistent)
                guard landed else { break }   // stopped by the revocation
                traffic.writes.add(1, ordering: .relaxed)
                index += 1
            }
            traffic.finished.signal()
        }
        // Traffic flowing before the break is possible: some WRITEs have landed.
        let deadline = ContinuousClock.now + .seconds(30)
        while traffic.writes.load(ordering: .relaxed) < 16 {
            guard ContinuousClock.now < deadline else { fail("the writer made no progress in 30 s") }
            usleep(1_000)
        }
        awaitBreak(of: slot) {
            guard traffic.finished.wait(timeout: .now() + 10) == .success else { fail("the writer did not stop within 10 s") }
            print("WRITES \(traffic.writes.load(ordering: .relaxed))")
        }
    }
    unlink(slot.path)
    _ = sourceOwner.release()
}
