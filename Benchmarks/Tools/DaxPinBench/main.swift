// Cross-process and long-running DaxPin measurements that package-benchmark cannot express
// (Benchmarks/run-in-testbed runs them inside the testbed):
//
//   DaxPinBench hold DIR FILES REGIONS REGION_BYTES REPS DEVICE
//       Lease holder for Benchmarks/peers/breaker.c: FILES leases on FILES tmpfs files,
//       REGIONS regions of REGION_BYTES each, pinned on DEVICE. Prints "MEM <bytes>" (heap
//       growth per lease, RssAnon), then REPS times "READY <path>" and waits until the
//       breaker's truncate has made DaxPin revoke that lease, then "CPU <ns>" (the process's
//       CPU time from READY to the end of that revocation) and leases that file again.
//   DaxPinBench hold-traffic DIR REGIONS REGION_BYTES REPS DEVICE
//       As "hold" with one lease, whose queue pairs carry RDMA WRITEs when the break arrives
//       (TrafficHolder.swift); also prints "WRITES <count>" after each break.
//   DaxPinBench hold-c LIBRARY DIR REGIONS REGION_BYTES REPS DEVICE
//       The raw C holder (peers/lease_holder.c built as LIBRARY, its main renamed
//       lease_holder_main) run inside this Swift process, after DaxPin has started its watcher
//       and taken and revoked one lease: the C sequence with this process's state around it.
//   DaxPinBench write-latency LIBRARY DEVICE DIR ITERATIONS WARMUP BATCH
//       64 B RDMA WRITE, post to completion, paired: DaxPin's QueuePair.write (the
//       package-benchmark "rdma write 64B" set-up) and the raw C sequence of peers/write_lat.c
//       (built as LIBRARY) in this one process, alternating BATCH writes each, so that the
//       emulator's slow and fast spells fall on both alike. Prints WARMUP unrecorded writes of
//       each first, then ITERATIONS lines "DAXPIN <ns>" and as many "C <ns>".
//   DaxPinBench pin-paired LIBRARY DIR DEVDAX BYTES ITERATIONS DEVICE ADDR
//       Pin + register BYTES on a tmpfs file in DIR, then on DEVDAX: DaxPin's lease.pin and
//       the raw C and librpma sequences of peers/pin_register.c (built as LIBRARY) in this
//       one process, one of each per iteration in a rotating order, after one unrecorded
//       each. Prints "<tmpfs|devdax> <DAXPIN|RAW|RPMA> <seconds>" lines.
//   DaxPinBench durable-paired LIBRARY ADDR DAXPIN_PORT RPMA_PORT BLOCK_SIZE BATCHES BATCH WARMUP
//       Durable writes (write + persist ack, queue depth 1): DaxPin's client of daxpin-server
//       (--direct-write-to-pmem) at ADDR:DAXPIN_PORT and librpma's of rpma_durable's server at
//       ADDR:RPMA_PORT (peers/rpma_durable.c built as LIBRARY) in this one process, WARMUP
//       unrecorded blocks each, then BATCHES pairs of BATCH blocks each, in an order that flips
//       every pair. Prints "DAXPIN <bytes/s>" and "RPMA <bytes/s>" per pair.
//   DaxPinBench flush-paired LIBRARY ADDR PORT BLOCK_SIZE C_OFFSET BATCHES BATCH WARMUP [FIRST]
//       Durable writes with native RDMA FLUSH (WRITE + FLUSH in one batch, queue depth 1):
//       DaxPin's client and the raw-verbs C one (peers/flush_durable.c built as LIBRARY), both
//       of one daxpin-server --persist-method flush at ADDR:PORT, DaxPin below C_OFFSET in the
//       export and C from it, in this one process, WARMUP unrecorded blocks each, then BATCHES
//       pairs of BATCH blocks each, in an order that flips every pair. FIRST (daxpin, the
//       default, or c) is the client that connects first. Prints "DAXPIN <bytes/s>" and
//       "C <bytes/s>" per pair.
//   DaxPinBench hold-odp DIR FILES REGIONS REGION_BYTES REPS DEVICE
//       As hold, with every region registered with On-Demand Paging (check passed over:
//       see OnDemandPagingBench.swift): the revocation row of an ODP region.
//   DaxPinBench odp-pin TMPFS_DIR FSDAX_DIR DEVDAX BYTES ITERATIONS DEVICE
//   DaxPinBench odp-first-touch TMPFS_DIR BYTES ROUNDS DEVICE
//   DaxPinBench odp-check DEVICE
//       The On-Demand Paging rows (OnDemandPagingBench.swift says what each prints).
//   DaxPinBench zero-copy-write FSDAX_DIR BYTES BLOCK ROUNDS DEVICE
//   DaxPinBench zero-copy-durable FSDAX_DIR BYTES BLOCK BLOCKS ROUNDS DEVICE
//   DaxPinBench zero-copy-first-touch FSDAX_DIR BYTES ROUNDS DEVICE
//   DaxPinBench zero-copy-check DEVICE FSDAX_DIR
//   DaxPinBench zero-copy-pin FSDAX_DIR TMPFS_DIR BYTES ROUNDS DEVICE
//       The zero-copy rows, for a kernel whose rxe passes DaxPin's ODP check
//       (ZeroCopyBench.swift says what each prints; Benchmarks/targets.json declares them, report zero-copy).
//   DaxPinBench idle DIR LEASES SECONDS DEVICE
//       Holds LEASES leases (one 4 KiB pin each) for SECONDS and prints the CPU ticks the
//       lease watcher thread used meanwhile: "WATCHER_TICKS <n>" and "PROCESS_TICKS <n>".
@_spi(Benchmarks) @_spi(Testing) import DaxPin
import Glibc

