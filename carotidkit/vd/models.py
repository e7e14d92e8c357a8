"""Video networks written here (torchvision cannot be used with the pinned CPU torch).

* :class:`R2Plus1D`: an R(2+1)D residual network (Tran et al. 2018; EchoNet-Dynamic's family):
  each 3-D convolution factorised into a spatial ``1 x k x k`` and a temporal ``t x 1 x 1``
  convolution; width and depth configurable; GroupNorm instead of BatchNorm so that small CPU
  batches and any number of DDP processes give the same result.
* :class:`VideoViT`: a small video vision transformer with tubelet embedding (ViViT/VideoMAE
  family) and :class:`VideoMAE`, the VideoMAE-style self-supervised pretraining wrapper (tube
  masking, ~90 % of tubelets hidden, pixel reconstruction of the hidden ones).

Both take ``[B, 1, T, H, W]`` float input and return one logit per clip ``[B]``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, c), c)


class Conv2Plus1D(nn.Sequential):
    def __init__(self, cin: int, cout: int, stride: tuple = (1, 1, 1), k: int = 3, kt: int = 3):
        mid = max(cout, (cin * cout * k * k * kt) // (cin * k * k + kt * cout)) // 8 * 8
        super().__init__(
            nn.Conv3d(cin, mid, (1, k, k), (1, stride[1], stride[2]), (0, k // 2, k // 2), bias=False),
            _norm(mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid, cout, (kt, 1, 1), (stride[0], 1, 1), (kt // 2, 0, 0), bias=False),
        )


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride=(1, 1, 1)):
        super().__init__()
        self.c1, self.n1 = Conv2Plus1D(cin, cout, stride), _norm(cout)
        self.c2, self.n2 = Conv2Plus1D(cout, cout), _norm(cout)
        self.skip = (
            None
            if cin == cout and stride == (1, 1, 1)
            else nn.Sequential(nn.Conv3d(cin, cout, 1, stride, bias=False), _norm(cout))
        )
        self.act = nn.ReLU(inplace=True)
        nn.init.zeros_(self.n2.weight)  # each block starts as the identity: faster, steadier start

    def forward(self, x):
        y = self.act(self.n1(self.c1(x)))
        y = self.n2(self.c2(y))
        return self.act(y + (x if self.skip is None else self.skip(x)))


class R2Plus1D(nn.Module):
    """R(2+1)D: stem (spatial stride 2) + ``len(widths)`` stages of ``depth`` residual blocks.

    Args:
        width: channels of the first stage; stage ``i`` has ``width * 2**i``.
        depth: residual blocks per stage.
        stages: number of stages (each after the first halves space and time).
        dropout: before the final linear layer.
    """

    def __init__(self, width: int = 16, depth: int = 1, stages: int = 3, dropout: float = 0.2):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv3d(1, width, (1, 5, 5), (1, 2, 2), (0, 2, 2), bias=False), _norm(width), nn.ReLU(inplace=True)
        )
        layers, c = [], width
        for s in range(stages):
            cout = width * 2**s
            for d in range(depth):
                stride = (2, 2, 2) if (s > 0 and d == 0) else (1, 1, 1)
                layers.append(Block(c, cout, stride))
                c = cout
        self.layers = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(c, 1))
        self.out_channels = c

    def features(self, x):
        return self.layers(self.stem(x))

    def forward(self, x):
        f = self.features(x)
        return self.head(f.mean(dim=(2, 3, 4))).squeeze(1)


class TubeletEmbed(nn.Module):
    def __init__(self, dim: int, tubelet=(2, 8, 8)):
        super().__init__()
        self.tubelet = tubelet
        self.proj = nn.Conv3d(1, dim, tubelet, tubelet)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # [B, N, dim]


class VideoViT(nn.Module):
    """A small video transformer: tubelet embedding, learned positions, mean-pooled tokens.

    Args:
        frames, size: clip shape the position embedding is built for.
        tubelet: (t, h, w) of a tubelet; dim, depth, heads: transformer size.
    """

    def __init__(
        self,
        frames: int = 8,
        size: int = 64,
        tubelet=(2, 8, 8),
        dim: int = 96,
        depth: int = 4,
        heads: int = 4,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.embed = TubeletEmbed(dim, tubelet)
        self.grid = (frames // tubelet[0], size // tubelet[1], size // tubelet[2])
        n = math.prod(self.grid)
        self.pos = nn.Parameter(torch.zeros(1, n, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim * 4, dropout, batch_first=True, norm_first=True, activation="gelu"
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 1)
        self.dim, self.tubelet = dim, tubelet

    def tokens(self, x):
        return self.embed(x) + self.pos

    def forward(self, x):
        z = self.norm(self.encoder(self.tokens(x)))
        return self.head(z.mean(1)).squeeze(1)


class VideoMAE(nn.Module):
    """VideoMAE-style pretraining of a :class:`VideoViT` encoder: tube masking (the same spatial
    patches hidden in every frame), the encoder sees only visible tokens, a light decoder
    reconstructs the (per-tubelet normalised) pixels of the hidden ones."""

    def __init__(self, vit: VideoViT, mask_ratio: float = 0.9, dec_dim: int = 64, dec_depth: int = 1):
        super().__init__()
        self.vit, self.mask_ratio = vit, mask_ratio
        self.enc2dec = nn.Linear(vit.dim, dec_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dec_dim))
        self.dec_pos = nn.Parameter(torch.zeros(1, vit.pos.shape[1], dec_dim))
        layer = nn.TransformerEncoderLayer(dec_dim, 4, dec_dim * 2, 0.0, batch_first=True, norm_first=True)
        self.decoder = nn.TransformerEncoder(layer, dec_depth, enable_nested_tensor=False)
        self.pred = nn.Linear(dec_dim, math.prod(vit.tubelet))

    def patchify(self, x):
        t, h, w = self.vit.tubelet
        B, _, T, H, W = x.shape
        x = x.reshape(B, T // t, t, H // h, h, W // w, w).permute(0, 1, 3, 5, 2, 4, 6)
        return x.reshape(B, -1, t * h * w)

    def forward(self, x, generator=None):
        B = x.shape[0]
        gt, gh, gw = self.vit.grid
        n_sp = gh * gw
        keep_sp = max(1, int(round(n_sp * (1 - self.mask_ratio))))
        noise = torch.rand(B, n_sp, generator=generator, device=x.device)
        vis_sp = noise.argsort(1)[:, :keep_sp]  # tube masking: same patches each t
        vis = (torch.arange(gt, device=x.device)[None, :, None] * n_sp + vis_sp[:, None, :]).reshape(B, -1)
        tok = self.vit.tokens(x)
        enc = self.vit.norm(self.vit.encoder(torch.gather(tok, 1, vis[..., None].expand(-1, -1, tok.shape[2]))))
        dec = self.mask_token.expand(B, tok.shape[1], -1).clone()
        dec = dec.scatter(1, vis[..., None].expand(-1, -1, dec.shape[2]), self.enc2dec(enc))
        rec = self.pred(self.decoder(dec + self.dec_pos))
        target = self.patchify(x)
        target = (target - target.mean(-1, keepdim=True)) / (target.std(-1, keepdim=True) + 1e-6)
        hidden = torch.ones(B, tok.shape[1], device=x.device).scatter(1, vis, 0.0)
        return (((rec - target) ** 2).mean(-1) * hidden).sum() / hidden.sum()


def build_model(
    architecture: str = "r2plus1d",
    frames: int = 8,
    size: int = 64,
    width: int = 16,
    depth: int = 1,
    stages: int = 3,
    dropout: float = 0.2,
) -> nn.Module:
    """``"r2plus1d"`` or ``"vivit"`` with the given size knobs (``dropout=0``: deterministic training)."""
    if architecture == "r2plus1d":
        return R2Plus1D(width=width, depth=depth, stages=stages, dropout=dropout)
    if architecture == "vivit":
        return VideoViT(
            frames=frames, size=size, dim=max(32, 6 * width), depth=max(1, 2 * depth), heads=4, dropout=dropout / 2
        )
    raise ValueError(f"architecture={architecture!r}: choose 'r2plus1d' or 'vivit'")
