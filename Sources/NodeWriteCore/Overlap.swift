/// A caller's output memory, checked before a call writes it: it must share no byte with
/// anything the call reads, nor with the call's other outputs. The kernels read their inputs
/// while the outputs fill, so shared memory would give wrong values without any error.
/// Views are compared by the bytes they can reach (a strided view with its gaps).
package struct OutputSpan {
    let bytes: Range<UInt>
    let name: StaticString

    /// No memory.
    package static let none = OutputSpan(nil as UnsafePointer<UInt8>?, count: 0, "nothing")

    /// `count` elements of `T` from `start` (nil or 0: nothing is written, nothing overlaps).
    package init<T>(_ start: UnsafePointer<T>?, count: Int, _ name: StaticString) {
        let address = UInt(bitPattern: start)
        bytes = start == nil || count <= 0 ? 0..<0 : address..<address &+ UInt(count) &* UInt(MemoryLayout<T>.stride)
        self.name = name
    }

    package init<T>(_ start: UnsafeMutablePointer<T>?, count: Int, _ name: StaticString) {
        self.init(UnsafePointer(start), count: count, name)
    }

    /// - Throws: `.invalidArgument` naming both when the view can reach one of these bytes.
    package func ensureDisjoint(from view: TensorView, _ what: @autoclosure () -> String) throws(NodeWriteError) {
        guard !bytes.isEmpty, view.byteBounds.overlaps(bytes) else { return }
        throw .invalidArgument("\(name): shares memory with \(what()), which the call reads; pass an output that overlaps no input")
    }

    /// - Throws: `.invalidArgument` when the two outputs share a byte.
    package func ensureDisjoint(from other: OutputSpan) throws(NodeWriteError) {
        guard !bytes.isEmpty, !other.bytes.isEmpty, other.bytes.overlaps(bytes) else { return }
        throw .invalidArgument("\(name) and \(other.name) share memory; pass outputs that do not overlap")
    }

    /// - Throws: `.invalidArgument` when the caller's input array shares a byte with this output.
    package func ensureDisjoint<T>(from input: UnsafeBufferPointer<T>, _ what: StaticString) throws(NodeWriteError) {
        try ensureDisjoint(from: OutputSpan(input.baseAddress, count: input.count, what))
    }
}

extension TensorView {
    /// From the first byte of its lowest element to past the last byte of its highest
    /// (the initialiser checked that this neither overflows nor wraps); empty without elements.
    var byteBounds: Range<UInt> {
        guard count > 0, let base else { return 0..<0 }
        var low = 0, high = 0
        for i in 0..<ndim {
            let reach = strides[i] &* (shape[i] &- 1)
            if reach < 0 { low &+= reach } else { high &+= reach }
        }
        let address = UInt(bitPattern: Int(bitPattern: base)), size = dtype.itemSize
        return address &+ UInt(bitPattern: low &* size)..<address &+ UInt(bitPattern: high &* size &+ size)
    }
}

extension LayerForm {
    /// - Throws: `.invalidArgument` when `out` shares memory with an activation or weight the
    ///   form reads.
    package func ensureDisjoint(_ out: OutputSpan) throws(NodeWriteError) {
        let layer = source.layer
        try out.ensureDisjoint(from: scalars, "activation \(source.nodeType.kind.activations[0].name) at layer \(layer)")
        if let values { try out.ensureDisjoint(from: values, "activation attn.v at layer \(layer)") }
        switch source.blocks {
        case .rows(let w), .heads(let w):
            try out.ensureDisjoint(from: w.view, "the output weight of layer \(layer)")
        case .decodedRows(let decoder, let through):
            try out.ensureDisjoint(from: decoder.view, "the autoencoder decoder of layer \(layer)")
            try out.ensureDisjoint(from: through.view, "the output weight of layer \(layer)")
        }
    }
}
