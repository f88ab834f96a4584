import NodeWriteCore

// The objects behind the header's opaque pointers. Each is retained once by its
// _create and released once by its _destroy.

/// nw_store: a mutable store.
final class StoreBox {
    var store = ActivationStore()
}

/// nw_deriver: an immutable deriver.
final class DeriverBox {
    let deriver: NodeWriteDeriver
    init(_ deriver: NodeWriteDeriver) { self.deriver = deriver }
}

enum Handle {
    static func retain<T: AnyObject>(_ object: T) -> OpaquePointer {
        OpaquePointer(Unmanaged.passRetained(object).toOpaque())
    }

    static func release<T: AnyObject>(_ pointer: OpaquePointer?, as: T.Type) {
        guard let pointer else { return }
        Unmanaged<T>.fromOpaque(UnsafeRawPointer(pointer)).release()
    }

    /// The object behind a handle, borrowed for the call; NULL is `.invalidArgument`.
    static func borrow<T: AnyObject>(_ pointer: OpaquePointer?, as: T.Type, _ name: StaticString) throws(NodeWriteError) -> T {
        Unmanaged<T>.fromOpaque(UnsafeRawPointer(try required(pointer, name))).takeUnretainedValue()
    }
}
