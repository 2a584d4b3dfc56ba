#!/usr/bin/env python3
"""Times diffusers on the same checkpoint folder, shapes, threads and precision as
`kolors bench`, and prints the same JSON last line, so the two can be compared run for run.

    python scripts/bench/diffusers_bench.py unet --model DIR --width 512 --height 512 --batch 2 \
        --threads 2 --precision bf16 --repeats 3
    python scripts/bench/diffusers_bench.py text-encoder --model DIR --threads 2 --precision bf16
    python scripts/bench/diffusers_bench.py vae-decode --model DIR --width 1024 --height 1024 --precision fp32
    python scripts/bench/diffusers_bench.py pipeline --model DIR --width 1024 --height 1024 --steps 25

Inputs are random but shaped exactly as in the pipeline (CFG batch 2, 256 text tokens,
Kolors micro-conditioning). Peak RSS is the process maximum (resource.getrusage).
"""
import argparse
import json
import resource
import statistics
import sys
import time

import torch


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, repeats, label):
    times = []
    for r in range(repeats + 1):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        print(f"{label} {'warm-up' if r == 0 else f'run {r}'}: {dt:.2f} s", file=sys.stderr, flush=True)
        if r:
            times.append(dt)
    return statistics.median(times), times


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("component", choices=["unet", "text-encoder", "vae-decode", "pipeline"])
    ap.add_argument("--model", required=True)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--height", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    g = torch.Generator("cpu").manual_seed(0)
    result = {"component": args.component, "engine": "diffusers", "torch": torch.__version__, "precision": args.precision,
              "threads": args.threads}

    with torch.inference_mode():
        if args.component == "unet":
            from diffusers import UNet2DConditionModel
            unet = UNet2DConditionModel.from_pretrained(args.model, subfolder="unet", variant="fp16", torch_dtype=dtype).eval()
            b, h, w = args.batch, args.height // 8, args.width // 8
            sample = torch.randn(b, 4, h, w, generator=g, dtype=dtype)
            ctx = torch.randn(b, 256, unet.config.encoder_hid_dim, generator=g, dtype=dtype)
            pooled = torch.randn(b, 4096, generator=g, dtype=dtype)
            ids = torch.tensor([[args.height, args.width, 0, 0, args.height, args.width]] * b, dtype=dtype)
            t = torch.tensor(500.0)
            med, _ = timed(lambda: unet(sample, t, encoder_hidden_states=ctx,
                                        added_cond_kwargs={"text_embeds": pooled, "time_ids": ids}), args.repeats, "unet")
            result.update(width=args.width, height=args.height, batch=b)
        elif args.component == "text-encoder":
            from diffusers.pipelines.kolors.text_encoder import ChatGLMModel
            te = ChatGLMModel.from_pretrained(args.model, subfolder="text_encoder", variant="fp16", torch_dtype=dtype).eval()
            ids = (torch.arange(256) * 7919 % 2000 + 2).unsqueeze(0)
            mask = torch.ones_like(ids)
            pos = torch.arange(256).unsqueeze(0)
            med, _ = timed(lambda: te(input_ids=ids, attention_mask=mask, position_ids=pos, output_hidden_states=True),
                           args.repeats, "text-encoder")
            result.update(tokens=256)
        elif args.component == "vae-decode":
            from diffusers import AutoencoderKL
            vae = AutoencoderKL.from_pretrained(args.model, subfolder="vae", variant="fp16", torch_dtype=torch.float32).eval()
            z = torch.randn(1, 4, args.height // 8, args.width // 8, generator=g)
            med, _ = timed(lambda: vae.decode(z), args.repeats, "vae-decode")
            result.update(width=args.width, height=args.height, batch=1, precision="fp32")
        else:
            from diffusers import KolorsPipeline
            pipe = KolorsPipeline.from_pretrained(args.model, variant="fp16", torch_dtype=dtype)
            run = lambda: pipe("a lighthouse at dusk", width=args.width, height=args.height,
                               num_inference_steps=args.steps, generator=torch.Generator("cpu").manual_seed(0))
            med, _ = timed(run, max(1, args.repeats), "pipeline")
            result.update(width=args.width, height=args.height, steps=args.steps)
    result.update(seconds_median=round(med, 4), peak_rss_mib=round(peak_rss_mib(), 1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
