import _NodeWriteKernels

/// Temporary memory for one call: from the kernels' scratch allocator (64-byte aligned, reused
/// across calls without fresh page faults), checked, released by `withScratch`. Swift traps
/// when an allocation fails; this turns failure into `.outOfMemory`.
package func withScratch<T, R>(_: T.Type, count: Int, _ what: String,
                               _ body: (UnsafeMutablePointer<T>) throws(NodeWriteError) -> R) throws(NodeWriteError) -> R {
    let (bytes, overflow) = max(count, 1).multipliedReportingOverflow(by: MemoryLayout<T>.stride)
    var memory: UnsafeMutableRawPointer?
    guard !overflow, bytes <= WeightStorage.physicalMemory, nwk_scratch_alloc(&memory, bytes) == 0, let memory else {
        throw .outOfMemory("\(what): cannot allocate \(count) elements of scratch memory")
    }
    defer { nwk_scratch_free(memory) }
    return try body(memory.bindMemory(to: T.self, capacity: max(count, 1)))
}
