"""A training step replayed from a CUDA graph.

The ensemble's networks are small (batch 128, width 50), so on a GPU a step is hundreds of
kernel launches of a few microseconds' work each: the host, not the GPU, sets the pace. A
CUDA graph records the whole step once (forward, backward, optimiser) and replays it with a
single launch. The first ``warmup`` steps run eagerly (on a side stream, as capture requires);
they are real training steps, and the captured step is replayed for the batch it was
captured on, so the sequence of updates is the eager one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class GraphedStep:
    """Call ``step(idx)`` eagerly, or (CUDA, ``enabled``) from a captured graph.

    ``step`` must take a batch-index tensor of fixed shape, update the weights in place and
    return tensors (its outputs are overwritten by the next call: consume them first). It
    must not synchronise with the host (no ``.item()``, no data-dependent Python branches).
    """

    def __init__(
        self,
        step: Callable[[torch.Tensor], torch.Tensor],
        device: torch.device,
        enabled: bool = True,
        warmup: int = 3,
    ) -> None:
        self.step = step
        self.enabled = bool(enabled) and device.type == "cuda"
        self.warmup = warmup
        self._calls = 0
        self._graph: torch.cuda.CUDAGraph | None = None
        self._idx: torch.Tensor | None = None
        self._out: torch.Tensor | None = None

    @property
    def captured(self) -> bool:
        """Whether the step now replays a graph."""
        return self._graph is not None

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return self.step(idx)
        if self._graph is None and self._calls < self.warmup:
            self._calls += 1
            side = torch.cuda.Stream(device=idx.device)
            side.wait_stream(torch.cuda.current_stream(idx.device))
            with torch.cuda.stream(side):
                out = self.step(idx)
            torch.cuda.current_stream(idx.device).wait_stream(side)
            return out
        if self._graph is None:
            self._idx = idx.clone()
            self._graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self._graph):
                self._out = self.step(self._idx)
        else:
            assert self._idx is not None
            self._idx.copy_(idx)
        self._graph.replay()
        assert self._out is not None
        return self._out