final class Slot: @unchecked Sendable {
    // Touched by the main thread only; a class because leases are noncopyable.
    let path: String
    var lease: LayoutLease?
    init(path: String) { self.path = path }
}

func fail(_ message: String) -> Never {
    let text = "DaxPinBench: \(message)\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
    exit(1)
}

/// CLOCK_MONOTONIC in nanoseconds: the clock the C peers and the breaker stamp with.
func monotonicNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

/// User + system CPU time of the whole process (every thread), in nanoseconds.
func processCPUNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

func createFile(_ path: String, size: Int) {
    let fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
    guard fd >= 0, ftruncate(fd, off_t(size)) == 0 else { fail("cannot create \(path): errno \(errno)") }
    close(fd)
}

/// A field of /proc/self/status in kB, as bytes.
func statusBytes(_ field: String) -> Int {
    guard let file = fopen("/proc/self/status", "r") else { return 0 }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 512)
    while fgets(&line, 512, file) != nil {
        let text = line.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        if text.hasPrefix(field + ":") {
            let digits = text.split(separator: " ").compactMap { Int($0) }
            return (digits.first ?? 0) * 1024
        }
    }
    return 0
}

/// utime + stime (clock ticks) of /proc/self/task/TID/stat, or of the process for nil.
func cpuTicks(thread: Int32?) -> Int {
    let path = thread.map { "/proc/self/task/\($0)/stat" } ?? "/proc/self/stat"
    guard let file = fopen(path, "r") else { fail("cannot read \(path)") }
    defer { fclose(file) }
    var buffer = [CChar](repeating: 0, count: 4096)
    guard fgets(&buffer, 4096, file) != nil else { fail("cannot read \(path)") }
    let text = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    // Fields after the ")" that closes comm: state is field 3, utime 14, stime 15.
    guard let close = text.lastIndex(of: ")") else { fail("bad \(path)") }
    let fields = text[text.index(after: close)...].split(separator: " ")
    return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
}

/// Leases `slot`'s file (made `regions * regionBytes` long) with `options` and pins it as
/// `regions` regions; returns the first region's id (nil without regions).
@discardableResult
func take(_ slot: Slot, regions: Int, regionBytes: Int, device: RDMADevice, policy: StrategyPolicy = .auto,
          options: LeaseOptions = LeaseOptions()) -> PinnedRegion.ID? {
    createFile(slot.path, size: regions * regionBytes)
    do {
        // The breaker's truncate may still hold the inode for writing: the kernel then
        // refuses the new write lease (EAGAIN, .fileInUse) for a moment. Retry briefly.
        var attempts = 0
        var lease: LayoutLease
        while true {
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
            let id = try lease.pin(offset: index * regionBytes, length: regionBytes, on: device, policy: policy)
            first = first ?? id
        }
        slot.lease = consume lease
        return first
    } catch {
        fail("lease on \(slot.path): \(error)")
    }
}

