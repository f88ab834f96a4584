import Foundation
@testable import NodeWriteCore
import Testing

/// The header's per-type text and names follow the core's tables (one fact in one place:
/// the tables; the header is checked against them).
@Suite("Tables")
struct TableTests {
    static let header = try! String(contentsOf: URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("include/nodewrite.h"), encoding: .utf8)

    @Test("each node type's header comment lists the table's index names")
    func nodeTypes() {
        for type in NodeType.allCases {
            let names = type.kind.indexNames.map(\.description).joined(separator: ", ")
            let line = Self.header.split(separator: "\n").first {
                $0.contains("NW_NODE_") && ($0.contains("= \(type.rawValue),") || $0.contains("= \(type.rawValue) "))
            }
            #expect(line?.contains("indices: (\(names))") == true, "\(type.name): \(line ?? "no line")")
        }
    }

    @Test("every derived scalar's header constant is its TDB name in upper case")
    func derivedScalars() {
        for dst in DerivedScalar.allCases {
            let constant = "NW_DST_\(dst.name.description.uppercased()) = \(dst.rawValue)"
            #expect(Self.header.contains(constant), "\(constant)")
        }
    }

    @Test("every activation and weight of the header carries its TDB name")
    func names() {
        for a in ActivationLocation.allCases { #expect(Self.header.contains("\"\(a.name)\""), "\(a.name)") }
        for w in WeightLocation.allCases { #expect(Self.header.contains("\"\(w.name)\""), "\(w.name)") }
    }
}
