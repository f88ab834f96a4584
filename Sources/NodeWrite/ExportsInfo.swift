import CNodeWrite
#if canImport(Glibc)
import Glibc
#endif
import NodeWriteCore
import _NodeWriteShims

// Version, status, error and name functions of nodewrite.h.

@_cdecl("nw_abi_version") @implementation
public func nw_abi_version() -> UInt32 { counted { UInt32(NW_ABI_VERSION) } }

@_cdecl("nw_version_string") @implementation
public func nw_version_string() -> UnsafePointer<CChar>? { counted { versionString } }

/// NW_VERSION_STRING of the header (the one place the version is written), as static storage.
nonisolated(unsafe) private let versionString: UnsafePointer<CChar>? = NW_VERSION_STRING.withCString { UnsafePointer(strdup($0)) }

@_cdecl("nw_status_string") @implementation
public func nw_status_string(_ status: nw_status) -> UnsafePointer<CChar>? {
    _nw_count_call()
    let name: StaticString = switch status {
    case NW_OK.rawValue: "NW_OK"
    case NW_ERR_INVALID_ARGUMENT.rawValue: "NW_ERR_INVALID_ARGUMENT"
    case NW_ERR_INDEX_OUT_OF_RANGE.rawValue: "NW_ERR_INDEX_OUT_OF_RANGE"
    case NW_ERR_SHAPE_MISMATCH.rawValue: "NW_ERR_SHAPE_MISMATCH"
    case NW_ERR_UNSUPPORTED_DTYPE.rawValue: "NW_ERR_UNSUPPORTED_DTYPE"
    case NW_ERR_MISSING_INPUT.rawValue: "NW_ERR_MISSING_INPUT"
    case NW_ERR_UNSUPPORTED.rawValue: "NW_ERR_UNSUPPORTED"
    case NW_ERR_OUT_OF_MEMORY.rawValue: "NW_ERR_OUT_OF_MEMORY"
    case NW_ERR_BUFFER_TOO_SMALL.rawValue: "NW_ERR_BUFFER_TOO_SMALL"
    case NW_ERR_STALE_INPUT.rawValue: "NW_ERR_STALE_INPUT"
    default: "NW_ERR_UNKNOWN"
    }
    return cString(name)
}

@_cdecl("nw_last_error_message") @implementation
public func nw_last_error_message() -> UnsafePointer<CChar>? { counted { _nw_last_error() } }

/// The one export that does not count itself.
@_cdecl("nw_thread_call_count") @implementation
public func nw_thread_call_count() -> UInt64 { _nw_call_count() }

// MARK: - Names

/// TDB's name of a raw enum value, or NULL.
func name<E: TDBNamed & RawRepresentable>(_ raw: Int32, _: E.Type) -> UnsafePointer<CChar>?
where E.RawValue == Int32 {
    counted { E(rawValue: raw).map { cString($0.name) } }
}

/// The raw value of TDB's name, written to `out` on success.
func value<E: TDBNamed & RawRepresentable>(_ name: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<Int32>?,
                                                   _: E.Type, _ what: StaticString) -> nw_status
where E.RawValue == Int32 {
    boundary { () throws(NodeWriteError) in
        let text = String(cString: try required(name, "name"))
        let out = try required(out, "out")
        guard let e = E.named(text) else { throw .invalidArgument("name \"\(text)\" is not a known \(what)") }
        out.pointee = e.rawValue
    }
}

@_cdecl("nw_node_type_name") @implementation
public func nw_node_type_name(_ v: Int32) -> UnsafePointer<CChar>? { name(v, NodeType.self) }

@_cdecl("nw_activation_name") @implementation
public func nw_activation_name(_ v: Int32) -> UnsafePointer<CChar>? { name(v, ActivationLocation.self) }

@_cdecl("nw_weight_name") @implementation
public func nw_weight_name(_ v: Int32) -> UnsafePointer<CChar>? { name(v, WeightLocation.self) }

@_cdecl("nw_dtype_name") @implementation
public func nw_dtype_name(_ v: Int32) -> UnsafePointer<CChar>? { name(v, DType.self) }

@_cdecl("nw_node_type_from_name") @implementation
public func nw_node_type_from_name(_ s: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<Int32>?) -> nw_status {
    value(s, out, NodeType.self, "node type")
}

@_cdecl("nw_activation_from_name") @implementation
public func nw_activation_from_name(_ s: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<Int32>?) -> nw_status {
    value(s, out, ActivationLocation.self, "activation location")
}

@_cdecl("nw_weight_from_name") @implementation
public func nw_weight_from_name(_ s: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<Int32>?) -> nw_status {
    value(s, out, WeightLocation.self, "weight location")
}

@_cdecl("nw_dtype_from_name") @implementation
public func nw_dtype_from_name(_ s: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<Int32>?) -> nw_status {
    value(s, out, DType.self, "dtype")
}

@_cdecl("nw_autoencoder_input_from_name") @implementation
public func nw_autoencoder_input_from_name(_ s: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<Int32>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let text = String(cString: try required(s, "name"))
        let out = try required(out, "out")
        guard let input = AutoencoderInput.from(derivedScalarType: text) else {
            throw .unsupported("\"\(text)\" is not a supported autoencoder input (mlp_post_act or a resid_* type)")
        }
        out.pointee = input.rawValue
    }
}

@_cdecl("nw_autoencoder_input_source_name") @implementation
public func nw_autoencoder_input_source_name(_ i: Int) -> UnsafePointer<CChar>? {
    counted { i >= 0 && i < AutoencoderInput.sources.count ? cString(AutoencoderInput.sources[i].name) : nil }
}
