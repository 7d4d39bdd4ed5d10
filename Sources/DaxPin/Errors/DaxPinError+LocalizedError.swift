#if canImport(FoundationEssentials)
import FoundationEssentials

// FoundationEssentials (the toolchain's Foundation core, without ICU) only for this protocol:
// Foundation's `localizedDescription` reads `errorDescription`, and without it an application
// that prints `error.localizedDescription` shows "The operation could not be completed.
// (DaxPin.DaxPinError error 5.)" instead of the message.
extension DaxPinError: LocalizedError {
    /// The same text as ``description``, so `localizedDescription` shows it.
    public var errorDescription: String? { description }
}
#endif
