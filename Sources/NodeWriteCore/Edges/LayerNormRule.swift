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
        var sum = 0.0
        for i in 0..<n { sum += Double(x[i]) }
        let mean = Float(sum / Double(n))
        var sq = 0.0
        for i in 0..<n { let c = x[i] - mean; xhat[i] = c; sq += Double(c) * Double(c) }
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
        var sum = 0.0
        for i in 0..<n { sum += Double(x[i]) }
        return Float(sum / Double(n))
    }

    static func meanOfProduct(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float {
        var sum = 0.0
        for i in 0..<n { sum += Double(x[i]) * Double(y[i]) }
        return Float(sum / Double(n))
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
