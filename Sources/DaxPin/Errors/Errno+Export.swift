// DaxPinError's cases carry swift-system's `Errno`: re-exported, so that `import DaxPin` alone
// names it (`catch DaxPinError.systemCall(_, _, .noSuchFileOrDirectory)`).
@_exported import struct SystemPackage.Errno
