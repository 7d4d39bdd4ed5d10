@testable import DaxPin
import Glibc
import SystemPackage

/// How the recording stand-in's On-Demand Paging moves bytes in DaxPin's check.
enum SimulatedODP: Sendable {
    /// Every byte lands where it was sent (a working device).
    case faithful
    /// Linux 7.2 rxe's behaviour: each packet's payload is written at the start of the page
    /// that holds its target address (measured; Tools/rxe-odp-write-repro).
    case payloadAtPageStart
    /// The check's registration is refused with this errno.
    case refused(Errno)
}

/// A host loopback for the ODP check: plain memory, packets copied by the CPU as `behaviour` says.
final class SimulatedODPLoopback: OnDemandPagingLoopback {
    let pathMTU: Int
    let target: UnsafeMutableRawBufferPointer
    let local: UnsafeMutableRawBufferPointer
    private let behaviour: SimulatedODP

    init(length: Int, pathMTU: Int, behaviour: SimulatedODP) {
        self.pathMTU = pathMTU
        self.behaviour = behaviour
        target = .allocate(byteCount: length, alignment: 4096)
        local = .allocate(byteCount: length, alignment: 4096)
    }

    deinit {
        target.deallocate()
        local.deallocate()
    }

    func write(offset: Int, length: Int) -> Result<QueuePair.Completion, DaxPinError> {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var sent = 0
        while sent < length {
            let packet = min(pathMTU, length - sent)
            let address = offset + sent
            let landing = if case .payloadAtPageStart = behaviour { address / page * page } else { address }
            for i in 0..<packet { target[landing + i] = local[address + i] }
            sent += packet
        }
        return .success(.success)
    }

    func read(offset: Int, length: Int) -> Result<QueuePair.Completion, DaxPinError> {
        for i in offset..<(offset + length) { local[i] = target[i] }
        return .success(.success)
    }
}
