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

/// "odp-pin": seconds of one `lease.pin` of `bytes` (map, populate unless ODP, register,
/// prefetch) per variant and iteration, in a rotating order after one unrecorded round.
/// Prints "<tmpfs|fsdax|devdax> <pinned|odp> <seconds>".
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
        ("devdax pinned", devdaxPath, .only(.pinned)),
    ]
    for iteration in 0...iterations {
        for step in 0..<variants.count {
            let variant = variants[(iteration + step) % variants.count]
            var held = lease(variant.path)
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
/// region once (the first pass: ODP faults each page in, answered with RNR NAKs), then once
/// more (the second pass), for a pinned and an ODP tmpfs region, alternating per round.
/// Prints "<pinned|odp> <first|second> <seconds>".
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
    for round in 0...rounds {
        for step in 0..<2 {
            let odp = (round + step) % 2 == 1
            unlink(path)
            createFile(path, size: bytes)
            var held = lease(path)
            let remote: MemoryRegion.RemoteAccess
            do {
                let id = try held.pin(offset: 0, length: bytes, on: device, policy: .only(odp ? .onDemandPaging : .pinned))
                remote = try held.withRegion(id) { $0.memoryRegion.remote }
            } catch {
                fail("pin: \(error)")
            }
            for pass in ["first", "second"] {
                let start = monotonicNanoseconds()
                for offset in stride(from: 0, to: bytes, by: block) {
                    let completion: QueuePair.Completion
                    do { completion = try loopback.requester.write(local, to: remote, offset: offset) } catch { fail("write: \(error)") }
                    guard completion == .success else { fail("write at \(offset): \(completion)") }
                }
                let elapsed = monotonicNanoseconds() - start
                if round > 0 { print("\(odp ? "odp" : "pinned") \(pass) \(Double(elapsed) / 1e9)") }
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
