#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A weight tensor the model holds: either a borrowed view of caller memory or a
/// contiguous float32 copy the storage owns and frees.
package final class WeightStorage: @unchecked Sendable {
    package let view: TensorView
    private let owned: UnsafeMutableRawPointer?
    /// What keeps borrowed memory alive (a mapped checkpoint file, or another storage whose
    /// memory the view reads), if the library owns it.
    private let owner: AnyObject?
    /// The Gram matrices of an attn.to_residual weight (filled on first use).
    package let grams = GramCache()

    /// Whether the memory is the library's own, which nothing else writes to: a copy, or a
    /// checkpoint's tensor read into memory (`FileBytes`); reported as NW_COPY.
    package var isCopy: Bool { owned != nil || owner is FileBytes || (owner as? WeightStorage)?.isCopy == true }

    /// Borrows `view`: the caller keeps its memory alive while this storage lives, or
    /// `owner` does (it is retained as long as this storage).
    package init(borrowing view: TensorView, owner: AnyObject? = nil) {
        self.view = view
        self.owned = nil
        self.owner = owner
    }

    /// Copies `view` into new contiguous float32 memory.
    /// - Throws: `.outOfMemory` when the copy would not fit in physical memory or
    ///   the allocation fails; nothing is allocated in the first case.
    package init(copying source: TensorView, name: String) throws(NodeWriteError) {
        let (bytes, overflow) = source.count.multipliedReportingOverflow(by: MemoryLayout<Float>.size)
        guard !overflow, bytes <= WeightStorage.physicalMemory else {
            throw .outOfMemory("\(name): a float32 copy of \(source.count) elements exceeds this machine's memory")
        }
        guard let memory = malloc(max(bytes, 1)) else {
            throw .outOfMemory("\(name): allocating \(bytes) bytes failed")
        }
        let out = memory.bindMemory(to: Float.self, capacity: max(source.count, 1))
        var n = 0
        let s = source.shape
        for i in 0..<s[0] {
            for j in 0..<s[1] {
                for k in 0..<s[2] {
                    out[n] = source.value(at: source.offset(i, j, k))
                    n += 1
                }
            }
        }
        self.owned = memory
        self.owner = nil
        // A contiguous float32 view of new memory of the same shape cannot fail validation.
        self.view = try! TensorView(base: UnsafeRawPointer(memory), dtype: .float32,
                                    shape: source.shapeArray, strides: nil, name: name)
    }

    deinit { free(owned) }

    /// Physical memory in bytes (the limit for any copy).
    static let physicalMemory: Int = {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, size > 0 else { return Int.max }
        return pages.multipliedReportingOverflow(by: size).overflow ? Int.max : pages * size
    }()
}