/// One break of `slot`'s lease as the breaker drives it: from a steady state (the pin registry
/// has written the lease, as for a lease held a while) "READY <path>", then block until the
/// watcher has revoked it, like the C holder blocks in sigwaitinfo (polling would compete for
/// the emulated CPUs). The breaker writes a line once its truncate has returned: nothing of
/// this holder's own (`afterBreak`, the trace, the next lease) may compete with it before.
/// Then "CPU <ns>" (the whole process's CPU time for this break, the registry's write of it
/// included) and the TRACE line; returns once the truncate's new size shows (the sign when
/// there is no breaker), the lease dropped.
func awaitBreak(of slot: Slot, afterBreak: () -> Void = {}) {
    BackgroundWork.settle()
    print("READY \(slot.path)")
    fflush(nil)
    let cpuBefore = processCPUNanoseconds()
    guard slot.lease?.waitUntilRevoked(timeout: .seconds(60)) != nil else { fail("no revocation within 60 s") }
    _ = readLine()
    afterBreak()
    BackgroundWork.settle()
    print("CPU \(processCPUNanoseconds() - cpuBefore)")
    printTrace(slot)
    var info = stat()
    while stat(slot.path, &info) == 0, info.st_size != 0 { usleep(100) }
    slot.lease = nil
}

