#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Temporary memory for one call: malloc'ed, checked, freed by `withScratch`.
/// Swift traps when an allocation fails; this turns failure into `.outOfMemory`.
package func withScratch<T, R>(_: T.Type, count: Int, _ what: String,
                               _ body: (UnsafeMutablePointer<T>) throws(NodeWriteError) -> R) throws(NodeWriteError) -> R {
    let (bytes, overflow) = max(count, 1).multipliedReportingOverflow(by: MemoryLayout<T>.stride)
    guard !overflow, bytes <= WeightStorage.physicalMemory, let memory = malloc(bytes) else {
        throw .outOfMemory("\(what): cannot allocate \(count) elements of scratch memory")
    }
    defer { free(memory) }
    return try body(memory.bindMemory(to: T.self, capacity: max(count, 1)))
}
