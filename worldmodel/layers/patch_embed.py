"""Video to tokens: a 3-D convolution over tubelets of ``tubelet x patch x patch`` pixels."""

from __future__ import annotations

from torch import Tensor, nn


class PatchEmbed3D(nn.Module):
    """``[B, 3, T, H, W] -> [B, (T/tubelet) * (H/patch) * (W/patch), dim]`` in (t, h, w) raster order."""

    def __init__(self, dim: int, patch_size: int, tubelet_size: int, in_channels: int = 3) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        kernel = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_channels, dim, kernel_size=kernel, stride=kernel)

    def forward(self, video: Tensor) -> Tensor:
        _, _, T, H, W = video.shape
        if T % self.tubelet_size or H % self.patch_size or W % self.patch_size:
            raise ValueError(
                f"video of {T} frames x {H} x {W} px does not tile into tubelets of "
                f"{self.tubelet_size} x {self.patch_size} x {self.patch_size}"
            )
        return self.proj(video).flatten(2).transpose(1, 2)  # [B, dim, T', H', W'] -> [B, N, dim]
