import Foundation

/// The samplers offered on the command line and written to A1111 metadata. Each is a diffusers
/// class built like `Class.from_config(kolors_scheduler_config, **overrides)`.
public enum SchedulerKind: String, CaseIterable, Sendable {
    case euler
    case eulerA = "euler-a"
    case dpmpp2m = "dpm++2m"
    case dpmpp2mKarras = "dpm++2m-karras"
    case ddim
    case unipc

    /// Parses a command-line name; an unknown one throws an error listing the valid names.
    public init(name: String) throws {
        guard let kind = SchedulerKind(rawValue: name) else {
            let valid = SchedulerKind.allCases.map(\.rawValue).joined(separator: ", ")
            throw SchedulerError("unknown scheduler '\(name)' (valid: \(valid))")
        }
        self = kind
    }

    /// The name A1111-style tools show ("DPM++ 2M Karras").
    public var displayName: String {
        a1111.scheduleType.map { "\(a1111.sampler) \($0)" } ?? a1111.sampler
    }

    /// The A1111 `Sampler:` value and, for Karras sigmas, the separate `Schedule type:` value
    /// (A1111 ≥ 1.9 writes them apart; older versions wrote "DPM++ 2M Karras").
    public var a1111: (sampler: String, scheduleType: String?) {
        switch self {
        case .euler: ("Euler", nil)
        case .eulerA: ("Euler a", nil)
        case .dpmpp2m: ("DPM++ 2M", nil)
        case .dpmpp2mKarras: ("DPM++ 2M", "Karras")
        case .ddim: ("DDIM", nil)
        case .unipc: ("UniPC", nil)
        }
    }

    /// Maps A1111 sampler (and schedule type) names to ours; nil for samplers we do not have.
    public static func fromA1111(sampler: String, scheduleType: String? = nil) -> SchedulerKind? {
        var s = sampler.trimmingCharacters(in: .whitespaces).lowercased()
        var karras = scheduleType?.trimmingCharacters(in: .whitespaces).lowercased() == "karras"
        if s.hasSuffix(" karras") {
            karras = true
            s = String(s.dropLast(" karras".count))
        }
        switch s {
        case "euler": return .euler
        case "euler a", "euler_a", "euler ancestral", "euler-a", "euler_ancestral": return .eulerA
        case "dpm++ 2m", "dpmpp_2m", "dpm++2m": return karras ? .dpmpp2mKarras : .dpmpp2m
        case "dpm++2m-karras": return .dpmpp2mKarras
        case "ddim": return .ddim
        case "unipc", "uni_pc", "uni pc": return .unipc
        default: return nil
        }
    }

    /// Builds the scheduler from a checkpoint's config. The only override is `use_karras_sigmas`:
    /// true for `dpm++2m-karras` (as the diffusers Kolors docs and the reference fixtures), false
    /// for `dpm++2m`; everything else comes from the config and the class defaults.
    public func make(config: SchedulerConfig) throws -> Scheduler {
        switch self {
        case .euler:
            return try EulerDiscreteScheduler(config: config)
        case .eulerA:
            return try EulerAncestralDiscreteScheduler(config: config)
        case .dpmpp2m:
            var plain = config
            plain.useKarrasSigmas = false  // the name promises no Karras sigmas, whatever the config says
            return try DPMSolverMultistepScheduler(config: plain)
        case .dpmpp2mKarras:
            var karras = config
            karras.useKarrasSigmas = true
            return try DPMSolverMultistepScheduler(config: karras)
        case .ddim:
            return try DDIMScheduler(config: config)
        case .unipc:
            return try UniPCMultistepScheduler(config: config)
        }
    }
}

extension Scheduler {
    /// img2img's shortened schedule, as `KolorsImg2ImgPipeline.get_timesteps` (after
    /// `setTimesteps`): init_timestep = min(⌊steps·strength⌋, steps) with steps the schedule
    /// length, t_start = steps − init_timestep; sets the begin index t_start·order and returns
    /// it with the number of steps left. `strength` is a double, as Python's: ⌊10·0.7⌋ = 7,
    /// while the float 0.7 would give 6.
    public func img2imgStart(strength: Double) throws -> (startIndex: Int, count: Int) {
        guard (0...1).contains(strength) else {
            throw SchedulerError("img2img strength must be between 0 and 1, got \(strength)")
        }
        let steps = timesteps.count
        let initTimestep = min(Int(Double(steps) * strength), steps)
        let tStart = steps - initTimestep
        guard tStart * order < steps else {
            throw SchedulerError("img2img strength \(strength) leaves no denoising steps out of \(steps); raise the strength or the step count")
        }
        setBeginIndex(tStart * order)
        return (tStart * order, steps - tStart)
    }
}
