import CNodeWrite
import NodeWriteCore

// The facts of nodewrite.h: the core's tables (NodeKind, DerivedScalarSpec, ActivationLocation,
// WeightLocation, DType, AutoencoderInput, SAELensHook) as size-led info structs.

@_cdecl("nw_node_type_info_get") @implementation
public func nw_node_type_info_get(_ nodeType: Int32, _ out: UnsafeMutablePointer<nw_node_type_info>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let kind = try row(nodeType, NodeType.self, "node_type").kind
        try writeSized(out) {
            var i = nw_node_type_info()
            i.name = cString(kind.name)
            i.n_indices = Int32(kind.indexNames.count)
            i.is_latent = kind.latents ? 1 : 0
            i.index_names = four(kind.indexNames.map { Optional(cString($0)) }, nil)
            i.n_activations = Int32(kind.activations.count)
            i.activations = four(kind.activations.map(\.rawValue), -1)
            i.weight = kind.weight?.rawValue ?? -1
            i.width_dim = kind.width.rawValue
            return i
        }
    }
}

@_cdecl("nw_dst_info_get") @implementation
public func nw_dst_info_get(_ dst: Int32, _ out: UnsafeMutablePointer<nw_dst_info>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let spec = try row(dst, DerivedScalar.self, "dst").spec
        try writeSized(out) {
            var i = nw_dst_info()
            i.name = cString(spec.name)
            i.node_type = spec.nodeType?.rawValue ?? -1
            i.layout = spec.layout.rawValue
            i.quantity = spec.quantity.rawValue
            i.needs_direction = spec.needsDirection ? 1 : 0
            i.has_layer = spec.hasLayer ? 1 : 0
            i.ndim = Int32(spec.dims.count)
            i.dims = four(spec.dims.map(\.rawValue), Dim.none.rawValue)
            i.n_activations = Int32(spec.activations.count)
            i.activations = four(spec.activations.map(\.rawValue), -1)
            return i
        }
    }
}

@_cdecl("nw_activation_info_get") @implementation
public func nw_activation_info_get(_ activation: Int32, _ out: UnsafeMutablePointer<nw_activation_info>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let a = try row(activation, ActivationLocation.self, "activation")
        try writeSized(out) {
            var i = nw_activation_info()
            i.name = cString(a.name)
            i.ndim = Int32(a.ndim)
            i.dims = four(a.dims.map(\.rawValue), Dim.none.rawValue)
            i.has_layer = a.hasLayer ? 1 : 0
            i.latent_node_type = a.latentNodeType?.rawValue ?? -1
            return i
        }
    }
}

@_cdecl("nw_weight_info_get") @implementation
public func nw_weight_info_get(_ weight: Int32, _ out: UnsafeMutablePointer<nw_weight_info>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let w = try row(weight, WeightLocation.self, "weight")
        try writeSized(out) {
            var i = nw_weight_info()
            i.name = cString(w.name)
            i.has_layer = w.hasLayer ? 1 : 0
            i.ndim = Int32(w.ndim)
            i.dims = four(w.dims.map(\.rawValue), Dim.none.rawValue)
            return i
        }
    }
}

@_cdecl("nw_dtype_info_get") @implementation
public func nw_dtype_info_get(_ dtype: Int32, _ out: UnsafeMutablePointer<nw_dtype_info>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let d = try row(dtype, DType.self, "dtype")
        try writeSized(out) {
            var i = nw_dtype_info()
            i.name = cString(d.name)
            i.item_size = Int32(d.itemSize)
            return i
        }
    }
}

@_cdecl("nw_autoencoder_input_info_get") @implementation
public func nw_autoencoder_input_info_get(_ input: Int32, _ out: UnsafeMutablePointer<nw_autoencoder_input_info>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let a = try row(input, AutoencoderInput.self, "input")
        try writeSized(out) {
            var i = nw_autoencoder_input_info()
            i.name = cString(a.name)
            i.input_dim = a.inputDim.rawValue
            i.weight = a.weight?.rawValue ?? -1
            return i
        }
    }
}

@_cdecl("nw_saelens_hook_info_get") @implementation
public func nw_saelens_hook_info_get(_ index: Int32, _ out: UnsafeMutablePointer<nw_saelens_hook_info>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let table = SAELensHook.table
        guard index >= 0, index < table.count else {
            throw .indexOutOfRange("i = \(index) is not in the table (0 ..< \(table.count))")
        }
        let h = table[Int(index)]
        try writeSized(out) {
            var i = nw_saelens_hook_info()
            i.suffix = cString(h.suffix)
            i.node_type = h.nodeType.rawValue
            i.input = h.input.rawValue
            i.tdb_input = cString(h.tdbInput)
            i.min_layer = Int32(h.minLayer)
            i.max_layer = h.maxLayer.map(Int32.init) ?? -1
            return i
        }
    }
}

@_cdecl("nw_saelens_hook_find") @implementation
public func nw_saelens_hook_find(_ hookName: UnsafePointer<CChar>?, _ row: UnsafeMutablePointer<Int32>?,
                                 _ layer: UnsafeMutablePointer<Int32>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let text = String(cString: try required(hookName, "hook_name"))
        let row = try required(row, "row"), layer = try required(layer, "layer")
        let found = try SAELensHook.find(text, "hook_name")
        guard let l = Int32(exactly: found.layer) else {
            throw .invalidArgument("hook_name \"\(text)\": layer \(found.layer) exceeds int32")
        }
        row.pointee = Int32(found.row)
        layer.pointee = l
    }
}
