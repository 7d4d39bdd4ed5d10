// The On-Demand Paging rows, for a kernel whose rxe advertises ODP (Linux 7.2 in the testbed).
// rxe's ODP fails DaxPin's check there (it misplaces WRITEs that do not start on a page), so
// these runs pass over the check (`trustOnDemandPagingWithoutCheck`, testing only) and
// write only page-aligned 4 KiB blocks on a device with path MTU 4096: one packet each, which
// lands right. Every series alternates its variants in one process, so the emulator's slow
// and fast spells fall on all of them alike.
@_spi(Benchmarks) @_spi(Testing) import DaxPin
import Glibc

private func openTrusted(_ name: String) -> RDMADevice {
    do {
        let device = try RDMADevice.open(named: name)
        device.trustOnDemandPagingWithoutCheck()
        return device
    } catch {
        fail("\(error)")
    }
}

private func lease(_ path: String) -> LayoutLease {
    do { return try LayoutLease(path: path) } catch { fail("lease on \(path): \(error)") }
}

/// "odp-pin": seconds of one `lease.pin` of `bytes` (map, populate unless ODP, register) per
/// variant and iteration, in a rotating order after one unrecorded round. The ODP variants
/// register without the prefetch (`prefetchOnDemandPaging` off: the registration's own cost),
/// and "fsdax odp-prefetch" with it (where rdma-core has rxe's prefetch, 59 and later, it maps
/// the whole range before the pin returns). Prints "<tmpfs|fsdax|devdax> <pinned|odp|odp-prefetch> <seconds>".
func onDemandPagingPin(tmpfsDir: String, fsdaxDir: String, devdaxPath: String, bytes: Int, iterations: Int, deviceName: String) {
    let device = openTrusted(deviceName)
    let tmpfsPath = "\(tmpfsDir)/daxpin-odp-pin-\(getpid())", fsdaxPath = "\(fsdaxDir)/daxpin-odp-pin-\(getpid())"
    createFile(tmpfsPath, size: bytes)
    createFile(fsdaxPath, size: bytes)
    defer { unlink(tmpfsPath); unlink(fsdaxPath) }
    let variants: [(label: String, path: String, policy: StrategyPolicy)] = [
        ("tmpfs pinned", tmpfsPath, .only(.pinned)),
        ("tmpfs odp", tmpfsPath, .only(.onDemandPaging)),
        ("fsdax odp", fsdaxPath, .only(.onDemandPaging)),
        ("fsdax odp-prefetch", fsdaxPath, .only(.onDemandPaging)),
        ("devdax pinned", devdaxPath, .only(.pinned)),
    ]
    for iteration in 0...iterations {
        for step in 0..<variants.count {
            let variant = variants[(iteration + step) % variants.count]
            var options = LeaseOptions()
            options.prefetchOnDemandPaging = variant.label.hasSuffix("prefetch")
            var held: LayoutLease
            do { held = try LayoutLease(path: variant.path, options: options) } catch { fail("lease on \(variant.path): \(error)") }
            BackgroundWork.settle()
            let start = monotonicNanoseconds()
            do { _ = try held.pin(offset: 0, length: bytes, on: device, policy: variant.policy) } catch { fail("\(variant.label): \(error)") }
            let elapsed = monotonicNanoseconds() - start
            _ = held.release()
            if iteration > 0 { print("\(variant.label) \(Double(elapsed) / 1e9)") }
        }
    }
}

/// "odp-first-touch": a peer on the same device writes every 4 KiB block of a fresh `bytes`
/// region once (the first pass: ODP faults in each page not yet mapped, answered with RNR
/// NAKs), then once more (the second pass), for a pinned tmpfs region, an ODP one prefetched
/// at pin (the default) and an ODP one pinned with `prefetchOnDemandPaging` off, rotating per
/// round. Prints "<pinned|odp|odp-noprefetch> <first|second> <seconds>", and per ODP pin
/// "<odp|odp-noprefetch> mapped <pages present after the pin> <pages>" (/proc/self/pagemap):
/// what shows that the prefetch ran, or that it did not.
func onDemandPagingFirstTouch(tmpfsDir: String, bytes: Int, rounds: Int, deviceName: String) {
    let device = openTrusted(deviceName)
    let block = 4096
    var source = LayoutLease.anonymous()
    let local: QueuePair.LocalBuffer
    let loopback: (requester: QueuePair, responder: QueuePair)  // both kept alive for the writes
    do {
        let id = try source.pin(length: block, on: device)
        local = try source.withRegion(id) { region in
            QueuePair.LocalBuffer(address: region.memoryRegion.remote.address, length: block, localKey: region.memoryRegion.localKey)
        }
        loopback = try loopbackPair(on: device)
    } catch {
        fail("peer: \(error)")
    }
    let path = "\(tmpfsDir)/daxpin-odp-touch-\(getpid())"
    defer { unlink(path) }
    let variants = ["pinned", "odp", "odp-noprefetch"]
    for round in 0...rounds {
        for step in 0..<variants.count {
            let variant = variants[(round + step) % variants.count]
            let odp = variant != "pinned"
            unlink(path)
            createFile(path, size: bytes)
            var options = LeaseOptions()
            options.prefetchOnDemandPaging = variant == "odp"
            var held: LayoutLease
            do { held = try LayoutLease(path: path, options: options) } catch { fail("lease on \(path): \(error)") }
            let remote: MemoryRegion.RemoteAccess
            do {
                let id = try held.pin(offset: 0, length: bytes, on: device, policy: .only(odp ? .onDemandPaging : .pinned))
                remote = try held.withRegion(id) { $0.memoryRegion.remote }
            } catch {
                fail("pin: \(error)")
            }
            if odp, round > 0 { print("\(variant) mapped \(presentPages(at: remote.address, pages: bytes / block)) \(bytes / block)") }
            for pass in ["first", "second"] {
                let start = monotonicNanoseconds()
                for offset in stride(from: 0, to: bytes, by: block) {
                    let completion: QueuePair.Completion
                    do { completion = try loopback.requester.write(local, to: remote, offset: offset) } catch { fail("write: \(error)") }
                    guard completion == .success else { fail("write at \(offset): \(completion)") }
                }
                let elapsed = monotonicNanoseconds() - start
                if round > 0 { print("\(variant) \(pass) \(Double(elapsed) / 1e9)") }
            }
            _ = held.release()
        }
    }
}

/// "odp-check": the first pin's cost of DaxPin's On-Demand Paging check on a device (a fresh
/// process has no cached verdict). Prints "CHECK <seconds> <verdict>".
func onDemandPagingCheckCost(deviceName: String) {
    let device: RDMADevice
    do { device = try RDMADevice.open(named: deviceName) } catch { fail("\(error)") }
    let start = monotonicNanoseconds()
    let verdict = device.onDemandPaging(for: .readWrite)
    let elapsed = monotonicNanoseconds() - start
    let word = switch verdict { case .verified: "verified"; case .notOffered: "not-offered"; case .failed: "failed" }
    print("CHECK \(Double(elapsed) / 1e9) \(word)")
}

/// How many of `pages` 4 KiB pages from `address` are present in this process's page tables
/// (`/proc/self/pagemap`, bit 63).
func presentPages(at address: UInt64, pages: Int) -> Int {
    let fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { fail("open /proc/self/pagemap: errno \(errno)") }
    defer { close(fd) }
    var entries = [UInt64](repeating: 0, count: pages)
    let read = entries.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(address / 4096 * 8)) }
    guard read == pages * 8 else { fail("pread /proc/self/pagemap: \(read)") }
    return entries.filter { $0 & (1 << 63) != 0 }.count
}
