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
/// thread from before READY until the break. After each break: "CPU <ns>", "WRITES <count>"
/// and the TRACE line, as "hold" prints them.
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
        createFile(slot.path, size: regions * regionBytes)
        let pair: (requester: QueuePair, responder: QueuePair)
        let remote: MemoryRegion.RemoteAccess
        do {
            var attempts = 0
            var lease: LayoutLease
            while true {   // the breaker's truncate may still hold the inode (see take)
                do {
                    lease = try LayoutLease(path: slot.path, options: options)
                    break
                } catch .fileInUse where attempts < 20_000 {
                    attempts += 1
                    usleep(100)
                }
            }
            var first: PinnedRegion.ID?
            for index in 0..<regions {
                let id = try lease.pin(offset: index * regionBytes, length: regionBytes, on: device)
                if first == nil { first = id }
            }
            remote = try lease.withRegion(first!) { $0.memoryRegion.remote }
            pair = try loopbackPair(on: device)
            _ = lease.attach { [pair] in
                pair.requester.moveToError()
                pair.responder.moveToError()
            }
            slot.lease = consume lease
        } catch {
            fail("lease on \(slot.path): \(error)")
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
        BackgroundWork.settle()
        print("READY \(slot.path)")
        fflush(nil)
        let cpuBefore = processCPUNanoseconds()
        guard slot.lease?.waitUntilRevoked(timeout: .seconds(60)) != nil else { fail("no revocation within 60 s") }
        _ = readLine()
        guard traffic.finished.wait(timeout: .now() + 10) == .success else { fail("the writer did not stop within 10 s") }
        BackgroundWork.settle()
        print("CPU \(processCPUNanoseconds() - cpuBefore)")
        print("WRITES \(traffic.writes.load(ordering: .relaxed))")
        printTrace(slot)
        var info = stat()
        while stat(slot.path, &info) == 0, info.st_size != 0 { usleep(100) }
        slot.lease = nil
    }
    unlink(slot.path)
    _ = sourceOwner.release()
}
