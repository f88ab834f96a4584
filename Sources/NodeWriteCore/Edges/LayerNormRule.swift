#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One rule per primitive, composed by hand (no autodiff): LayerNorm's statistics, its
/// tangent (jvp) and its adjoint (vjp), with or without the scale detached, and the tanh
/// GELU and its derivative. All in float32 (sums in float64, rounded once), so that the
/// places where TDB's float32 autodiff gives exact zeros give exact zeros here.
enum LayerNormRule {
    /// xhat = (x - mean) / s and s = sqrt(mean((x - mean)^2) + eps) of one row; returns s.
    @inline(__always)
    static func stats(_ x: UnsafePointer<Float>, _ n: Int, eps: Float, xhat: UnsafeMutablePointer<Float>) -> Float {
        let mean = Float(sum64(n) { Double(x[$0]) } / Double(n))
        for i in 0..<n { xhat[i] = x[i] - mean }
        let sq = sum64(n) { Double(xhat[$0]) * Double(xhat[$0]) }
        let s = (Float(sq / Double(n)) + eps).squareRoot()
        for i in 0..<n { xhat[i] = xhat[i] / s }
        return s
    }

    /// The LayerNorm's output row: xhat · gain + bias.
    @inline(__always)
    static func apply(_ xhat: UnsafePointer<Float>, _ n: Int, gain: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                      into out: UnsafeMutablePointer<Float>) {
        for i in 0..<n { out[i] = xhat[i] * gain[i] + bias[i] }
    }

    static func mean(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        Float(sum64(n) { Double(x[$0]) } / Double(n))
    }

    static func meanOfProduct(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float {
        Float(sum64(n) { Double(x[$0]) * Double(y[$0]) } / Double(n))
    }

    /// Tangent of gain · xhat + bias along dx: gain · (dxc - xhat · mean(xhat · dxc)) / s with
    /// dxc = dx - mean(dx); detached scale: gain · dxc / s.
    static func jvp(_ dx: UnsafePointer<Float>, xhat: UnsafePointer<Float>, s: Float, gain: UnsafePointer<Float>,
                    detach: Bool, _ n: Int, into out: UnsafeMutablePointer<Float>) {
        let m = mean(dx, n)
        for i in 0..<n { out[i] = dx[i] - m }
        if !detach {
            let c = meanOfProduct(xhat, out, n)
            for i in 0..<n { out[i] = out[i] - xhat[i] * c }
        }
        for i in 0..<n { out[i] = gain[i] * out[i] / s }
    }

    /// The adjoint of `jvp`: the gradient at x of <ybar, LayerNorm(x)> (out may be ybar).
    static func vjp(_ ybar: UnsafePointer<Float>, xhat: UnsafePointer<Float>, s: Float, gain: UnsafePointer<Float>,
                    detach: Bool, _ n: Int, into out: UnsafeMutablePointer<Float>) {
        for i in 0..<n { out[i] = gain[i] * ybar[i] / s }
        if !detach {
            let c = meanOfProduct(xhat, out, n)
            for i in 0..<n { out[i] = out[i] - xhat[i] * c }
        }
        let m = mean(out, n)
        for i in 0..<n { out[i] = out[i] - m }
    }
}

/// The MLP's activation function (nodewrite.h's enum nw_mlp_activation), a model fact.
package enum MLPActivation: Int32, CaseIterable, Sendable {
    /// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): TDB's, and TransformerLens's
    /// gelu_new / gelu_fast / gelu_pytorch_tanh.
    case geluTanh = 0
    /// x Phi(x) (torch's exact GELU, TransformerLens's "gelu").
    case geluErf = 1
    /// max(x, 0).
    case relu = 2

    /// Its name (the Python keyword's value).
    package var name: String {
        switch self {
        case .geluTanh: "gelu_tanh"
        case .geluErf: "gelu_erf"
        case .relu: "relu"
        }
    }

    /// d act / dx at x, in float32.
    @inline(__always)
    package func derivative(_ x: Float) -> Float {
        switch self {
        case .geluTanh: GELURule.derivative(x)
        case .geluErf: GELUErfRule.derivative(x)
        case .relu: x > 0 ? 1 : 0
        }
    }
}

enum GELURule {
    static let c = Float((2.0 / Double.pi).squareRoot())

    /// d gelu_tanh / dx. Where tanh rounds to -1 in float32 (x below about -5.8) both terms
    /// are exactly 0, as in TDB's float32 autodiff.
    @inline(__always)
    static func derivative(_ x: Float) -> Float {
        let t = tanhf(c * (x + 0.044715 * x * x * x))
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
    }
}

enum GELUErfRule {
    static let invSqrt2 = Float(1.0 / 2.0.squareRoot())
    static let invSqrt2Pi = Float(1.0 / (2.0 * Double.pi).squareRoot())

    /// d (x Phi(x)) / dx = Phi(x) + x phi(x). Phi is taken as erfc(-x / sqrt 2) / 2, which
    /// keeps its relative precision in the left tail (1 + erf(x / sqrt 2) cancels to 0 below
    /// about x = -5.5 in float32); there the two terms are tiny and of opposite signs, and the
    /// sum is 0 once phi underflows (x below about -14), as in torch's float32 autodiff. At large
    /// positive x, Phi rounds to 1 and phi to 0: the derivative is exactly 1.
    @inline(__always)
    static func derivative(_ x: Float) -> Float {
        let cdf = 0.5 * erfcf(-x * invSqrt2)
        let pdf = expf(-0.5 * x * x) * invSqrt2Pi
        return cdf + x * pdf
    }
}
