"""A training step replayed from a CUDA graph.

The ensemble's networks are small (batch 128, width 50), so on a GPU a step is hundreds of
kernel launches of a few microseconds' work each: the host, not the GPU, sets the pace. A
CUDA graph records the whole step once (forward, backward, optimiser) and replays it with a
single launch. The first ``warmup`` steps run eagerly (on a side stream, as capture requires);
they are real training steps, and the captured step is replayed for the batch it was
captured on, so the sequence of updates is the eager one.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch


class GraphedStep:
    """Call ``step(idx)`` eagerly, or (CUDA, ``enabled``) from a captured graph.

    ``step`` must take a batch-index tensor of fixed shape, update the weights in place and
    return tensors (its outputs are overwritten by the next call: consume them first). It
    must not synchronise with the host (no ``.item()``, no data-dependent Python branches).
    ``warmup`` (at least 1) eager steps come first, so that lazily created state (Adam's
    moments) lives outside the graph. If the capture fails, a warning says so and the step
    stays eager.
    """

    def __init__(
        self,
        step: Callable[[torch.Tensor], torch.Tensor],
        device: torch.device,
        enabled: bool = True,
        warmup: int = 3,
    ) -> None:
        if warmup < 1:
            raise ValueError(f"warmup must be at least 1 (optimiser state), got {warmup!r}.")
        self.step = step
        self.enabled = bool(enabled) and device.type == "cuda"
        self.warmup = warmup
        self._calls = 0
        self._stream: torch.cuda.Stream | None = None
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
        with torch.cuda.device(idx.device):  # capture on the tensors' GPU, not the current one
            if self._stream is None:
                self._stream = torch.cuda.Stream(device=idx.device)
            if self._graph is None and self._calls < self.warmup:
                self._calls += 1
                self._stream.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(self._stream):
                    out = self.step(idx)
                torch.cuda.current_stream().wait_stream(self._stream)
                return out
            if self._graph is None:
                if not self._capture(idx):
                    return self.step(idx)
            else:
                assert self._idx is not None
                self._idx.copy_(idx)
            assert self._graph is not None and self._out is not None
            self._graph.replay()
            return self._out

    def _capture(self, idx: torch.Tensor) -> bool:
        self._idx = idx.clone()
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, stream=self._stream):
                out = self.step(self._idx)
        except Exception as err:  # nothing ran on the GPU during capture: eager is still exact
            warnings.warn(
                f"CUDA graph capture of the training step failed ({err}); training on without "
                "graphs (pass cuda_graphs=False to skip the attempt).",
                RuntimeWarning,
                stacklevel=3,
            )
            self.enabled = False
            return False
        self._graph, self._out = graph, out
        return True
