// libFuzzer entry point for the storage server's request decoder (issue 4).
// Built by Scripts/fuzz with `swiftc -sanitize=fuzzer,address -parse-as-library` together
// with Examples/StorageProtocol/StorageProtocol.swift (one module, so no import): not a
// SwiftPM target, the normal build never sees it.
//
// Every input is decoded against several export lengths. A trap (Swift's overflow and
// bounds checks), an ASan report, or a broken invariant below is a crash libFuzzer keeps.

/// `precondition` drops its message in -O builds; this keeps it in the crash report.
func check(_ condition: Bool, _ message: @autoclosure () -> String = "invariant broken") {
    if !condition { fatalError("decodeRequest fuzz: \(message())") }
}

/// Export lengths to check each input against: empty, tiny, the tests' 1 MiB, huge.
let exportLengths: [UInt64] = [0, 1, 4096, 1 << 20, UInt64.max - 1, UInt64.max]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequestDecoder(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    for exportLength in exportLengths {
        switch StorageProtocol.decodeRequest(bytes, exportLength: exportLength) {
        case .success(let request):
            // Accepted only if it fits: a non-empty range inside the export, and the
            // request re-encodes to exactly the bytes it came from (nothing ignored).
            switch request {
            case .persist(_, let offset, let length), .checksum(_, let offset, let length):
                check(length > 0, "accepted an empty range")
                check(offset < exportLength && length <= exportLength - offset,
                             "accepted \(offset)+\(length) outside an export of \(exportLength) bytes")
            case .stopped, .goodbye:
                break
            }
            check(request.encoded == bytes, "accepted bytes that do not re-encode the same")
        case .failure(let error):
            // The refusal must be describable (it goes back to the client) and echo the id.
            check(!error.description.isEmpty && (1...7).contains(error.code))
            if bytes.count >= 8 {
                let id = UInt32(bytes[4]) | UInt32(bytes[5]) << 8 | UInt32(bytes[6]) << 16 | UInt32(bytes[7]) << 24
                check(error.id == id, "error id \(error.id) is not the request's \(id)")
            }
        }
    }
    // The client-side decoders see server bytes: they must not trap either.
    if let response = StorageProtocol.decodeResponse(bytes) { _ = response.encoded }
    _ = ClientHello(decoding: bytes)
    if let hello = ServerHello(decoding: bytes) {
        // Every flags byte survives a round trip (the client acts on the bits it knows).
        check(ServerHello(decoding: hello.encoded) == hello && hello.flags.rawValue == bytes[5], "server hello does not round-trip")
    }
    return 0
}
