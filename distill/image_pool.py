"""CycleGAN's history of generated images (Shrivastava et al. 2017; junyanz ``util/image_pool.py``).

The discriminators of a CycleGAN see a mix of this step's fakes and fakes of earlier steps.
:class:`ImagePool` keeps up to ``size`` images. Until it is full every queried image is
stored and returned as is; once full, each image is, with probability ½, swapped for a
uniformly chosen stored one (which is returned, the new image taking its slot), else
returned as is.

Everything the pool holds is in its ``state_dict`` (the stored images, how many, and how many
queries it has answered), so a checkpoint captures it and a resumed run continues exactly. Its
random choices come from a private generator seeded by ``(seed, query number)``: they do not
touch (nor depend on) the global RNG, and are the same for a seed on every run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pocketgan.core.errors import PocketganError


class ImagePool(nn.Module):
    """A buffer of up to ``size`` generated images; ``size=0`` disables it (``query`` returns its input)."""

    def __init__(self, size: int = 50, seed: int = 0) -> None:
        super().__init__()
        if size < 0:
            raise PocketganError(f"image pool size must be >= 0; got {size}")
        self.size, self.seed = int(size), int(seed)
        self.register_buffer("images", torch.zeros(0))  # (size, C, H, W) once the first image arrives
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        self.register_buffer("queries", torch.zeros((), dtype=torch.long))

    def generator(self) -> torch.Generator:
        """The generator of the next query: seeded by ``(seed, query number)`` only."""
        state = np.random.SeedSequence([self.seed, int(self.queries)]).generate_state(2, dtype=np.uint32)
        return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))

    @torch.no_grad()
    def query(self, images: Tensor) -> Tensor:
        """The images the discriminator sees for the generated batch ``images`` (detached)."""
        images = images.detach()
        if self.size == 0:
            return images
        if self.images.dim() == 1:
            self.images = images.new_zeros((self.size, *images.shape[1:]))
        generator, chosen = self.generator(), []
        for image in images:
            stored = int(self.count)
            if stored < self.size:
                self.images[stored] = image
                self.count += 1
                chosen.append(image)
            elif float(torch.rand((), generator=generator)) > 0.5:
                slot = int(torch.randint(self.size, (), generator=generator))
                chosen.append(self.images[slot].clone())
                self.images[slot] = image
            else:
                chosen.append(image)
        self.queries += 1
        return torch.stack(chosen)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        """Take the stored images' shape from the checkpoint (the pool allocates them lazily)."""
        key = prefix + "images"
        if key in state_dict and state_dict[key].shape != self.images.shape:
            self.images = torch.zeros_like(state_dict[key], device=self.images.device)
        super()._load_from_state_dict(state_dict, prefix, *args)
