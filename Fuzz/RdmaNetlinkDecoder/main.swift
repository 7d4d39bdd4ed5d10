// libFuzzer entry point for the rdma netlink decoders behind `daxpin ls --all`: the netlink
// message and attribute walk (Sources/DaxPinVisibility/NetlinkMessages.swift) and the nldev
// device and MR decoders (RdmaResourceDecoder.swift). Built by Scripts/fuzz with
// `swiftc -sanitize=fuzzer,address -parse-as-library -package-name DaxPin` together with those
// two files and Tests/DaxPinTests/Support/NetlinkTestWriter.swift (one module, so no import):
// not a SwiftPM target.
//
// Every input is read as one datagram, as the socket reads them. Whatever decodes must stay
// inside the input, and an MR that decodes must survive a round trip through the kernel's
// layout (NetlinkTestWriter): written again and decoded, it is the same MR. A trap, an ASan
// report or a broken round trip is a crash libFuzzer keeps.

/// `precondition` drops its message in -O builds; this keeps it in the crash report.
func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("rdma netlink decoder fuzz: \(message())") }
}

/// Walks nested attributes a few levels down, as a hostile kernel answer could nest them.
func walk(_ bytes: ArraySlice<UInt8>, depth: Int) {
    for attribute in NetlinkWire.attributes(in: bytes) {
        check(attribute.payload.startIndex >= bytes.startIndex && attribute.payload.endIndex <= bytes.endIndex,
              "attribute payload outside its parent")
        _ = attribute.uint32; _ = attribute.uint64; _ = attribute.string
        if depth < 4 { walk(attribute.payload, depth: depth + 1) }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRdmaNetlinkDecoder(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data!, count: size)) : []
    walk(bytes[...], depth: 0)
    guard let messages = try? NetlinkWire.messages(in: bytes[...]) else { return 0 }
    for message in messages {
        check(message.payload.endIndex <= bytes.count, "message payload beyond the datagram")
    }
    if let sequence = messages.first?.sequence { _ = try? NetlinkWire.dumpReplies(messages, sequence: sequence) }
    for message in messages {
        _ = RdmaResourceDecoder.device(in: message)
        let entries = RdmaResourceDecoder.memoryRegions(in: message, device: "fuzz0")
        for entry in entries {
            guard let number = entry.number, let length = entry.length else { continue }
            let region = NetlinkTestWriter.MemoryRegion(rkey: entry.rkey, lkey: entry.lkey, length: length, number: number,
                                                        protectionDomain: entry.protectionDomain,
                                                        pid: entry.pid.map { UInt32(bitPattern: $0) }, kernelOwner: entry.kernelOwner)
            let written = NetlinkTestWriter.memoryRegionMessage(device: entry.device, index: 1, sequence: 1, regions: [region])
            guard let again = try? NetlinkWire.messages(in: written[...]), again.count == 1 else {
                check(false, "the writer's message does not decode: \(written)")
                return 0
            }
            var expected = entry
            expected.iova = nil
            let decoded = RdmaResourceDecoder.memoryRegions(in: again[0], device: "fuzz0")
            check(decoded == [expected], "the round trip changed the MR: \(entry) -> \(decoded)")
        }
    }
    return 0
}
