import CLease
import Synchronization

/// `Synchronization.Mutex` that tells ThreadSanitizer about itself in sanitizer builds.
///
/// On Linux, `Mutex` waits in the kernel through a raw futex, which ThreadSanitizer cannot see:
/// state handed from one thread to another under a contended `Mutex` is reported as a race.
/// Built with `-DDAXPIN_TSAN` (`Scripts/sanitize` does), each critical section is bracketed with
/// `__tsan_acquire`/`__tsan_release` on this lock's own address, which gives ThreadSanitizer
/// the happens-before edge the futex hides. In every other build it is a plain `Mutex`.
struct AnnotatedMutex<Value: ~Copyable>: ~Copyable, Sendable {
    private let mutex: Mutex<Value>
    #if DAXPIN_TSAN
    /// A stable address naming this lock to ThreadSanitizer (its bit pattern: Sendable).
    private let identity = UInt(bitPattern: UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1))
    #endif

    init(_ value: consuming sending Value) { mutex = Mutex(value) }

    #if DAXPIN_TSAN
    deinit { UnsafeMutableRawPointer(bitPattern: identity)!.deallocate() }
    #endif

    // Both methods bracket `body` inline: handing `&value` to a shared helper makes the inout
    // access happen before `__tsan_acquire`, and ThreadSanitizer reports it again.

    /// `Mutex.withLock`.
    borrowing func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        #if DAXPIN_TSAN
        let identity = UnsafeMutableRawPointer(bitPattern: self.identity)
        return try mutex.withLock { (value: inout sending Value) throws(E) -> sending Result in
            __tsan_acquire(identity)
            defer { __tsan_release(identity) }
            return try body(&value)
        }
        #else
        return try mutex.withLock(body)
        #endif
    }

    /// `Mutex.withLockIfAvailable`.
    borrowing func withLockIfAvailable<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result? {
        #if DAXPIN_TSAN
        let identity = UnsafeMutableRawPointer(bitPattern: self.identity)
        return try mutex.withLockIfAvailable { (value: inout sending Value) throws(E) -> sending Result in
            __tsan_acquire(identity)
            defer { __tsan_release(identity) }
            return try body(&value)
        }
        #else
        return try mutex.withLockIfAvailable(body)
        #endif
    }
}
