import Foundation
import KolorsEngine

/// A scheduler's `scheduler_config.json`, read the way diffusers' `Class.from_config` reads it:
/// every key any of our scheduler classes takes is kept (a config saved by Euler and reused
/// for DPM keeps `timestep_spacing`, `steps_offset`, the betas …), an absent or null key is
/// `nil` and means "the class's own default", and unknown keys are ignored. Overrides (such as
/// `useKarrasSigmas = true`) are plain assignments made before a scheduler is built.
public struct SchedulerConfig: Codable, Sendable, Equatable {
    public var className: String?
    // The training noise schedule (all classes).
    public var numTrainTimesteps: Int?
    public var betaStart: Double?
    public var betaEnd: Double?
    public var betaSchedule: String?
    public var trainedBetas: [Double]?
    public var rescaleBetasZeroSnr: Bool?
    // The inference schedule.
    public var predictionType: String?
    public var timestepSpacing: String?
    public var stepsOffset: Int?
    public var interpolationType: String?
    public var timestepType: String?
    public var useKarrasSigmas: Bool?
    public var useExponentialSigmas: Bool?
    public var useBetaSigmas: Bool?
    public var useLuLambdas: Bool?
    public var useFlowSigmas: Bool?
    public var useDynamicShifting: Bool?
    public var sigmaMin: Double?
    public var sigmaMax: Double?
    public var finalSigmasType: String?
    public var lambdaMinClipped: Double?
    // Multistep solvers (DPM-Solver, UniPC).
    public var solverOrder: Int?
    public var algorithmType: String?
    public var solverType: String?
    public var lowerOrderFinal: Bool?
    public var eulerAtFinal: Bool?
    public var varianceType: String?
    public var predictX0: Bool?
    public var disableCorrector: [Int]?
    public var thresholding: Bool?
    // DDIM.
    public var clipSample: Bool?
    public var clipSampleRange: Double?
    public var setAlphaToOne: Bool?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case className = "_class_name"
        case numTrainTimesteps = "num_train_timesteps", betaStart = "beta_start", betaEnd = "beta_end"
        case betaSchedule = "beta_schedule", trainedBetas = "trained_betas"
        case rescaleBetasZeroSnr = "rescale_betas_zero_snr", predictionType = "prediction_type"
        case timestepSpacing = "timestep_spacing", stepsOffset = "steps_offset"
        case interpolationType = "interpolation_type", timestepType = "timestep_type"
        case useKarrasSigmas = "use_karras_sigmas", useExponentialSigmas = "use_exponential_sigmas"
        case useBetaSigmas = "use_beta_sigmas", useLuLambdas = "use_lu_lambdas", useFlowSigmas = "use_flow_sigmas"
        case useDynamicShifting = "use_dynamic_shifting", sigmaMin = "sigma_min", sigmaMax = "sigma_max"
        case finalSigmasType = "final_sigmas_type", lambdaMinClipped = "lambda_min_clipped"
        case solverOrder = "solver_order", algorithmType = "algorithm_type", solverType = "solver_type"
        case lowerOrderFinal = "lower_order_final", eulerAtFinal = "euler_at_final", varianceType = "variance_type"
        case predictX0 = "predict_x0", disableCorrector = "disable_corrector", thresholding
        case clipSample = "clip_sample", clipSampleRange = "clip_sample_range", setAlphaToOne = "set_alpha_to_one"
    }

    /// Decodes `scheduler_config.json` text. diffusers writes `lambda_min_clipped = -inf` as the
    /// bare token `-Infinity`, so the text is read as JSON5.
    public init(json: Data) throws {
        let decoder = JSONDecoder()
        decoder.allowsJSON5 = true
        do {
            self = try decoder.decode(SchedulerConfig.self, from: json)
        } catch DecodingError.typeMismatch(_, let ctx), DecodingError.valueNotFound(_, let ctx) {
            let key = ctx.codingPath.map(\.stringValue).joined(separator: ".")
            throw SchedulerError("scheduler_config.json: key '\(key)' has the wrong type (\(ctx.debugDescription))")
        } catch DecodingError.dataCorrupted(let ctx) {
            throw SchedulerError("scheduler_config.json: invalid JSON (\(ctx.debugDescription))")
        }
        try validate()
    }

    /// Reads `<checkpoint>/scheduler/scheduler_config.json` (or any path to such a file).
    public init(contentsOf path: String) throws {
        let data: Data
        do { data = try RegularFile.read(path) } catch let e as RegularFileError {
            throw SchedulerError(e.missing ? "scheduler config \(path) is missing or unreadable" : "scheduler config \(e)")
        }
        try self.init(json: data)
    }

    /// The largest `num_train_timesteps` accepted (every model we know trains with 1000–1100);
    /// the schedule tables have this many entries.
    public static let maxTrainTimesteps = 100_000

    /// Range checks on every number a scheduler computes with, run when a config is read and
    /// again when a schedule is built (after overrides): betas inside (0, 1) and ordered
    /// (outside, ᾱ leaves (0, 1] and every σ is NaN), offsets and σ bounds that cannot
    /// overflow or divide by zero, solver orders the solvers implement.
    public func validate() throws {
        func bad(_ s: String) -> SchedulerError { SchedulerError("scheduler_config.json: \(s)") }
        let count = numTrainTimesteps ?? 1000
        guard (2...Self.maxTrainTimesteps).contains(count) else {
            throw bad("num_train_timesteps must be between 2 and \(Self.maxTrainTimesteps) (got \(count))")
        }
        for (key, value) in [("beta_start", betaStart), ("beta_end", betaEnd)] {
            guard let value else { continue }
            guard value.isFinite, value > 0, value < 1 else { throw bad("\(key) must be above 0 and below 1 (got \(value))") }
        }
        let start = betaStart ?? 0.0001, end = betaEnd ?? 0.02
        guard start <= end else { throw bad("beta_start \(start) is larger than beta_end \(end)") }
        if let o = stepsOffset, !(0...count).contains(o) {
            throw bad("steps_offset must be between 0 and num_train_timesteps \(count) (got \(o))")
        }
        for (key, value) in [("sigma_min", sigmaMin), ("sigma_max", sigmaMax), ("clip_sample_range", clipSampleRange)] {
            guard let value else { continue }
            guard value.isFinite, value > 0, value <= 1e6 else { throw bad("\(key) must be a positive number up to 1e6 (got \(value))") }
        }
        if let lo = sigmaMin, let hi = sigmaMax, lo > hi { throw bad("sigma_min \(lo) is larger than sigma_max \(hi)") }
        if let l = lambdaMinClipped, l.isNaN { throw bad("lambda_min_clipped must be a number or -inf (got nan)") }
        if let o = solverOrder, !(1...3).contains(o) { throw bad("solver_order must be 1, 2 or 3 (got \(o))") }
    }

    /// Throws for an option this port does not implement, instead of silently sampling differently.
    func rejectUnsupported(_ flags: KeyValuePairs<String, Bool?>, in scheduler: String) throws {
        for (key, value) in flags where value == true {
            throw SchedulerError("\(scheduler): \(key) = true is not supported")
        }
    }
}

