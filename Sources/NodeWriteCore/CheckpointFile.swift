#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Checkpoint files are read into memory the library owns, never mapped. A model that borrowed
/// a mapping would read whatever the file holds at each call: after a rewrite in place the new
/// weights, after a truncation zeros or a SIGBUS that kills the process, and no check before a
/// read can rule that out (the file can shrink between the check and the read; MAP_PRIVATE
/// does not copy pages that were never written). Memory of its own cannot change under the
/// model, so a loaded model gives the numbers of the file it loaded for as long as it lives,
/// whatever happens to the file; replacing it by rename was already safe and stays so.
///
/// The load itself reads with pread (a file truncated meanwhile gives a short read, not a
/// SIGBUS), and `ensureUnchanged` compares what identified the file when it was opened (device,
/// inode, size, modification and change times to the nanosecond) with the same after the last
/// read: a file truncated, rewritten or grown during the load is refused with
/// `.staleInput` (one renamed over or unlinked meanwhile still holds what was read, and loads). File systems keep these times at their own granularity: on Linux 6.13 and
/// later (multigrain timestamps) every write after the load's first look changes them; on older
/// kernels a write within one timer tick of the previous one can leave them as they were.

/// Bytes the library owns, read-only once filled: a header or tensor read from a file, or a
/// copy (tests, in-memory parsing). 64-byte aligned; freed when the last holder (a
/// `SafetensorsFile`, a `WeightStorage` that borrows from it) lets go.
package final class FileBytes: @unchecked Sendable {
    package let base: UnsafeRawPointer
    package let count: Int

    /// `count` bytes of new memory filled by `fill` (freed again if it throws).
    /// - Throws: `.outOfMemory` when they would not fit in physical memory or cannot be had.
    init(count: Int, _ what: @autoclosure () -> String,
         fill: (UnsafeMutableRawPointer) throws(NodeWriteError) -> Void) throws(NodeWriteError) {
        guard count >= 0, count <= WeightStorage.physicalMemory else {
            throw .outOfMemory("\(what()): \(count) bytes exceed this machine's memory")
        }
        var memory: UnsafeMutableRawPointer?
        guard posix_memalign(&memory, 64, max(count, 1)) == 0, let memory else {
            throw .outOfMemory("\(what()): allocating \(count) bytes failed")
        }
        do {
            try fill(memory)
        } catch {
            free(memory)
            throw error
        }
        base = UnsafeRawPointer(memory)
        self.count = count
    }

    /// A private copy of `bytes` (for tests and in-memory parsing).
    package convenience init(copying bytes: UnsafeRawBufferPointer) throws(NodeWriteError) {
        try self.init(count: bytes.count, "a copy") { (memory) throws(NodeWriteError) in
            if let source = bytes.baseAddress, bytes.count > 0 { memcpy(memory, source, bytes.count) }
        }
    }

    deinit { free(UnsafeMutableRawPointer(mutating: base)) }

    package var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Whether `path` names nothing (ENOENT / ENOTDIR), as opposed to a file that cannot be read.
    package static func absent(_ path: String) -> Bool {
        var info = stat()
        if stat(path, &info) == 0 { return false }
        return errno == ENOENT || errno == ENOTDIR
    }

    static func systemError(_ path: String, _ what: String) -> NodeWriteError {
        let code = errno
        let reason = strerror(code).map { String(cString: $0) } ?? "errno \(code)"
        return .invalidArgument("\(path): \(what) (\(reason))")
    }
}

