import Glibc

/// A C peer built as a shared library by Scripts/bench (peers/*.c with their main renamed or
/// left out), loaded into this process so that its code runs beside DaxPin's.
struct PeerLibrary {
    let path: String
    let handle: UnsafeMutableRawPointer

    /// Loads `path` now; exits with dlerror's reason when it cannot.
    init(_ path: String) {
        guard let handle = dlopen(path, RTLD_NOW) else { fail("dlopen \(path): \(String(cString: dlerror()))") }
        self.path = path
        self.handle = handle
    }

    /// The C function `name`, typed as `type` (a `@convention(c)` function type); exits when
    /// the library has no such symbol.
    func function<T>(_ name: String, as type: T.Type) -> T {
        guard let pointer = dlsym(handle, name) else { fail("no \(name) in \(path)") }
        return unsafeBitCast(pointer, to: type)
    }
}