/// A scheduler that cannot be built or used as asked; the message says why.
public struct SchedulerError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// diffusers' `timestep_spacing`.
enum TimestepSpacing: String, CaseIterable {
    case linspace, leading, trailing

    /// How the fractional `linspace` points are rounded: to float32 (Euler's `dtype=np.float32`)
    /// or half to even (DDIM's and the multistep solvers' `.round()`).
    enum Rounding { case float32, halfEven }

    /// The training timesteps `set_timesteps` picks, in the order the loop takes them, for
    /// `steps` of `trainSteps`. The discrete schedulers (Euler, Euler A, DDIM) spread `steps`
    /// points over the table; the multistep solvers (`multistep`: DPM-Solver, UniPC) spread
    /// `steps + 1` over the first `last` training steps (fewer with λ clipping) and drop the final one.
    func timesteps(steps: Int, trainSteps t: Int, offset: Int, rounding: Rounding, multistep: Bool = false,
                   last: Int? = nil) -> [Double] {
        let last = last ?? t
        func round(_ x: Double) -> Double { rounding == .float32 ? roundedToFloat32(x) : roundHalfEven(x) }
        switch (self, multistep) {
        case (.linspace, false):
            return numpyLinspace(0, Double(t - 1), steps).map(round).reversed()
        case (.linspace, true):
            return Array(numpyLinspace(0, Double(last - 1), steps + 1).map(round).reversed().dropLast())
        case (.leading, false):
            let ratio = t / steps
            return (0..<steps).reversed().map { Double($0 * ratio + offset) }
        case (.leading, true):
            let ratio = last / (steps + 1)
            return (1...steps).reversed().map { Double($0 * ratio + offset) }
        case (.trailing, _):
            return numpyArange(Double(last), 0, -Double(t) / Double(steps)).map { roundHalfEven($0) - 1 }
        }
    }
}

