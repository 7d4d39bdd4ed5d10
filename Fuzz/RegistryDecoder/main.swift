// libFuzzer entry point for the pin registry's record decoder: a root `daxpin ls` decodes
// files that other users wrote (Sources/DaxPin/Registry). Built by Scripts/fuzz with
// `swiftc -sanitize=fuzzer,address -parse-as-library -package-name DaxPin` together with
// Sources/DaxPin/Registry/PinRecord.swift (one module, so no import): not a SwiftPM target.
//
// Every input is decoded as `daxpin ls` decodes it (JSONDecoder). A record that decodes must
// survive the library's own writer: written with `jsonText` and decoded again, it is the same
// record. A trap, an ASan report or a broken round trip is a crash libFuzzer keeps.
import Foundation

/// `precondition` drops its message in -O builds; this keeps it in the crash report.
func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("registry decoder fuzz: \(message())") }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRegistryDecoder(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 && data != nil ? Data(bytes: data!, count: size) : Data()
    guard let record = try? JSONDecoder().decode(ProcessPinRecord.self, from: bytes) else { return 0 }
    let written = record.jsonText
    guard let again = try? JSONDecoder().decode(ProcessPinRecord.self, from: Data(written.utf8)) else {
        check(false, "the writer's JSON does not decode: \(written)")
        return 0
    }
    check(again == record || record.updatedAt.isNaN, "the round trip changed the record: \(written)")
    return 0
}
