// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "nodewrite",
    products: [
        // The C ABI (include/nodewrite.h) as a shared library:
        // `swift build -c release --product nodewrite` yields .build/release/libnodewrite.so.
        .library(name: "nodewrite", type: .dynamic, targets: ["NodeWrite"]),
    ],
    targets: [
        // The public header, imported into Swift so that @implementation checks every export.
        .systemLibrary(name: "CNodeWrite", path: "include"),
        // Thread-local error message storage (C11 _Thread_local); not public API.
        .target(name: "_NodeWriteShims"),
        // Float32 kernels (C): the k-ordered FMA-chain GEMM and K = 1 row scaling, AVX-512 / AVX2
        // chosen at run time per function (no -march flags: the library stays a portable build).
        // Used by the core only; its nwk_ symbols are not exported (see include/nodewrite.map).
        .target(
            name: "_NodeWriteKernels",
            cSettings: [
                .define("_GNU_SOURCE"),
                // The contract is an explicit fmaf chain; forbid any other contraction, and optimize.
                .unsafeFlags(["-ffp-contract=off"]),
                .unsafeFlags(["-O3"], .when(configuration: .release)),
            ]
        ),
        // The math and the deriver: ordinary Swift types and throwing functions.
        .target(name: "NodeWriteCore", dependencies: ["CNodeWrite", "_NodeWriteKernels"]),
        // The C ABI shell: validates raw input, calls the core, maps errors to statuses.
        .target(
            name: "NodeWrite",
            dependencies: ["CNodeWrite", "_NodeWriteShims", "NodeWriteCore"],
            swiftSettings: [.enableExperimentalFeature("CImplementation")],
            linkerSettings: [
                // Release builds: the Swift runtime linked in statically, so that the .so loads
                // into a process with no Swift toolchain, and only the nw_ functions exported.
                // (Debug builds keep the shared runtime: the test bundle links the debug objects.)
                .unsafeFlags(["-static-stdlib",
                              "-Xlinker", "--version-script=\(Context.packageDirectory)/include/nodewrite.map"],
                             .when(configuration: .release)),
            ]
        ),
        .testTarget(
            name: "NodeWriteTests",
            dependencies: ["NodeWrite", "NodeWriteCore", "CNodeWrite"],
            resources: [.copy("Fixtures")]
        ),
    ]
)
