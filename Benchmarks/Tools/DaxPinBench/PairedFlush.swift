// "flush-paired": durable 4 KiB writes with native RDMA FLUSH at queue depth 1, DaxPin's client
// and the raw-verbs C one (peers/flush_durable.c, loaded from its shared-library build), both
// connected to the same daxpin-server --persist-method flush (one device-dax export, disjoint
// halves), alternating in batches inside this one process: the same server, memory, device,
// rdma-core and emulator spells for both, so the ratio is the cost of DaxPin's FLUSH path.
@_spi(Benchmarks) import DaxPin
import Glibc
import StorageProtocol

/// The C client: flush_durable_open / flush_durable_write / flush_durable_close from `library`.
private struct CFlushClient {
    typealias Open = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, Int, UInt64) -> OpaquePointer?
    typealias Write = @convention(c) (OpaquePointer, UInt64) -> Void
    typealias Close = @convention(c) (OpaquePointer) -> Void
    let state: OpaquePointer
    let write: Write
    let close: Close

    init(library: PeerLibrary, address: String, port: UInt16, blockSize: Int, offset: Int) {
        let open = library.function("flush_durable_open", as: Open.self)
        write = library.function("flush_durable_write", as: Write.self)
        close = library.function("flush_durable_close", as: Close.self)
        guard let state = open(address, String(port), blockSize, UInt64(offset)) else { fail("flush_durable_open failed") }
        self.state = state
    }
}

/// DaxPin's client, as daxpin-client does it with `--queue-depth 1 --persist-every 1
/// --persist-method flush --static-data`: connected with `postsFlush` to a daxpin-server that
/// offers FLUSH, a pinned anonymous source block; per block one post of the WRITE (unsignaled)
/// and a FLUSH of the same 4 KiB behind it (`postWrite(_:to:offset:id:signaled:thenFlush:...)`),
/// then the FLUSH's completion is the durable ack. Blocks wrap within the first `span` bytes.
private struct DaxPinFlushClient: ~Copyable {
    static let flushID: UInt64 = 1 << 62
    let connection: RDMAConnection
    let remote: MemoryRegion.RemoteAccess
    let source: QueuePair.LocalBuffer
    let blocksInSpan: Int
    let blockSize: Int
    var local: LayoutLease
    var completions: [RDMAConnection.WorkCompletion] = []

    init(address: String, port: UInt16, blockSize: Int, span: Int) {
        do {
            connection = try RDMAConnection.connect(to: address, port: port, privateData: ClientHello().encoded,
                                                    options: .init(depth: 1, postsFlush: true))
        } catch { fail("connect to daxpin-server at \(address):\(port) with FLUSH: \(error)") }
        guard let hello = ServerHello(decoding: connection.peerPrivateData), hello.flags.contains(.remoteFlush) else {
            fail("daxpin-server's hello is malformed or does not offer RDMA FLUSH")
        }
        remote = MemoryRegion.RemoteAccess(address: hello.address, length: Int(hello.length), rkey: hello.rkey)
        blocksInSpan = min(span, Int(hello.length)) / blockSize
        guard blocksInSpan > 0 else { fail("daxpin-server's export is smaller than a block") }
        self.blockSize = blockSize
        local = LayoutLease.anonymous()
        let (base, key) = pinSourceBlock(&local, blockSize: blockSize, on: connection.device)
        source = QueuePair.LocalBuffer(address: base, length: blockSize, localKey: key)
        completions.reserveCapacity(4)
    }

    /// Block `block`, returned once its FLUSH completed.
    mutating func write(block: Int) {
        let offset = block % blocksInSpan * blockSize
        do {
            try connection.postWrite(source, to: remote, offset: offset, id: UInt64(block), signaled: false,
                                     thenFlush: offset, length: blockSize, flushID: Self.flushID)
            try awaitCompletion(Self.flushID, of: block, on: connection, into: &completions)
        } catch { fail("block \(block): \(error)") }
    }

    consuming func close() {
        connection.disconnect()
    }
}

/// `warmUp` unrecorded blocks through each client, then `batches` batch pairs: `batch` blocks
/// through DaxPin and `batch` through the C client, in an order that flips every pair. DaxPin
/// writes the export's first `cOffset` bytes, the C client the rest. Prints one
/// "DAXPIN <bytes/s>" and one "C <bytes/s>" line per pair (the batch's throughput), then
/// "DAXPIN_BLOCK <ns>" and "C_BLOCK <ns>" per block (`alternateBatches`).
/// `cConnectsFirst` makes the C client connect (and so get the server's first queue pair) first.
func pairedFlush(library: String, address: String, port: UInt16, blockSize: Int, cOffset: Int,
                 batches: Int, batch: Int, warmUp: Int, cConnectsFirst: Bool) {
    let peer = PeerLibrary(library)
    let cFirst = cConnectsFirst
        ? CFlushClient(library: peer, address: address, port: port, blockSize: blockSize, offset: cOffset) : nil
    var daxPin = DaxPinFlushClient(address: address, port: port, blockSize: blockSize, span: cOffset)
    let c = cFirst ?? CFlushClient(library: peer, address: address, port: port, blockSize: blockSize, offset: cOffset)
    let result = alternateBatches(batches: batches, batch: batch, warmUp: warmUp,
                                  first: { daxPin.write(block: $0) },
                                  second: { c.write(c.state, UInt64($0)) })
    c.close(c.state)
    daxPin.close()
    printAlternatingBatches(result, labels: ("DAXPIN", "C"), bytesPerBatch: batch * blockSize)
}
