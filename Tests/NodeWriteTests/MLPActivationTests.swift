import Foundation
@testable import NodeWriteCore
import Testing

/// Each MLP activation's derivative rule (float32) against a central finite difference of the
/// function itself in float64, and the model fact's defaults and validation.
@Suite struct MLPActivationTests {
    static func function(_ a: MLPActivation, _ x: Double) -> Double {
        switch a {
        case .geluTanh: 0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
        case .geluErf: 0.5 * x * erfc(-x / 2.0.squareRoot())
        case .relu: max(x, 0)
        }
    }

    /// x from -9 to 9 in steps of 0.0371 (0 is never hit, so ReLU's kink is never straddled).
    static let grid: [Double] = (0...485).map { -9 + 0.0371 * Double($0) }

    @Test(arguments: MLPActivation.allCases)
    func derivativeMatchesFiniteDifferences(_ a: MLPActivation) {
        let h = 1e-5
        var worst = 0.0
        for x in Self.grid {
            let fd = (Self.function(a, x + h) - Self.function(a, x - h)) / (2 * h)
            let got = Double(a.derivative(Float(x)))
            // the rule is evaluated at float32(x): compare with the FD there, relative to max(1, |fd|)
            let fdAt = (Self.function(a, Double(Float(x)) + h) - Self.function(a, Double(Float(x)) - h)) / (2 * h)
            worst = max(worst, abs(got - fdAt) / max(1, abs(fd)))
        }
        #expect(worst < 2e-6, "\(a.name): worst \(worst)")
    }

    /// The erf GELU's left tail: no cancellation to a wrong sign or NaN, exactly 0 once phi
    /// underflows, exactly 1 far right.
    @Test func erfTailIsSane() {
        for x in stride(from: Float(-30), through: -3, by: 0.25) {
            let d = MLPActivation.geluErf.derivative(x)
            let want = Self.function(.geluErf, Double(x) + 1e-6) - Self.function(.geluErf, Double(x) - 1e-6)
            #expect(d.isFinite && d <= 0, "x \(x): \(d)")
            // relative agreement where the double-precision derivative is representable
            let exact = want / 2e-6
            if abs(exact) > 1e-30 { #expect(abs(Double(d) - exact) <= 1e-3 * abs(exact) + 1e-37, "x \(x): \(d) vs \(exact)") }
        }
        #expect(MLPActivation.geluErf.derivative(-20) == 0)
        #expect(MLPActivation.geluErf.derivative(10) == 1)
        #expect(MLPActivation.relu.derivative(0) == 0)
        #expect(MLPActivation.relu.derivative(1e-30) == 1)
    }

    @Test func modelDefaultsAndValidation() throws {
        let model = Model(dims: try ModelDims(nLayers: 1, dModel: 4, nHeads: 1, dHead: 2, dFF: 8))
        #expect(model.mlpActivation == .geluTanh)
        #expect(model.layerNormEpsilonSetting == 1e-5)
        #expect(model.layerNormEpsilon == Float(1e-5))
        for bad in [0.0, -1e-5, .nan, .infinity, 1e-50, 1e300] {
            #expect(throws: NodeWriteError.self) { try model.setLayerNormEpsilon(bad) }
            #expect(model.layerNormEpsilonSetting == 1e-5)
        }
        try model.setLayerNormEpsilon(1e-12)
        #expect(model.layerNormEpsilonSetting == 1e-12)
    }
}