/// "TRACE <noticed> <deregistered> <unmapped> <released> <closed>" (the last region's steps): CLOCK_MONOTONIC nanoseconds of those steps, so the
/// breaker's own timestamps split its wait into signal delivery, teardown and wake-up.
func printTrace(_ slot: Slot) {
    guard let trace = slot.lease?.trace else { return }
    let nowNs = monotonicNanoseconds()
    let now = ContinuousClock.now
    func ns(_ matches: (RevocationTrace.Step) -> Bool) -> Int64 {
        guard let at = trace.entries.last(where: { matches($0.step) })?.at else { return 0 }
        let (seconds, attoseconds) = at.duration(to: now).components
        return nowNs - (seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
    print("TRACE \(ns { $0 == .breakNoticed }) \(ns { if case .deregistered = $0 { true } else { false } }) "
        + "\(ns { if case .unmapped = $0 { true } else { false } }) \(ns { $0 == .leaseReleased }) \(ns { $0 == .closed })")
}

func isRevoked(_ slot: Slot) -> Bool {
    guard let state = slot.lease?.state else { return true }
    if case .revoked = state { return true }
    return false
}

let arguments = Array(CommandLine.arguments.dropFirst())
if MetricsBackend.bootstrapIfRequested() { _ = write(2, "DaxPinBench: metrics backend bootstrapped\n", 42) }
switch arguments.first {
case "hold" where arguments.count == 7, "hold-odp" where arguments.count == 7:
    let dir = arguments[1]
    guard let files = Int(arguments[2]), let regions = Int(arguments[3]),
          let regionBytes = Int(arguments[4]), let reps = Int(arguments[5]) else { fail("bad numbers") }
    let device: RDMADevice
    do { device = try RDMADevice.open(named: arguments[6]) } catch { fail("\(error)") }
    let odp = arguments[0] == "hold-odp"
    if odp { device.trustOnDemandPagingWithoutCheck() }
    let policy: StrategyPolicy = odp ? .only(.onDemandPaging) : .auto
    let slots = (0..<files).map { Slot(path: "\(dir)/daxpin-holder-\(getpid())-\($0)") }
    _ = LeaseWatcherThread.id  // start the watcher before measuring memory
    let before = (rss: statusBytes("RssAnon"), pinned: statusBytes("VmPin"))
    for slot in slots { take(slot, regions: regions, regionBytes: regionBytes, device: device, policy: policy) }
    let after = (rss: statusBytes("RssAnon"), pinned: statusBytes("VmPin"))
    print("MEM \((after.rss - before.rss) / files)")
    print("VMPIN \((after.pinned - before.pinned) / files)")
    for rep in 0..<reps {
        let slot = slots[(rep * 7919) % files]  // spread the breaks over the files
        awaitBreak(of: slot)
        take(slot, regions: regions, regionBytes: regionBytes, device: device, policy: policy)
    }
    for slot in slots {
        slot.lease = nil
        unlink(slot.path)
    }
case "hold-traffic" where arguments.count == 6:
    guard let regions = Int(arguments[2]), let regionBytes = Int(arguments[3]), let reps = Int(arguments[4]),
          regions > 0, reps > 0 else { fail("bad numbers") }
    holdWithTraffic(dir: arguments[1], regions: regions, regionBytes: regionBytes, reps: reps, deviceName: arguments[5])
case "hold-c" where arguments.count == 7:
    let device: RDMADevice
    do { device = try RDMADevice.open(named: arguments[6]) } catch { fail("\(error)") }
    _ = LeaseWatcherThread.id
    let warmUp = Slot(path: "\(arguments[2])/daxpin-warm-\(getpid())")
    take(warmUp, regions: 1, regionBytes: 65536, device: device)
    warmUp.lease = nil
    unlink(warmUp.path)
    BackgroundWork.settle()
    typealias CMain = @convention(c) (Int32, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32
    let holderMain = PeerLibrary(arguments[1]).function("lease_holder_main", as: CMain.self)
    let cArguments = ["lease_holder"] + arguments[2...]
    var argv: [UnsafeMutablePointer<CChar>?] = cArguments.map { strdup($0) } + [nil]
    exit(holderMain(Int32(cArguments.count), &argv))
case "write-latency" where arguments.count == 7:
    guard let iterations = Int(arguments[4]), let warmUp = Int(arguments[5]), let batch = Int(arguments[6]),
          iterations > 0, warmUp >= 0, batch > 0 else { fail("bad numbers") }
    pairedWriteLatency(library: arguments[1], deviceName: arguments[2], dir: arguments[3],
                       iterations: iterations, warmUp: warmUp, batch: batch)
case "pin-paired" where arguments.count == 8:
    guard let bytes = Int(arguments[4]), let iterations = Int(arguments[5]), bytes > 0, iterations > 0 else { fail("bad numbers") }
    pairedPin(library: arguments[1], dir: arguments[2], devdaxPath: arguments[3], bytes: bytes, iterations: iterations,
              deviceName: arguments[6], address: arguments[7])
case "durable-paired" where arguments.count == 9:
    guard let daxPinPort = UInt16(arguments[3]), let rpmaPort = UInt16(arguments[4]), let blockSize = Int(arguments[5]),
          let batches = Int(arguments[6]), let batch = Int(arguments[7]), let warmUp = Int(arguments[8]),
          blockSize > 0, batches > 0, batch > 0, warmUp >= 0 else { fail("bad numbers") }
    pairedDurable(library: arguments[1], address: arguments[2], daxPinPort: daxPinPort, rpmaPort: rpmaPort,
                  blockSize: blockSize, batches: batches, batch: batch, warmUp: warmUp)
case "flush-paired" where arguments.count == 9 || arguments.count == 10:
    guard let port = UInt16(arguments[3]), let blockSize = Int(arguments[4]), let cOffset = Int(arguments[5]),
          let batches = Int(arguments[6]), let batch = Int(arguments[7]), let warmUp = Int(arguments[8]),
          blockSize > 0, cOffset >= blockSize, cOffset % blockSize == 0, batches > 0, batch > 0, warmUp >= 0 else { fail("bad numbers") }
    let first = arguments.count == 10 ? arguments[9] : "daxpin"
    guard first == "daxpin" || first == "c" else { fail("FIRST must be daxpin or c, not \(first)") }
    pairedFlush(library: arguments[1], address: arguments[2], port: port, blockSize: blockSize, cOffset: cOffset,
                batches: batches, batch: batch, warmUp: warmUp, cConnectsFirst: first == "c")
case "odp-pin" where arguments.count == 7:
    guard let bytes = Int(arguments[4]), let iterations = Int(arguments[5]), bytes > 0, iterations > 0 else { fail("bad numbers") }
    onDemandPagingPin(tmpfsDir: arguments[1], fsdaxDir: arguments[2], devdaxPath: arguments[3], bytes: bytes,
                      iterations: iterations, deviceName: arguments[6])
case "odp-first-touch" where arguments.count == 5:
    guard let bytes = Int(arguments[2]), let rounds = Int(arguments[3]), bytes > 0, rounds > 0 else { fail("bad numbers") }
    onDemandPagingFirstTouch(tmpfsDir: arguments[1], bytes: bytes, rounds: rounds, deviceName: arguments[4])
case "odp-check" where arguments.count == 2:
    onDemandPagingCheckCost(deviceName: arguments[1])
case "zero-copy-write" where arguments.count == 6:
    guard let bytes = Int(arguments[2]), let block = Int(arguments[3]), let rounds = Int(arguments[4]),
          block > 0, bytes >= block, bytes % block == 0, rounds > 0 else { fail("bad numbers") }
    zeroCopyAgainstStaged(row: "write", fsdaxDir: arguments[1], bytes: bytes, block: block, blocks: bytes / block,
                          persistEach: false, rounds: rounds, deviceName: arguments[5])
case "zero-copy-durable" where arguments.count == 7:
    guard let bytes = Int(arguments[2]), let block = Int(arguments[3]), let blocks = Int(arguments[4]), let rounds = Int(arguments[5]),
          block > 0, bytes >= block, bytes % block == 0, blocks > 0, rounds > 0 else { fail("bad numbers") }
    zeroCopyAgainstStaged(row: "durable", fsdaxDir: arguments[1], bytes: bytes, block: block, blocks: blocks,
                          persistEach: true, rounds: rounds, deviceName: arguments[6])
case "zero-copy-first-touch" where arguments.count == 5:
    guard let bytes = Int(arguments[2]), let rounds = Int(arguments[3]), bytes > 0, bytes % 4096 == 0, rounds > 0 else { fail("bad numbers") }
    zeroCopyFirstTouch(fsdaxDir: arguments[1], bytes: bytes, rounds: rounds, deviceName: arguments[4])
case "zero-copy-pin" where arguments.count == 6:
    guard let bytes = Int(arguments[3]), let rounds = Int(arguments[4]), bytes > 0, rounds > 0 else { fail("bad numbers") }
    zeroCopyPin(fsdaxDir: arguments[1], tmpfsDir: arguments[2], bytes: bytes, rounds: rounds, deviceName: arguments[5])
case "zero-copy-check" where arguments.count == 3:
    zeroCopyCheckCost(deviceName: arguments[1], fsdaxDir: arguments[2])
case "idle" where arguments.count == 5:
    let dir = arguments[1]
    guard let count = Int(arguments[2]), let seconds = UInt32(arguments[3]) else { fail("bad numbers") }
    let device: RDMADevice
    do { device = try RDMADevice.open(named: arguments[4]) } catch { fail("\(error)") }
    let slots = (0..<count).map { Slot(path: "\(dir)/daxpin-idle-\(getpid())-\($0)") }
    for slot in slots { take(slot, regions: 1, regionBytes: 4096, device: device) }
    let watcher = LeaseWatcherThread.id
    let watcherBefore = cpuTicks(thread: watcher), processBefore = cpuTicks(thread: nil)
    sleep(seconds)
    let watcherAfter = cpuTicks(thread: watcher), processAfter = cpuTicks(thread: nil)
    let held = slots.filter { !isRevoked($0) }.count
    print("LEASES_HELD \(held)")
    print("WATCHER_TID \(watcher)")
    print("WATCHER_TICKS \(watcherAfter - watcherBefore)")
    print("PROCESS_TICKS \(processAfter - processBefore)")
    for slot in slots {
        slot.lease = nil
        unlink(slot.path)
    }
default:
    fail("usage: DaxPinBench hold DIR FILES REGIONS REGION_BYTES REPS DEVICE | hold-traffic DIR REGIONS REGION_BYTES REPS DEVICE | hold-c LIBRARY DIR REGIONS REGION_BYTES REPS DEVICE | write-latency LIBRARY DEVICE DIR ITERATIONS WARMUP BATCH | pin-paired LIBRARY DIR DEVDAX BYTES ITERATIONS DEVICE ADDR | durable-paired LIBRARY ADDR DAXPIN_PORT RPMA_PORT BLOCK_SIZE BATCHES BATCH WARMUP | flush-paired LIBRARY ADDR PORT BLOCK_SIZE C_OFFSET BATCHES BATCH WARMUP | idle DIR LEASES SECONDS DEVICE | hold-odp ... | odp-pin TMPFS_DIR FSDAX_DIR DEVDAX BYTES ITERATIONS DEVICE | odp-first-touch TMPFS_DIR BYTES ROUNDS DEVICE | odp-check DEVICE | zero-copy-write FSDAX_DIR BYTES BLOCK ROUNDS DEVICE | zero-copy-durable FSDAX_DIR BYTES BLOCK BLOCKS ROUNDS DEVICE | zero-copy-first-touch FSDAX_DIR BYTES ROUNDS DEVICE | zero-copy-check DEVICE FSDAX_DIR | zero-copy-pin FSDAX_DIR TMPFS_DIR BYTES ROUNDS DEVICE")
}
