"""A tiny randomly initialised SAM 2 (about 0.8 M weights, 256-pixel input) built from the package's own
modules and config, saved in the official checkpoint layout `{"model": state_dict}`."""

from __future__ import annotations

from pathlib import Path

CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
OVERRIDES = (
    "++model.image_size=256",
    "++model.image_encoder.trunk.embed_dim=8",
    "++model.image_encoder.trunk.stages=[1,1,2,1]",
    "++model.image_encoder.trunk.global_att_blocks=[3]",
    "++model.image_encoder.trunk.window_pos_embed_bkg_spatial_size=[4,4]",
    "++model.image_encoder.neck.backbone_channel_list=[64,32,16,8]",
    "++model.image_encoder.neck.d_model=32",
    "++model.image_encoder.neck.position_encoding.num_pos_feats=32",
    "++model.memory_attention.d_model=32",
    "++model.memory_attention.num_layers=1",
    "++model.memory_attention.layer.d_model=32",
    "++model.memory_attention.layer.dim_feedforward=32",
    "++model.memory_attention.layer.self_attention.embedding_dim=32",
    "++model.memory_attention.layer.self_attention.feat_sizes=[16,16]",
    "++model.memory_attention.layer.cross_attention.embedding_dim=32",
    "++model.memory_attention.layer.cross_attention.feat_sizes=[16,16]",
    "++model.memory_attention.layer.cross_attention.kv_in_dim=16",
    "++model.memory_encoder.out_dim=16",
    "++model.memory_encoder.position_encoding.num_pos_feats=16",
    "++model.memory_encoder.fuser.layer.dim=32",
    "++model.memory_encoder.fuser.num_layers=1",
    "++model.num_maskmem=2",
)


def write_tiny_checkpoint(path: Path, seed: int = 0) -> Path:
    """Build the tiny SAM 2 with random weights and save it as an official checkpoint file at `path`."""
    import torch
    from sam2.build_sam import build_sam2

    torch.manual_seed(seed)
    model = build_sam2(CONFIG, None, device="cpu", hydra_overrides_extra=list(OVERRIDES))
    torch.save({"model": model.state_dict()}, path)
    return path
