// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "nodewrite",
    products: [
        // The C ABI (include/nodewrite.h) as a shared library: libnodewrite.so. Build it with
        // `make lib` (scripts/build-lib.sh), which links the Swift runtime in statically
        // and exports only the nw_ functions.
        .library(name: "nodewrite", type: .dynamic, targets: ["NodeWrite"]),
    ],
    targets: [
        // The public header, imported into Swift so that @implementation checks every export.
        .systemLibrary(name: "CNodeWrite", path: "include"),
        // Thread-local error message storage (C11 _Thread_local); not public API.
        .target(name: "_NodeWriteShims"),
        // The math and the deriver: ordinary Swift types and throwing functions.
        .target(name: "NodeWriteCore"),
        // The C ABI shell: validates raw input, calls the core, maps errors to statuses.
        .target(
            name: "NodeWrite",
            dependencies: ["CNodeWrite", "_NodeWriteShims", "NodeWriteCore"],
            swiftSettings: [.enableExperimentalFeature("CImplementation")]
        ),
        .testTarget(
            name: "NodeWriteTests",
            dependencies: ["NodeWrite", "NodeWriteCore", "CNodeWrite"],
            resources: [.copy("Fixtures")]
        ),
    ]
)