/// A regular file opened for one load: read with pread, and checked at the end against what
/// identified it when it was opened. Closed when the last holder lets go.
package final class CheckpointFile: @unchecked Sendable {
    let path: String
    /// The size when opened.
    let size: Int
    private let fd: Int32
    private let opened: Identity

    /// What tells one state of a file from another.
    struct Identity: Equatable {
        var device: UInt64, inode: UInt64, size: Int64, links: UInt64
        var modified: (seconds: Int64, nanoseconds: Int64), changed: (seconds: Int64, nanoseconds: Int64)

        init(_ s: stat) {
            device = UInt64(s.st_dev)
            inode = UInt64(s.st_ino)
            size = Int64(s.st_size)
            links = UInt64(s.st_nlink)
            #if canImport(Darwin)
            modified = (Int64(s.st_mtimespec.tv_sec), Int64(s.st_mtimespec.tv_nsec))
            changed = (Int64(s.st_ctimespec.tv_sec), Int64(s.st_ctimespec.tv_nsec))
            #else
            modified = (Int64(s.st_mtim.tv_sec), Int64(s.st_mtim.tv_nsec))
            changed = (Int64(s.st_ctim.tv_sec), Int64(s.st_ctim.tv_nsec))
            #endif
        }

        static func == (a: Identity, b: Identity) -> Bool {
            a.device == b.device && a.inode == b.inode && a.size == b.size && a.links == b.links && a.modified == b.modified
                && a.changed == b.changed
        }
    }

    /// Opens `path` for reading.
    /// - Throws: `.invalidArgument` when it cannot be opened or is not a regular file (naming
    ///   the path and the system's reason).
    init(path: String) throws(NodeWriteError) {
        // O_NONBLOCK: opening a FIFO must not wait for a writer (it is then refused as not regular).
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw FileBytes.systemError(path, "cannot be opened") }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let error = FileBytes.systemError(path, "cannot be examined")
            close(fd)
            throw error
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw .invalidArgument("\(path): not a regular file")
        }
        guard let size = Int(exactly: info.st_size), size >= 0 else {
            close(fd)
            throw .invalidArgument("\(path): size \(info.st_size) is not representable")
        }
        self.path = path
        self.fd = fd
        self.size = size
        opened = Identity(info)
    }

    deinit { close(fd) }

    /// The bytes `range` of the file, read into new memory.
    /// - Throws: `.staleInput` when the file ends before `range` does (it was truncated since it
    ///   was opened); `.invalidArgument` when it cannot be read; `.outOfMemory`.
    func read(_ range: Range<Int>, _ what: @autoclosure () -> String) throws(NodeWriteError) -> FileBytes {
        try FileBytes(count: range.count, "\(path): \(what())") { (memory) throws(NodeWriteError) in
            var done = 0
            while done < range.count {
                let n = pread(fd, memory + done, min(range.count - done, 1 << 30), off_t(range.lowerBound + done))
                if n > 0 { done += n; continue }
                if n < 0, errno == EINTR { continue }
                guard n == 0 else { throw FileBytes.systemError(path, "cannot be read") }
                throw .staleInput("\(path): the file ends at byte \(range.lowerBound + done) while reading \(what()) "
                                  + "(bytes \(range.lowerBound) to \(range.upperBound)), but it was \(size) bytes when the "
                                  + "load began: it was truncated while it was read. Load it again once it is written in "
                                  + "full (write checkpoints to another name and rename them into place)")
            }
        }
    }

    /// - Throws: `.staleInput` when the file is not as it was when opened (another size or
    ///   modification time; or another change time with the same links, as when its modification
    ///   time was set back after a write): it was written to during the load, so what was read may
    ///   mix two versions. A change time that moved with its link count (the file was renamed over
    ///   or unlinked, which leaves its bytes as they were) is not a change.
    func ensureUnchanged() throws(NodeWriteError) {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileBytes.systemError(path, "cannot be examined") }
        let now = Identity(info)
        guard now != opened else { return }
        var changes: [String] = []
        if now.size != opened.size { changes.append("its size went from \(opened.size) to \(now.size) bytes") }
        if now.modified != opened.modified { changes.append("its modification time changed") }
        if now.changed != opened.changed, now.modified == opened.modified, now.links == opened.links {
            changes.append("its change time changed")
        }
        if now.device != opened.device || now.inode != opened.inode { changes.append("it is another file") }
        guard !changes.isEmpty else { return }
        throw .staleInput("\(path): the file changed while it was read (\(changes.joined(separator: ", "))): it was "
                          + "truncated, rewritten or extended during the load, so what was read may mix two versions. "
                          + "Load it again once it is written in full (write checkpoints to another name and rename "
                          + "them into place)")
    }
}
