// "pin-paired": DaxPin's pin + register of 256 MiB and the raw C and librpma sequences of
// peers/pin_register.c (loaded from its shared-library build) in one process, alternating
// one of each: raw C and librpma with MAP_POPULATE on one thread, and raw C with DaxPin's own
// populate policy ("same"), so that one pair of rows compares like with like. Measured in separate processes, one series after the other, the ratio took
// whatever spell of the emulator each series met: within one boot the C peer's device-dax
// runs sat near 55 ms for a while and near 90 ms for another, and the tmpfs rows read 1.19
// against raw C but 0.97 against librpma, which does the same work.
@_spi(Benchmarks) import DaxPin
import Glibc

/// One C peer: pin_register_open / pin_register_once / pin_register_close from `library`.
private struct CPinPeer {
    typealias Open = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, Int, UnsafePointer<CChar>,
                                     UnsafePointer<CChar>) -> OpaquePointer?
    typealias Once = @convention(c) (OpaquePointer) -> Double
    typealias Close = @convention(c) (OpaquePointer) -> Void
    let state: OpaquePointer
    let once: Once
    let close: Close

    init(library: PeerLibrary, mode: String, path: String, length: Int, device: String, address: String) {
        let open = library.function("pin_register_open", as: Open.self)
        once = library.function("pin_register_once", as: Once.self)
        close = library.function("pin_register_close", as: Close.self)
        guard let state = open(mode, path, length, device, address) else { fail("pin_register_open \(mode) failed") }
        self.state = state
    }
}

/// Seconds of one DaxPin pin of `bytes`, from a settled library (as DaxPinBenchmarks'
/// pinOnce: the previous unpin's registry write must not land inside it); unpinned after.
private func daxPinPinOnce(_ lease: inout LayoutLease, bytes: Int, device: RDMADevice) -> Double {
    BackgroundWork.settle()
    let start = monotonicNanoseconds()
    let id: PinnedRegion.ID
    do { id = try lease.pin(offset: 0, length: bytes, on: device) } catch { fail("pin: \(error)") }
    let elapsed = monotonicNanoseconds() - start
    do { try lease.unpin(id) } catch { fail("unpin: \(error)") }
    return Double(elapsed) / 1e9
}

/// For each medium (a tmpfs file in `dir`, then device-dax at `devdaxPath`): one unrecorded
/// pin of each, then `iterations` times one DaxPin pin, one raw C, one librpma and one raw C
/// with DaxPin's populate policy, in an order that rotates every iteration. Prints
/// "<medium> DAXPIN|RAW|RPMA|SAME <seconds>".
func pairedPin(library: String, dir: String, devdaxPath: String, bytes: Int, iterations: Int,
               deviceName: String, address: String) {
    let device: RDMADevice
    do { device = try RDMADevice.open(named: deviceName) } catch { fail("\(error)") }
    let peerLibrary = PeerLibrary(library)
    for (medium, daxPinPath, peerPath) in [("tmpfs", "\(dir)/daxpin-bench-pin-\(getpid())", "\(dir)/peer-pin-\(getpid())"),
                                           ("devdax", devdaxPath, devdaxPath)] {
        if medium == "tmpfs" { createFile(daxPinPath, size: bytes) }
        var lease: LayoutLease
        do { lease = try LayoutLease(path: daxPinPath) } catch { fail("lease on \(daxPinPath): \(error)") }
        let peers = ["raw", "rpma", "same"].map {
            CPinPeer(library: peerLibrary, mode: $0, path: peerPath, length: bytes, device: deviceName, address: address)
        }
        // Four runners: DaxPin, then the peers.
        let names = ["DAXPIN", "RAW", "RPMA", "SAME"]
        var results: [[Double]] = Array(repeating: [], count: names.count)
        func run(_ index: Int) -> Double {
            index == 0 ? daxPinPinOnce(&lease, bytes: bytes, device: device) : peers[index - 1].once(peers[index - 1].state)
        }
        for index in names.indices { _ = run(index) }   // warm-up, not recorded
        for iteration in 0..<iterations {
            for step in names.indices {
                let index = (iteration + step) % names.count
                results[index].append(run(index))
            }
        }
        for peer in peers { peer.close(peer.state) }
        _ = consume lease
        if medium == "tmpfs" {
            unlink(daxPinPath)
            unlink(peerPath)
        }
        for (index, name) in names.enumerated() {
            for value in results[index] { print("\(medium) \(name) \(value)") }
        }
    }
}