/// diffusers' `prediction_type` (what the UNet predicts).
enum PredictionType: String, CaseIterable {
    case epsilon
    case vPrediction = "v_prediction"
    case sample
}

/// diffusers' `final_sigmas_type`: the σ after the last step.
enum FinalSigmas: String, CaseIterable {
    case zero
    case sigmaMin = "sigma_min"
}

extension SchedulerConfig {
    /// A string option parsed into `T`, or `fallback` (the class default) when absent.
    func option<T: RawRepresentable & CaseIterable>(_ value: String?, key: String, default fallback: T,
                                                    in scheduler: String) throws -> T where T.RawValue == String {
        guard let value else { return fallback }
        guard let parsed = T(rawValue: value) else {
            let valid = T.allCases.map(\.rawValue).joined(separator: ", ")
            throw SchedulerError("\(scheduler): \(key) '\(value)' is not supported (valid: \(valid))")
        }
        return parsed
    }
}

/// The training noise schedule shared by all schedulers (diffusers' `betas`, `alphas_cumprod`
/// and the σ table), bit-exact with torch on the CPU up to the σ square root (spec §7.1).
public struct NoiseSchedule: Sendable {
    /// β_i, i = 0 ..< num_train_timesteps (float32, as torch.linspace).
    public let betas: [Float]
    /// ᾱ_i = Π_{j≤i} (1 − β_j), accumulated in double and rounded per prefix (torch's CPU cumprod).
    public let alphasCumprod: [Float]
    /// σ_i = sqrt((1 − ᾱ_i)/ᾱ_i) in float32, ascending with i. torch's sqrt on the CPU is off by
    /// one ulp for some entries; this one is correctly rounded.
    public let sigmas: [Float]

    public var count: Int { betas.count }

    /// Builds the schedule from `num_train_timesteps`, `beta_start`, `beta_end` and
    /// `beta_schedule` (defaults 1000, 0.0001, 0.02, "linear", the same in every class).
    public init(config: SchedulerConfig, scheduler: String) throws {
        try config.rejectUnsupported(["rescale_betas_zero_snr": config.rescaleBetasZeroSnr], in: scheduler)
        guard config.trainedBetas == nil else { throw SchedulerError("\(scheduler): trained_betas is not supported") }
        let count = config.numTrainTimesteps ?? 1000
        guard count >= 2 else { throw SchedulerError("\(scheduler): num_train_timesteps must be at least 2, got \(count)") }
        try config.validate()  // again: overrides are assigned after the file was read
        let start = config.betaStart ?? 0.0001, end = config.betaEnd ?? 0.02
        switch config.betaSchedule ?? "linear" {
        case "linear":
            betas = NoiseSchedule.torchLinspace(Float(start), Float(end), count)
        case "scaled_linear":
            betas = NoiseSchedule.torchLinspace(Float(start.squareRoot()), Float(end.squareRoot()), count).map { $0 * $0 }
        case let other:
            throw SchedulerError("\(scheduler): beta_schedule '\(other)' is not supported (valid: linear, scaled_linear)")
        }
        var product = 1.0
        alphasCumprod = betas.map { beta in
            product *= Double(1 - beta)
            return Float(product)
        }
        sigmas = alphasCumprod.map { ((1 - $0) / $0).squareRoot() }
    }

    /// torch.linspace in float32 on the CPU: the first half counts up from `start`, the second
    /// half down from `end`, each value one fused multiply-add.
    static func torchLinspace(_ start: Float, _ end: Float, _ count: Int) -> [Float] {
        let step = (end - start) / Float(count - 1)
        return (0..<count).map { i in
            i < count / 2 ? start.addingProduct(step, Float(i)) : end.addingProduct(-step, Float(count - 1 - i))
        }
    }

    /// log σ_i in float32 (diffusers' `log_sigmas`, used to map σ back to t).
    var logSigmas: [Float] { sigmas.map { Float(Foundation.log(Double($0))) } }
}
