#!/usr/bin/env python3
"""Writes a random-weight, FULL-SIZE Kolors checkpoint in the real Kwai-Kolors/Kolors-diffusers
layout and dtype (fp16 safetensors, real configs, sharded text encoder), for benchmarks and
memory measurements. Nothing here is committed: the output is ~18 GB.

    python scripts/bench/make_fullsize_random.py --out /tmp/kolors-fullsize [--components unet,vae,text_encoder]

Tensor names and shapes come from the diffusers classes built on the meta device (no memory),
so they are exactly what diffusers would save; values are N(0, 0.02) (norm weights 1, biases 0),
written one tensor at a time so the script never holds more than one shard in memory.
"""
import argparse
import json
import os
import shutil

import numpy as np
import torch
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))

UNET_CONFIG = {
    "_class_name": "UNet2DConditionModel", "_diffusers_version": "0.27.0.dev0", "act_fn": "silu",
    "addition_embed_type": "text_time", "addition_embed_type_num_heads": 64, "addition_time_embed_dim": 256,
    "attention_head_dim": [5, 10, 20], "attention_type": "default", "block_out_channels": [320, 640, 1280],
    "center_input_sample": False, "class_embed_type": None, "class_embeddings_concat": False,
    "conv_in_kernel": 3, "conv_out_kernel": 3, "cross_attention_dim": 2048, "cross_attention_norm": None,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "downsample_padding": 1, "dropout": 0.0, "dual_cross_attention": False, "encoder_hid_dim": 4096,
    "encoder_hid_dim_type": "text_proj", "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4,
    "layers_per_block": 2, "mid_block_only_cross_attention": None, "mid_block_scale_factor": 1,
    "mid_block_type": "UNetMidBlock2DCrossAttn", "norm_eps": 1e-05, "norm_num_groups": 32,
    "num_attention_heads": None, "num_class_embeds": None, "only_cross_attention": False, "out_channels": 4,
    "projection_class_embeddings_input_dim": 5632, "resnet_out_scale_factor": 1.0, "resnet_skip_time_act": False,
    "resnet_time_scale_shift": "default", "reverse_transformer_layers_per_block": None, "sample_size": 128,
    "time_cond_proj_dim": None, "time_embedding_act_fn": None, "time_embedding_dim": None,
    "time_embedding_type": "positional", "timestep_post_act": None, "transformer_layers_per_block": [1, 2, 10],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"], "upcast_attention": False,
    "use_linear_projection": True,
}
VAE_CONFIG = {
    "_class_name": "AutoencoderKL", "_diffusers_version": "0.18.0.dev0", "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D"] * 4,
    "in_channels": 3, "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3,
    "sample_size": 1024, "scaling_factor": 0.13025, "up_block_types": ["UpDecoderBlock2D"] * 4,
}
TEXT_ENCODER_CONFIG = {
    "_name_or_path": "THUDM/chatglm3-6b-base", "model_type": "chatglm", "architectures": ["ChatGLMModel"],
    "add_bias_linear": False, "add_qkv_bias": True, "apply_query_key_layer_scaling": True,
    "apply_residual_connection_post_layernorm": False, "attention_dropout": 0.0, "attention_softmax_in_fp32": True,
    "bias_dropout_fusion": True, "ffn_hidden_size": 13696, "fp32_residual_connection": False, "hidden_dropout": 0.0,
    "hidden_size": 4096, "kv_channels": 128, "layernorm_epsilon": 1e-05, "multi_query_attention": True,
    "multi_query_group_num": 2, "num_attention_heads": 32, "num_layers": 28, "original_rope": True,
    "padded_vocab_size": 65024, "post_layer_norm": True, "rmsnorm": True, "seq_length": 32768,
    "use_cache": True, "torch_dtype": "float16", "vocab_size": 65024, "eos_token_id": 2, "pad_token_id": 0,
}
MODEL_INDEX = {
    "_class_name": "KolorsPipeline", "_diffusers_version": "0.30.0.dev0", "force_zeros_for_empty_prompt": False,
    "scheduler": ["diffusers", "EulerDiscreteScheduler"], "text_encoder": ["kolors", "ChatGLMModel"],
    "tokenizer": ["kolors", "ChatGLMTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}


def shapes_of(module):
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def random_tensor(name, shape, rng):
    if name.endswith("bias"):
        return np.zeros(shape, dtype=np.float16)
    if ("norm" in name or "layernorm" in name) and name.endswith("weight") and len(shape) == 1:
        return np.ones(shape, dtype=np.float16)
    return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16)


def write(shapes, directory, base, shard_bytes=None, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(directory, exist_ok=True)
    names = sorted(shapes)
    if shard_bytes is None:
        save_file({n: random_tensor(n, shapes[n], rng) for n in names}, os.path.join(directory, f"{base}.fp16.safetensors"))
        return
    shards, current, size = [], [], 0
    for n in names:
        b = int(np.prod(shapes[n])) * 2
        if current and size + b > shard_bytes:
            shards.append(current)
            current, size = [], 0
        current.append(n)
        size += b
    shards.append(current)
    weight_map, total = {}, 0
    for i, names_i in enumerate(shards):
        fname = f"{base}.fp16-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        tensors = {n: random_tensor(n, shapes[n], rng) for n in names_i}
        save_file(tensors, os.path.join(directory, fname))
        for n in names_i:
            weight_map[n] = fname
            total += tensors[n].nbytes
        del tensors
        print(f"  wrote {fname}", flush=True)
    with open(os.path.join(directory, f"{base}.safetensors.index.fp16.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--components", default="unet,vae,text_encoder")
    args = ap.parse_args()
    out = args.out
    wanted = set(args.components.split(","))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "model_index.json"), "w") as f:
        json.dump(MODEL_INDEX, f, indent=2)
    tiny = os.path.join(ROOT, "Tests", "Fixtures", "tiny-kolors")
    for comp in ("scheduler", "tokenizer"):
        shutil.copytree(os.path.join(tiny, comp), os.path.join(out, comp), dirs_exist_ok=True)
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.pipelines.kolors.text_encoder import ChatGLMConfig, ChatGLMModel

    if "unet" in wanted:
        print("unet", flush=True)
        with torch.device("meta"):
            unet = UNet2DConditionModel.from_config(UNET_CONFIG)
        os.makedirs(os.path.join(out, "unet"), exist_ok=True)
        with open(os.path.join(out, "unet", "config.json"), "w") as f:
            json.dump(UNET_CONFIG, f, indent=2)
        write(shapes_of(unet), os.path.join(out, "unet"), "diffusion_pytorch_model", seed=1)
    if "vae" in wanted:
        print("vae", flush=True)
        with torch.device("meta"):
            vae = AutoencoderKL.from_config(VAE_CONFIG)
        os.makedirs(os.path.join(out, "vae"), exist_ok=True)
        with open(os.path.join(out, "vae", "config.json"), "w") as f:
            json.dump(VAE_CONFIG, f, indent=2)
        write(shapes_of(vae), os.path.join(out, "vae"), "diffusion_pytorch_model", seed=2)
    if "text_encoder" in wanted:
        print("text_encoder", flush=True)
        with torch.device("meta"):
            te = ChatGLMModel(ChatGLMConfig(**{k: v for k, v in TEXT_ENCODER_CONFIG.items()
                                                if not k.startswith("_") and k not in ("architectures", "model_type")}))
        os.makedirs(os.path.join(out, "text_encoder"), exist_ok=True)
        with open(os.path.join(out, "text_encoder", "config.json"), "w") as f:
            json.dump(TEXT_ENCODER_CONFIG, f, indent=2)
        shapes = {k: v for k, v in shapes_of(te).items() if k != "rotary_pos_emb.inv_freq"}
        write(shapes, os.path.join(out, "text_encoder"), "model", shard_bytes=5_000_000_000, seed=3)
    print("done:", out)


if __name__ == "__main__":
    main()
