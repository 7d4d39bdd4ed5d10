@testable import DaxPin
import Glibc
import SystemPackage

/// How the recording stand-in's On-Demand Paging moves bytes in DaxPin's check.
enum SimulatedODP: Sendable, Hashable, CustomStringConvertible {
    /// Every byte lands where it was sent (a working device).
    case faithful
    /// Linux 7.2 rxe's behaviour: each WRITE packet's payload is written at the start of the
    /// page that holds its target address.
    case payloadAtPageStart
    /// Where a packet crosses into the next page, the local side's cursor is not advanced: the
    /// next page gets the packet's first bytes again (WRITEs), or its bytes overwrite the
    /// packet's first bytes (READs).
    case cursorNotAdvanced
    /// WRITEs complete successfully and nothing lands.
    case droppedWrites
    /// WRITEs land this many bytes past their address.
    case offBy(Int)
    /// WRITEs are exact; each READ response packet carries the bytes at the start of its page.
    case wrongReads
    /// A packet that touches a page the device has not faulted in lands at the start of that
    /// page; pages are present after their first access and absent after an invalidation.
    case wrongWhenNotPresent
    /// The device ignores invalidations: it keeps using the pages it had, so WRITEs to them
    /// after an invalidation are lost and READs return what they held.
    case staleAfterInvalidation
    /// The check's registration is refused with this errno.
    case refused(Errno)

    var description: String {
        switch self {
        case .faithful: "faithful"
        case .payloadAtPageStart: "payload at page start"
        case .cursorNotAdvanced: "cursor not advanced across a page"
        case .droppedWrites: "dropped writes"
        case .offBy(let bytes): "off by \(bytes) bytes"
        case .wrongReads: "wrong reads"
        case .wrongWhenNotPresent: "wrong when not present"
        case .staleAfterInvalidation: "stale after invalidation"
        case .refused(let code): "refused (\(code))"
        }
    }
}

/// A host loopback for the ODP check: plain memory, packets copied by the CPU as `behaviour`
/// says, with the target's page presence (as the device sees it) tracked. A file target's
/// invalidation zeroes it, as a punched hole reads; a memfd's keeps its bytes.
final class SimulatedODPLoopback: OnDemandPagingLoopback {
    let pathMTU: Int
    let target: UnsafeMutableRawBufferPointer
    let local: UnsafeMutableRawBufferPointer
    let invalidationKeepsContents: Bool
    private let behaviour: SimulatedODP
    private let page = SystemPage.size
    /// Pages the device has faulted in since the last invalidation.
    private var present: Set<Int> = []
    /// For ``SimulatedODP/staleAfterInvalidation``: the pages the device still uses, and their bytes.
    private var stale: [Int: [UInt8]] = [:]
    /// How many invalidations the check made.
    private(set) var invalidations = 0

    init(length: Int, pathMTU: Int, behaviour: SimulatedODP, target kind: OnDemandPagingTarget = .memory) {
        self.pathMTU = pathMTU
        self.behaviour = behaviour
        invalidationKeepsContents = kind == .memory
        target = .allocate(byteCount: length, alignment: 4096)
        local = .allocate(byteCount: length, alignment: 4096)
        target.initializeMemory(as: UInt8.self, repeating: 0)
        local.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit {
        target.deallocate()
        local.deallocate()
    }

    func write(offset: Int, length: Int) -> Result<QueuePair.Completion, DaxPinError> {
        for (address, packet) in packets(offset, length) {
            let absent = touch(address, packet)
            switch behaviour {
            case .droppedWrites: continue
            case .payloadAtPageStart:
                copyToTarget(from: address, to: address / page * page, count: packet)
            case .wrongWhenNotPresent where absent:
                copyToTarget(from: address, to: address / page * page, count: packet)
            case .offBy(let bytes):
                copyToTarget(from: address, to: address + bytes, count: packet)
            case .cursorNotAdvanced:
                for (chunk, count) in chunks(address, packet) { copyToTarget(from: address, to: chunk, count: count) }
            default:
                copyToTarget(from: address, to: address, count: packet)
            }
        }
        return .success(.success)
    }

    func read(offset: Int, length: Int) -> Result<QueuePair.Completion, DaxPinError> {
        for (address, packet) in packets(offset, length) {
            let absent = touch(address, packet)
            switch behaviour {
            case .wrongReads:
                for i in 0..<packet { local[address + i] = targetByte(address / page * page + i) }
            case .wrongWhenNotPresent where absent:
                for i in 0..<packet { local[address + i] = targetByte(address / page * page + i) }
            case .cursorNotAdvanced:
                for (chunk, count) in chunks(address, packet) {
                    for i in 0..<count { local[address + i] = targetByte(chunk + i) }
                }
            default:
                for i in 0..<packet { local[address + i] = targetByte(address + i) }
            }
        }
        return .success(.success)
    }

    func invalidate() -> Result<Void, DaxPinError> {
        invalidations += 1
        if case .staleAfterInvalidation = behaviour {
            for page in present { stale[page] = Array(target[(page * self.page)..<((page + 1) * self.page)]) }
        }
        present.removeAll()
        if !invalidationKeepsContents { target.initializeMemory(as: UInt8.self, repeating: 0) }
        return .success(())
    }

    /// The packets of a transfer: address and payload length.
    private func packets(_ offset: Int, _ length: Int) -> [(Int, Int)] {
        stride(from: offset, to: offset + length, by: pathMTU).map { ($0, min(pathMTU, offset + length - $0)) }
    }

    /// A packet's parts, one per page: address and length.
    private func chunks(_ address: Int, _ count: Int) -> [(Int, Int)] {
        var parts: [(Int, Int)] = []
        var at = address
        while at < address + count {
            let end = min(address + count, (at / page + 1) * page)
            parts.append((at, end - at))
            at = end
        }
        return parts
    }

    /// Faults in the pages a packet touches; true when any was absent.
    private func touch(_ address: Int, _ count: Int) -> Bool {
        let pages = (address / page)...((address + count - 1) / page)
        let absent = pages.contains { !present.contains($0) }
        present.formUnion(pages)
        return absent
    }

    private func copyToTarget(from source: Int, to destination: Int, count: Int) {
        for i in 0..<count where target.indices.contains(destination + i) {
            let byte = local[source + i], at = destination + i
            if stale[at / page] != nil {
                stale[at / page]![at % page] = byte
            } else {
                target[at] = byte
            }
        }
    }

    private func targetByte(_ at: Int) -> UInt8 {
        stale[at / page]?[at % page] ?? target[at]
    }
}
