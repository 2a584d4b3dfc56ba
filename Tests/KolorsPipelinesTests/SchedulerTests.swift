import Foundation
import KolorsEngine
import KolorsPipelines
import Testing
import KolorsTestSupport

/// The six schedulers against diffusers 0.42 (Tests/Fixtures/references/schedulers.safetensors
/// from the fixtures branch, and schedulers_extra.safetensors from
/// scripts/fixtures/scheduler_extra_refs.py). Tolerances:
/// * integer timesteps exactly; fractional ones and σ within 1e-6 relative (torch's float32
///   sqrt is off by one ulp for ~17 % of the σ table, ours is correctly rounded);
/// * every trajectory tensor (scale_model_input, prev_sample, x0) within 1e-5 relative L2,
///   with the trajectory run on our own samples so that errors compound as in a real run.
@Suite("schedulers against diffusers")
struct SchedulerTests {
    static let scheduleTolerance = 1e-6
    static let trajectoryTolerance = 1e-5
    static let stepCounts = [1, 2, 3, 4, 7, 10, 25, 30, 50]
    /// Step counts where one Karras timestep, round(sigma_to_t(σ)), falls on the other side of
    /// .5 (e.g. N = 903: t = 669.5000058 in diffusers, 669.4999904 here, so 670 vs 669). The
    /// fixtures' torch computes the σ table with a float32 sqrt that is not correctly rounded
    /// (σ_max and σ_min one ulp off) and numpy's float32 log is not either; a Python model of
    /// the same formulas with correctly rounded sqrt and log flips exactly these. The σ the
    /// solver uses agree to 1e-7.
    static let karrasRoundingFlips: [SchedulerKind: Set<Int>] = [.dpmpp2mKarras: [498, 777, 903, 926, 995]]

    // MARK: noise schedule and config

    @Test("betas and alphas_cumprod are torch's, bit for bit")
    func noiseSchedule() throws {
        let refs = try Fixtures.References("schedulers.safetensors")
        let schedule = try NoiseSchedule(config: try kolorsConfig(), scheduler: "test")
        #expect(schedule.count == 1100)
        #expect(schedule.betas == (try refs["betas"]).values)
        // torch's CPU cumprod accumulates in double and rounds each prefix: identical values.
        #expect(schedule.alphasCumprod == (try refs["alphas_cumprod"]).values)
        // σ (spec §7.1 values from torch, whose sqrt may be one ulp off).
        #expect(abs(schedule.sigmas[1099] - 29.061243) <= Float(29.061243).ulp)
        #expect(abs(schedule.sigmas[1079] - 25.281364) <= Float(25.281364).ulp)
    }

