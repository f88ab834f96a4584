import CNodeWrite
import NodeWriteCore
import _NodeWriteShims

// nw_store_* of nodewrite.h.

@_cdecl("nw_store_create") @implementation
public func nw_store_create(_ out: UnsafeMutablePointer<OpaquePointer?>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        try required(out, "out").pointee = Handle.retain(StoreBox())
    }
}

@_cdecl("nw_store_destroy") @implementation
public func nw_store_destroy(_ store: OpaquePointer?) { counted { Handle.release(store, as: StoreBox.self) } }

@_cdecl("nw_store_put") @implementation
public func nw_store_put(_ store: OpaquePointer?, _ activation: Int32, _ layer: Int32,
                         _ t: UnsafePointer<nw_tensor_view>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let box = try Handle.borrow(store, as: StoreBox.self, "store")
        let location = try decode(activation, as: ActivationLocation.self, "activation")
        let view = try TensorView(t, ndim: location.ndim, name: "t")
        try box.store.put(location, layer: Int(layer), view)
    }
}

@_cdecl("nw_store_remove") @implementation
public func nw_store_remove(_ store: OpaquePointer?, _ activation: Int32, _ layer: Int32) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let box = try Handle.borrow(store, as: StoreBox.self, "store")
        try box.store.remove(try decode(activation, as: ActivationLocation.self, "activation"), layer: Int(layer))
    }
}

@_cdecl("nw_store_clear") @implementation
public func nw_store_clear(_ store: OpaquePointer?) {
    _nw_count_call()
    guard let store else { return }
    Unmanaged<StoreBox>.fromOpaque(UnsafeRawPointer(store)).takeUnretainedValue().store.removeAll()
}
