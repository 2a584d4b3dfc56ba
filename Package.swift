// swift-tools-version: 6.0
// Kolors Studio: a terminal studio and an in-process CPU engine for the Kolors
// text-to-image model. Layers (each a target, lower layers never import higher ones):
//   Shims (system C libraries) → CKolorsKernels / CKolorsPNG (our C helpers)
//   → KolorsEngine (tensors, kernels, backends, checkpoints)
//   → KolorsModels (tokenizer, ChatGLM3, UNet, VAE …, names mirror diffusers)
//   → KolorsPipelines (schedulers, RNG, txt2img / img2img; no terminal)
//   → KolorsStudio (state, actions, gallery; drawing on KolorsTerminal)
//   → kolors (the one executable)
import PackageDescription

/// Numeric code is always compiled optimised: debug builds of tight loops are 10–100× slower,
/// which would make the parity tests crawl.
let optimised: [SwiftSetting] = [.unsafeFlags(["-O"])]
let optimisedC: [CSetting] = [.unsafeFlags(["-O3", "-fno-math-errno"])]

let package = Package(
    name: "KolorsStudio",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "kolors", targets: ["kolors"]),
        .library(name: "KolorsEngine", targets: ["KolorsEngine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // ---- system libraries ------------------------------------------------------------
        .systemLibrary(name: "COpenBLAS", path: "Sources/Shims/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CNcursesw", path: "Sources/Shims/CNcursesw",
                       providers: [.apt(["libncurses-dev"])]),
        .systemLibrary(name: "CSixel", path: "Sources/Shims/CSixel", pkgConfig: "libsixel",
                       providers: [.apt(["libsixel-dev"])]),
        .systemLibrary(name: "CDNNL", path: "Sources/Shims/CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(name: "CLibPNG", path: "Sources/Shims/CLibPNG", pkgConfig: "libpng16",
                       providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/Shims/CZlib", providers: [.apt(["zlib1g-dev"])]),

        // ---- our C helpers -----------------------------------------------------------------
        .target(name: "CKolorsKernels", cSettings: optimisedC, linkerSettings: [.linkedLibrary("m")]),
        .target(name: "CKolorsPNG", dependencies: ["CLibPNG"], cSettings: optimisedC),

        // ---- engine and models -----------------------------------------------------------
        .target(name: "KolorsEngine", dependencies: ["COpenBLAS", "CDNNL", "CKolorsKernels"],
                swiftSettings: optimised),
        // KolorsImageIO: CLIP's image processor resizes with Pillow-exact resampling.
        .target(name: "KolorsModels", dependencies: ["KolorsEngine", "KolorsImageIO"], swiftSettings: optimised),
        .target(name: "KolorsPipelines", dependencies: ["KolorsModels", "KolorsEngine", "KolorsImageIO"],
                swiftSettings: optimised),
        .target(name: "KolorsImageIO", dependencies: ["CKolorsPNG", "CLibPNG"],
                swiftSettings: optimised),

        // ---- terminal and studio ---------------------------------------------------------
        // sixel (libsixel), kitty graphics (zlib) and iTerm2 inline images: encoders, no I/O.
        .target(name: "KolorsTerminal", dependencies: ["CNcursesw", "CSixel", "CZlib"]),
        // Pure studio logic: state, reducer, editor, layout, themes, gallery. No terminal I/O.
        .target(name: "KolorsStudioCore", dependencies: ["KolorsPipelines", "KolorsImageIO", "KolorsEngine"]),
        // The ncurses application: drawing, input loop, signals, background generation, sixel.
        .target(name: "KolorsStudio", dependencies: [
            "KolorsStudioCore", "KolorsPipelines", "KolorsTerminal", "KolorsImageIO", "KolorsEngine", "CNcursesw",
        ]),

        // ---- the executable --------------------------------------------------------------
        .executableTarget(name: "kolors", dependencies: [
            "KolorsEngine", "KolorsModels", "KolorsImageIO", "KolorsTerminal", "KolorsPipelines", "KolorsStudioCore",
            "KolorsStudio",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // ---- tests -----------------------------------------------------------------------
        // Fixture paths, reference files and error measures shared by the test targets.
        .target(name: "KolorsTestSupport", dependencies: ["KolorsEngine"], path: "Tests/Support"),
        .testTarget(name: "KolorsEngineTests", dependencies: ["KolorsTestSupport", "KolorsEngine", "CKolorsKernels"], swiftSettings: optimised),
        .testTarget(name: "KolorsPipelinesTests", dependencies: ["KolorsTestSupport", "KolorsPipelines", "KolorsModels", "KolorsEngine", "KolorsImageIO"],
                    swiftSettings: optimised),
        .testTarget(name: "KolorsModelsTests", dependencies: ["KolorsTestSupport", "KolorsModels", "KolorsEngine", "KolorsImageIO"],
                    swiftSettings: optimised),
        .testTarget(name: "SystemLibraryTests", dependencies: [
            "COpenBLAS", "CKolorsKernels", "KolorsImageIO", "KolorsTerminal", "CSixel", "CNcursesw",
        ]),
        .testTarget(name: "CLITests", dependencies: ["KolorsTestSupport", "KolorsPipelines", "KolorsImageIO", "KolorsEngine"]),
        .testTarget(name: "KolorsStudioTests", dependencies: [
            "KolorsStudioCore", "KolorsStudio", "KolorsPipelines", "KolorsImageIO", "KolorsEngine", "KolorsTerminal", "CZlib",
        ]),
    ]
)