    @Test("scheduler_config.json: Kolors values, unknown keys ignored, class defaults for absent keys")
    func configDecoding() throws {
        let config = try kolorsConfig()
        #expect(config.className == "EulerDiscreteScheduler")
        #expect(config.numTrainTimesteps == 1100)
        #expect(config.betaSchedule == "scaled_linear")
        #expect(config.timestepSpacing == "leading")
        #expect(config.stepsOffset == 1)
        #expect(config.clipSample == false && config.setAlphaToOne == false)
        #expect(config.solverOrder == nil && config.trainedBetas == nil)

        // diffusers writes lambda_min_clipped = -inf as a bare -Infinity.
        let dpm = try SchedulerConfig(json: Data(#"{"lambda_min_clipped": -Infinity, "solver_order": 3, "x": [1]}"#.utf8))
        #expect(dpm.lambdaMinClipped == -.infinity && dpm.solverOrder == 3)

        // An empty config gives each class its own defaults (1000 training steps, linear betas).
        let euler = try EulerDiscreteScheduler(config: SchedulerConfig())
        try euler.setTimesteps(4)
        #expect(euler.timesteps == [999, 666, 333, 0])  // "linspace"
        let ddim = try DDIMScheduler(config: SchedulerConfig())
        try ddim.setTimesteps(4)
        #expect(ddim.timesteps == [750, 500, 250, 0])  // "leading", steps_offset 0
    }

    @Test("config errors name the key and the valid values")
    func configErrors() throws {
        let wrongType = #expect(throws: SchedulerError.self) {
            try SchedulerConfig(json: Data(#"{"steps_offset": "one"}"#.utf8))
        }
        #expect(wrongType?.message.contains("steps_offset") == true)

        var config = try kolorsConfig()
        config.timestepSpacing = "sideways"
        let spacing = #expect(throws: SchedulerError.self) { try EulerDiscreteScheduler(config: config) }
        #expect(spacing?.message == "EulerDiscreteScheduler: timestep_spacing 'sideways' is not supported (valid: linspace, leading, trailing)")

        config = try kolorsConfig()
        config.thresholding = true
        let unsupported = #expect(throws: SchedulerError.self) { try DPMSolverMultistepScheduler(config: config) }
        #expect(unsupported?.message == "DPMSolverMultistepScheduler: thresholding = true is not supported")

        config = try kolorsConfig()
        config.betaSchedule = "squaredcos_cap_v2"
        #expect(throws: SchedulerError.self) { try UniPCMultistepScheduler(config: config) }
    }

    // MARK: SchedulerKind

    @Test("names, A1111 display names and unknown names")
    func kinds() throws {
        #expect(SchedulerKind.allCases.map(\.rawValue) == ["euler", "euler-a", "dpm++2m", "dpm++2m-karras", "ddim", "unipc"])
        #expect(SchedulerKind.allCases.map(\.displayName) == ["Euler", "Euler a", "DPM++ 2M", "DPM++ 2M Karras", "DDIM", "UniPC"])
        for kind in SchedulerKind.allCases {
            #expect(try SchedulerKind(name: kind.rawValue) == kind)
            #expect(try kind.make(config: kolorsConfig()).name == kind.rawValue)
        }
        let error = #expect(throws: SchedulerError.self) { try SchedulerKind(name: "dpm++") }
        #expect(error?.message == "unknown scheduler 'dpm++' (valid: euler, euler-a, dpm++2m, dpm++2m-karras, ddim, unipc)")
    }

    @Test("the overrides each kind applies match the reference fixtures")
    func overrides() throws {
        let manifest = try Fixtures.manifest("schedulers.json")
        let schedulers = try #require(manifest["schedulers"] as? [String: [String: Any]])
        for kind in SchedulerKind.allCases {
            let entry = try #require(schedulers[kind.rawValue])
            let overrides = try #require(entry["from_config_overrides"] as? [String: Any])
            let expected: [String: Bool] = kind == .dpmpp2mKarras ? ["use_karras_sigmas": true] : [:]
            #expect(overrides.count == expected.count, "\(kind.rawValue)")
            for (key, value) in expected { #expect(overrides[key] as? Bool == value, "\(kind.rawValue).\(key)") }
            let scheduler = try kind.make(config: kolorsConfig())
            #expect(className(of: scheduler) == entry["class"] as? String)
        }
    }

    // MARK: schedules

    @Test("timesteps, σ and init_noise_sigma for every tabulated step count", arguments: SchedulerKind.allCases)
    func schedules(kind: SchedulerKind) throws {
        let refs = try Fixtures.References("schedulers.safetensors")
        for n in Self.stepCounts {
            let scheduler = try kind.make(config: kolorsConfig())
            try scheduler.setTimesteps(n)
            try expectSchedule(scheduler, refs: refs, prefix: "\(kind.rawValue).N\(n)")
        }
    }

    @Test("every step count 1 … 1100 schedules as diffusers", arguments: SchedulerKind.allCases)
    func sweep(kind: SchedulerKind) throws {
        let refs = try Fixtures.References("schedulers_extra.safetensors")
        let digest = try float64Values(refs, "sweep.\(kind.rawValue).digest")  // [1100, 6]
        let tables = try jsonMetadata(refs, "sweep_tables") as? [Int] ?? []
        let scheduler = try kind.make(config: kolorsConfig())
        for n in 1...1100 {
            try scheduler.setTimesteps(n)
            let row = Array(digest[(n - 1) * 6 ..< n * 6])
            let t = scheduler.timesteps.map(Double.init)
            let sigma = (sigmas(of: scheduler) ?? [0]).map(Double.init)
            #expect(Double(t.count) == row[0], "\(kind.rawValue) N=\(n): \(t.count) timesteps")
            if Self.karrasRoundingFlips[kind]?.contains(n) == true {
                #expect(abs(t.reduce(0, +) - row[1]) <= 1, "\(kind.rawValue) N=\(n): timesteps differ")
            } else {
                #expect(t.reduce(0, +) == row[1] && weightedSum(t) == row[2], "\(kind.rawValue) N=\(n): timesteps differ")
            }
            #expect(isClose(sigma.reduce(0, +), row[3]) && isClose(weightedSum(sigma), row[4]), "\(kind.rawValue) N=\(n): σ differ")
            #expect(isClose(Double(scheduler.initNoiseSigma), row[5]), "\(kind.rawValue) N=\(n): init_noise_sigma")
            if tables.contains(n) { try expectSchedule(scheduler, refs: refs, prefix: "sweep.\(kind.rawValue).N\(n)") }
        }
    }

    @Test("invalid step counts throw a clear error", arguments: SchedulerKind.allCases)
    func invalidStepCounts(kind: SchedulerKind) throws {
        let scheduler = try kind.make(config: kolorsConfig())
        for n in [0, -3, 1101] {
            let error = #expect(throws: SchedulerError.self) { try scheduler.setTimesteps(n) }
            #expect(error?.message == "\(kind.rawValue): the number of inference steps must be between 1 and 1100 (num_train_timesteps), got \(n)")
        }
    }

    // MARK: trajectories

    @Test("10- and 4-step trajectories with fixed model outputs", arguments: SchedulerKind.allCases)
    func trajectories(kind: SchedulerKind) throws {
        let refs = try Fixtures.References("schedulers.safetensors")
        for n in [10, 4] {
            let scheduler = try kind.make(config: kolorsConfig())
            try scheduler.setTimesteps(n)
            let outputs = try (0..<n).map { try refs["traj\(n).model_output.\($0)"] }
            let prefix = "\(kind.rawValue).traj\(n)"
            var generator = TorchGenerator(seed: 7)
            let noise = try refs["traj\(n).noise"]
            let start = scale(noise, scheduler.initNoiseSigma)
            #expect(relativeError(start, try refs["\(prefix).sample_init"]) < Self.scheduleTolerance)
            let last = try runTrajectory(scheduler, from: start, outputs: outputs, generator: &generator, refs: refs, prefix: prefix)
            if kind == .eulerA {
                // One randn(model_output.shape) per step, in order, from the pipeline's generator.
                var replay = TorchGenerator(seed: 7)
                for j in 0..<n {
                    #expect(maxAbsError(replay.randn(outputs[j].shape), try refs["\(prefix).step_noise.\(j)"]) < 2e-6)
                }
                let (expected, next) = (replay.randn([3]).values, generator.randn([3]).values)
                #expect(next == expected, "euler-a drew a different amount of noise")
            } else {
                let next = generator.randn([3]).values
                #expect(next == TorchGenerator(seed: 7).randnValues([3]), "\(kind.rawValue) drew noise")
            }
            if kind == .dpmpp2m || kind == .dpmpp2mKarras || kind == .unipc {
                // The last step goes to σ = 0 and returns the x0 prediction exactly.
                #expect(last.previousSample.values == last.predictedOriginal.values)
            }
        }
    }

    @Test("one step (N = 1) to σ = 0", arguments: SchedulerKind.allCases)
    func singleStep(kind: SchedulerKind) throws {
        let refs = try Fixtures.References("schedulers.safetensors")
        let scheduler = try kind.make(config: kolorsConfig())
        try scheduler.setTimesteps(1)
        #expect(scheduler.timesteps.count == 1)
        var generator = TorchGenerator(seed: 7)
        let sample = scale(try refs["traj4.noise"], scheduler.initNoiseSigma)
        let output = try refs["traj4.model_output.0"]
        let input = scheduler.scaleModelInput(sample, stepIndex: 0)
        let result = scheduler.step(modelOutput: output, stepIndex: 0, sample: sample, generator: &generator)
        #expect(input.values.allSatisfy { $0.isFinite } && result.previousSample.values.allSatisfy { $0.isFinite })
        switch kind {
        case .dpmpp2m, .dpmpp2mKarras, .unipc:
            #expect(result.previousSample.values == result.predictedOriginal.values)
        case .euler, .eulerA:
            // x + (x − x0)/σ·(0 − σ) = x0 up to rounding; Euler a adds no noise (σ_up = 0).
            #expect(relativeError(result.previousSample, result.predictedOriginal) < 1e-6)
        case .ddim:
            // DDIM steps to ᾱ_0 (set_alpha_to_one = false), not to a clean sample.
            #expect(relativeError(result.previousSample, result.predictedOriginal) > 1e-3)
        }
    }

    @Test("UniPC configs that diffusers steps to σ = 0 as NaN return x0 there",
          arguments: [#"{"solver_type": "bh1"}"#, #"{"predict_x0": false}"#, #"{"lower_order_final": false}"#])
    func uniPCFinalStep(overrides: String) throws {
        let refs = try Fixtures.References("schedulers.safetensors")
        let dict = try JSONSerialization.jsonObject(with: Data(overrides.utf8)) as! [String: Any]
        let scheduler = try UniPCMultistepScheduler(config: kolorsConfig(overrides: dict))
        try scheduler.setTimesteps(4)
        var generator = TorchGenerator(seed: 7)
        var sample = try refs["traj4.noise"]
        var last: SchedulerStepOutput?
        for i in 0..<4 {
            last = scheduler.step(modelOutput: try refs["traj4.model_output.\(i)"], stepIndex: i, sample: sample, generator: &generator)
            sample = last!.previousSample
        }
        let final = try #require(last)
        #expect(final.previousSample.values == final.predictedOriginal.values)
        #expect(final.previousSample.values.allSatisfy { $0.isFinite })
    }

    // MARK: img2img

    @Test("img2img start (strength 0.6, 10 steps) and add_noise", arguments: SchedulerKind.allCases)
    func img2img(kind: SchedulerKind) throws {
        let refs = try Fixtures.References("schedulers.safetensors")
        let manifest = try Fixtures.manifest("schedulers.json")
        let entry = (manifest["schedulers"] as? [String: [String: Any]])?[kind.rawValue]
        let meta = try #require(entry?["img2img_add_noise"] as? [String: Any])
        let scheduler = try kind.make(config: kolorsConfig())
        try scheduler.setTimesteps(meta["num_inference_steps"] as! Int)
        let (startIndex, count) = try scheduler.img2imgStart(strength: meta["strength"] as! Double)
        #expect(startIndex == meta["t_start"] as? Int)
        #expect(count == meta["init_timestep"] as? Int)
        let expected = try timestepValues(refs, "\(kind.rawValue).img2img.timesteps")
        #expect(scheduler.timesteps[startIndex...].map(Double.init) == expected)
        let noisy = scheduler.addNoise(original: try refs["img2img.original"], noise: try refs["img2img.noise"], stepIndex: startIndex)
        let error = relativeError(noisy, try refs["\(kind.rawValue).img2img.noisy"])
        #expect(error < Self.scheduleTolerance, "\(kind.rawValue): add_noise relative error \(error)")
    }

    @Test("img2img strength is evaluated in double precision and validated")
    func img2imgStrength() throws {
        let scheduler = try SchedulerKind.dpmpp2mKarras.make(config: kolorsConfig())
        try scheduler.setTimesteps(10)
        let seventy = try scheduler.img2imgStart(strength: 0.7)  // int(10 · 0.7) = 7 in Python
        #expect(seventy.startIndex == 3 && seventy.count == 7)
        let full = try scheduler.img2imgStart(strength: 1)
        #expect(full.startIndex == 0 && full.count == 10)
        #expect(throws: SchedulerError.self) { try scheduler.img2imgStart(strength: 0.05) }
        #expect(throws: SchedulerError.self) { try scheduler.img2imgStart(strength: 1.5) }
        #expect(throws: SchedulerError.self) { try scheduler.img2imgStart(strength: .nan) }
    }

    @Test("multistep solvers start afresh at the img2img begin index")
    func img2imgTrajectory() throws {
        for kind in [SchedulerKind.dpmpp2mKarras, .unipc] {
            let scheduler = try kind.make(config: kolorsConfig())
            try scheduler.setTimesteps(10)
            let (start, _) = try scheduler.img2imgStart(strength: 0.6)
            var generator = TorchGenerator(seed: 1)
            var x = Tensor.full([1, 4, 6, 10], 0.5)
            for i in start..<10 {
                x = scheduler.step(modelOutput: Tensor.full([1, 4, 6, 10], 0.1), stepIndex: i, sample: x, generator: &generator).previousSample
            }
            #expect(x.values.allSatisfy { $0.isFinite })
        }
    }

    // MARK: config variants

    @Test("config variants: spacings, Karras, solver orders, prediction types, final σ")
    func variants() throws {
        let refs = try Fixtures.References("schedulers_extra.safetensors")
        let variants = try #require(try jsonMetadata(refs, "variants") as? [[String: Any]])
        let tables = try #require(try jsonMetadata(refs, "variant_tables") as? [Int])
        #expect(variants.count >= 40)
        let noise = try refs["inputs.noise"]
        let outputs = try (0..<10).map { try refs["inputs.model_output.\($0)"] }
        for variant in variants {
            let name = variant["name"] as! String
            let config = try kolorsConfig(overrides: variant["overrides"] as! [String: Any])
            let make = { try makeScheduler(className: variant["class"] as! String, config: config) }
            for n in tables {
                let scheduler = try make()
                try scheduler.setTimesteps(n)
                try expectSchedule(scheduler, refs: refs, prefix: "\(name).N\(n)")
            }
            let scheduler = try make()
            try scheduler.setTimesteps(10)
            var generator = TorchGenerator(seed: 7)
            _ = try runTrajectory(scheduler, from: scale(noise, scheduler.initNoiseSigma), outputs: outputs,
                                  generator: &generator, refs: refs, prefix: "\(name).traj10")
        }
    }
}

// MARK: helpers

private func kolorsConfig(overrides: [String: Any] = [:]) throws -> SchedulerConfig {
    let path = Fixtures.path("tiny-kolors/scheduler/scheduler_config.json")
    guard !overrides.isEmpty else { return try SchedulerConfig(contentsOf: path) }
    // from_config semantics: the file's keys, with the overrides replacing them.
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    var dict = try JSONSerialization.jsonObject(with: data) as! [String: Any]
    dict.merge(overrides) { _, new in new }
    return try SchedulerConfig(json: JSONSerialization.data(withJSONObject: dict))
}

private func makeScheduler(className: String, config: SchedulerConfig) throws -> Scheduler {
    switch className {
    case "EulerDiscreteScheduler": try EulerDiscreteScheduler(config: config)
    case "EulerAncestralDiscreteScheduler": try EulerAncestralDiscreteScheduler(config: config)
    case "DPMSolverMultistepScheduler": try DPMSolverMultistepScheduler(config: config)
    case "DDIMScheduler": try DDIMScheduler(config: config)
    case "UniPCMultistepScheduler": try UniPCMultistepScheduler(config: config)
    default: throw SchedulerError("no scheduler class \(className)")
    }
}

private func className(of scheduler: Scheduler) -> String { String(describing: type(of: scheduler)) }

private func sigmas(of scheduler: Scheduler) -> [Float]? {
    switch scheduler {
    case let s as EulerDiscreteScheduler: s.sigmas
    case let s as EulerAncestralDiscreteScheduler: s.sigmas
    case let s as DPMSolverMultistepScheduler: s.sigmas
    case let s as UniPCMultistepScheduler: s.sigmas
    default: nil
    }
}

private func jsonMetadata(_ refs: Fixtures.References, _ key: String) throws -> Any {
    let text = try #require(refs.file.metadata[key], "metadata \(key)")
    return try JSONSerialization.jsonObject(with: Data(text.utf8))
}

/// A float64 tensor's values, unrounded.
private func float64Values(_ refs: Fixtures.References, _ name: String) throws -> [Double] {
    let mapped = try refs.file.mapped(name)
    try #require(mapped.dtype == .f64, "\(name) is \(mapped.dtype)")
    return Array(UnsafeBufferPointer(start: mapped.data.assumingMemoryBound(to: Double.self), count: mapped.count))
}

/// Timesteps as stored: int64 for the integer schedulers, float32 for Euler.
private func timestepValues(_ refs: Fixtures.References, _ name: String) throws -> [Double] {
    let mapped = try refs.file.mapped(name)
    return mapped.dtype == .i64 ? try mapped.toInt64().map(Double.init) : try refs[name].values.map(Double.init)
}

/// |a − b| ≤ 1e-6 · max(|a|, |b|, floor)
private func isClose(_ a: Double, _ b: Double, floor: Double = 0) -> Bool {
    a == b || abs(a - b) <= SchedulerTests.scheduleTolerance * max(abs(a), abs(b), floor)
}

/// Σ (k+1)·v_k
private func weightedSum(_ v: [Double]) -> Double {
    v.enumerated().reduce(0) { $0 + Double($1.offset + 1) * $1.element }
}

private func scale(_ x: Tensor, _ s: Float) -> Tensor {
    Tensor(shape: x.shape, values: x.values.map { $0 * s })
}

private func expectSchedule(_ scheduler: Scheduler, refs: Fixtures.References, prefix: String) throws {
    let want = try timestepValues(refs, "\(prefix).timesteps")
    let got = scheduler.timesteps.map(Double.init)
    #expect(got.count == want.count, "\(prefix): \(got.count) timesteps, expected \(want.count)")
    // Fractional timesteps (Euler with Karras σ) go through numpy's float32 log, which is not
    // correctly rounded: near t = 0 that moves t by ~2e-7, so below t = 1 the bound is absolute.
    for (k, (g, w)) in zip(got, want).enumerated() where !(w.rounded() == w ? g == w : isClose(g, w, floor: 1)) {
        Issue.record("\(prefix): timestep \(k) is \(g), expected \(w)")
        break
    }
    if refs.has("\(prefix).sigmas") {
        let wantSigmas = try refs["\(prefix).sigmas"].values.map(Double.init)
        let gotSigmas = try #require(sigmas(of: scheduler)).map(Double.init)
        #expect(gotSigmas.count == wantSigmas.count, "\(prefix): σ count")
        for (k, (g, w)) in zip(gotSigmas, wantSigmas).enumerated() where !isClose(g, w) {
            Issue.record("\(prefix): σ \(k) is \(g), expected \(w)")
            break
        }
    } else {
        #expect(sigmas(of: scheduler) == nil, "\(prefix): σ expected")
    }
    let initNoiseSigma = Double(try refs["\(prefix).init_noise_sigma"].values[0])
    #expect(isClose(Double(scheduler.initNoiseSigma), initNoiseSigma), "\(prefix): init_noise_sigma \(scheduler.initNoiseSigma) != \(initNoiseSigma)")
}

/// Runs every step from `start` and checks scale_model_input, prev_sample and x0 against
/// `<prefix>.scaled.<i>` (absent where diffusers' scaling is the identity), `.prev_sample.<i>`
/// and `.pred_original_sample.<i>` (where diffusers returns one). Returns the last step.
@discardableResult
private func runTrajectory(_ scheduler: Scheduler, from start: Tensor, outputs: [Tensor], generator: inout TorchGenerator,
                           refs: Fixtures.References, prefix: String) throws -> SchedulerStepOutput {
    var sample = start
    var last: SchedulerStepOutput?
    for i in scheduler.timesteps.indices {
        let scaled = scheduler.scaleModelInput(sample, stepIndex: i)
        if refs.has("\(prefix).scaled.\(i)") {
            let error = relativeError(scaled, try refs["\(prefix).scaled.\(i)"])
            #expect(error < SchedulerTests.trajectoryTolerance, "\(prefix).scaled.\(i): relative error \(error)")
        } else {
            #expect(scaled.values == sample.values, "\(prefix).scaled.\(i): expected the identity")
        }
        let result = scheduler.step(modelOutput: outputs[i], stepIndex: i, sample: sample, generator: &generator)
        let error = relativeError(result.previousSample, try refs["\(prefix).prev_sample.\(i)"])
        #expect(error < SchedulerTests.trajectoryTolerance, "\(prefix).prev_sample.\(i): relative error \(error)")
        if refs.has("\(prefix).pred_original_sample.\(i)") {
            let x0Error = relativeError(result.predictedOriginal, try refs["\(prefix).pred_original_sample.\(i)"])
            #expect(x0Error < SchedulerTests.trajectoryTolerance, "\(prefix).pred_original_sample.\(i): relative error \(x0Error)")
        }
        sample = result.previousSample
        last = result
    }
    return try #require(last)
}

private extension TorchGenerator {
    /// The values of a fresh draw (for comparing generator states).
    func randnValues(_ shape: [Int]) -> [Float] {
        var copy = self
        return copy.randn(shape).values
    }
}
