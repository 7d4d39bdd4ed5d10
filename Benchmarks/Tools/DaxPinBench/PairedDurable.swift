// "durable-paired": durable 4 KiB writes (write + persist ack, queue depth 1) through DaxPin
// to daxpin-server and through librpma (peers/rpma_durable.c, loaded from its shared-library
// build) to rpma_durable's server, alternating in batches inside this one process. Measured
// as separate client processes, one after the other, the ratio read 1.03, 0.79, 0.83 and 0.92
// in four boots: each process met its own spell of the emulator, and the spread between runs
// of one client was wider than the gap between the clients.
@_spi(Benchmarks) import DaxPin
import Glibc
import StorageProtocol

/// librpma's client: rpma_durable_open / rpma_durable_write / rpma_durable_close from `library`.
private struct RPMADurableClient {
    typealias Open = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, Int) -> OpaquePointer?
    typealias Write = @convention(c) (OpaquePointer, UInt64) -> Void
    typealias Close = @convention(c) (OpaquePointer) -> Void
    let state: OpaquePointer
    let write: Write
    let close: Close

    init(library: PeerLibrary, address: String, port: UInt16, blockSize: Int) {
        let open = library.function("rpma_durable_open", as: Open.self)
        write = library.function("rpma_durable_write", as: Write.self)
        close = library.function("rpma_durable_close", as: Close.self)
        guard let state = open(address, String(port), blockSize) else { fail("rpma_durable_open failed") }
        self.state = state
    }
}

/// DaxPin's client, as daxpin-client does it with `--queue-depth 1 --persist-every 1
/// --persist-method read --static-data`: connected to daxpin-server, a pinned anonymous source
/// block and an 8-byte persist READ target; per block one post of the WRITE (unsignaled) and
/// the READ of its first bytes behind it, then the READ's completion is the durable ack.
private struct DaxPinDurableClient: ~Copyable {
    static let readID: UInt64 = 1 << 62
    let connection: RDMAConnection
    let remote: MemoryRegion.RemoteAccess
    let source: QueuePair.LocalBuffer
    let readTarget: QueuePair.LocalBuffer
    let blocksInExport: Int
    let blockSize: Int
    var local: LayoutLease
    var completions: [RDMAConnection.WorkCompletion] = []

    init(address: String, port: UInt16, blockSize: Int) {
        do {
            connection = try RDMAConnection.connect(to: address, port: port, privateData: ClientHello().encoded,
                                                    options: .init(depth: 1))
        } catch { fail("connect to daxpin-server at \(address):\(port): \(error)") }
        guard let hello = ServerHello(decoding: connection.peerPrivateData), hello.flags.contains(.directWriteToPMem) else {
            fail("daxpin-server's hello is malformed or lacks direct-write-to-pmem")
        }
        remote = MemoryRegion.RemoteAccess(address: hello.address, length: Int(hello.length), rkey: hello.rkey)
        blocksInExport = Int(hello.length) / blockSize
        guard blocksInExport > 0 else { fail("daxpin-server's export is smaller than a block") }
        self.blockSize = blockSize
        local = LayoutLease.anonymous()
        let (base, key) = pinSourceBlock(&local, blockSize: blockSize, on: connection.device)
        source = QueuePair.LocalBuffer(address: base, length: blockSize, localKey: key)
        readTarget = QueuePair.LocalBuffer(address: base + UInt64(blockSize), length: 8, localKey: key)
        completions.reserveCapacity(4)
    }

    /// Block `block` (offsets wrap at the export's end), returned once its READ completed.
    mutating func write(block: Int) {
        let offset = block % blocksInExport * blockSize
        do {
            try connection.postWrite(source, to: remote, offset: offset, id: UInt64(block), signaled: false,
                                     thenRead: readTarget, at: offset, readID: Self.readID)
            try awaitCompletion(Self.readID, of: block, on: connection, into: &completions)
        } catch { fail("block \(block): \(error)") }
    }

    consuming func close() {
        connection.disconnect()
    }
}

/// `warmUp` unrecorded blocks through each client, then `batches` batch pairs: `batch` blocks
/// through DaxPin and `batch` through librpma, in an order that flips every pair. Prints one
/// "DAXPIN <bytes/s>" and one "RPMA <bytes/s>" line per pair (the batch's throughput), then
/// "DAXPIN_BLOCK <ns>" and "RPMA_BLOCK <ns>" per block (`alternateBatches`).
func pairedDurable(library: String, address: String, daxPinPort: UInt16, rpmaPort: UInt16, blockSize: Int,
                   batches: Int, batch: Int, warmUp: Int) {
    var daxPin = DaxPinDurableClient(address: address, port: daxPinPort, blockSize: blockSize)
    let rpma = RPMADurableClient(library: PeerLibrary(library), address: address, port: rpmaPort, blockSize: blockSize)
    let result = alternateBatches(batches: batches, batch: batch, warmUp: warmUp,
                                  first: { daxPin.write(block: $0) },
                                  second: { rpma.write(rpma.state, UInt64($0)) })
    rpma.close(rpma.state)
    daxPin.close()
    printAlternatingBatches(result, labels: ("DAXPIN", "RPMA"), bytesPerBatch: batch * blockSize)
}
