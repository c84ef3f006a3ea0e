"""Training steps replayed from a CUDA graph.

torch only. On a GPU, a DeepFM training step is a few hundred small kernels
(the lookups, the DNN, the backward pass, the two optimisers), and launching
them from Python takes several times longer than the GPU takes to run them.
:class:`GraphedSteps` captures one full-size step in a ``torch.cuda.CUDAGraph``
and replays it for every later batch of that size, with one launch per step.
"""

from __future__ import annotations

import warnings

import torch

#: Full-size steps run eagerly, on a side stream, before one is captured:
#: they do the lazy set-up (cuBLAS handles, optimiser state) that a capture
#: must not contain.
WARMUP_STEPS = 3


class GraphedSteps:
    """Run training steps, replaying full-size ones from a CUDA graph.

    Parameters
    ----------
    step : callable (batch) -> None
        One training step on the rows ``batch`` (a 1-D int64 tensor on the
        device). Its device work must not depend on values read back to the
        host, and its Python side must have no state that changes from step
        to step: a replay repeats the captured kernels only.
    batch_size : int
        The size of the batches that are captured and replayed; other sizes
        (an epoch's last batch) run eagerly.
    generators : sequence of torch.Generator
        The CUDA generators the step draws from; each replay advances them.
    enabled : bool
        False runs every step eagerly.
    warmup_steps : int, default=WARMUP_STEPS
        Eager full-size steps before the capture.

    Attributes
    ----------
    replays : int
        Steps replayed from the graph.
    """

    def __init__(self, step, batch_size, generators, *, enabled, warmup_steps=WARMUP_STEPS):
        self.step = step
        self.batch_size = batch_size
        self.generators = list(generators)
        self.enabled = enabled
        self.warmup_left = warmup_steps
        self.replays = 0
        self._graph = None
        self._batch = None

    def __call__(self, batch):
        """Train on the rows ``batch``: replayed, captured or eager."""
        if not self.enabled or len(batch) != self.batch_size:
            self.step(batch)
            return
        # Capture and replay use the current device's streams: make it the
        # batch's device (a model on "cuda:1" while "cuda:0" is current).
        with torch.cuda.device(batch.device):
            if self._graph is not None:
                self._batch.copy_(batch)
                self._graph.replay()
                self.replays += 1
            elif self.warmup_left > 0:
                self.warmup_left -= 1
                self._on_side_stream(batch)
            else:
                self._capture(batch)

    def _on_side_stream(self, batch):
        side = torch.cuda.Stream(device=batch.device)
        side.wait_stream(torch.cuda.current_stream(batch.device))
        with torch.cuda.stream(side):
            self.step(batch)
        torch.cuda.current_stream(batch.device).wait_stream(side)

    def _capture(self, batch):
        static_batch = batch.clone()
        graph = torch.cuda.CUDAGraph()
        try:
            for generator in self.generators:
                graph.register_generator_state(generator)
            with torch.cuda.graph(graph):
                self.step(static_batch)
        except Exception as exc:  # any failure falls back to eager steps
            # Capture records kernels without running them: nothing was
            # applied, so the step runs eagerly and so do the ones after it.
            del graph
            self.enabled = False
            warnings.warn(
                f"Training continues without CUDA graphs: capturing a step failed ({exc}).",
                RuntimeWarning,
                stacklevel=3,
            )
            self.step(batch)
            return
        self._graph, self._batch = graph, static_batch
        graph.replay()
        self.replays += 1

    def close(self):
        """Release the graph and its memory pool."""
        self._graph = self._batch = None
