"""Donor (batch) effects for the simulators, with known truth: shared and one-modality shifts."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class DonorEffects:
    """Per-cell donors and the draws of their shifts (an own random stream per simulation)."""

    donor: np.ndarray
    n_donors: int
    sizes: dict[str, float]
    rngs: dict[str, np.random.Generator]
    truth: dict[str, np.ndarray]

    @classmethod
    def draw(
        cls, seed: int, n_cells: int, n_donors: int, shared: float, rna: float, adt: float
    ) -> DonorEffects:
        if isinstance(n_donors, bool) or int(n_donors) != n_donors or n_donors < 1:
            raise ValueError(f"n_donors must be an integer >= 1, got {n_donors!r}.")
        sizes = {"shared": shared, "rna": rna, "adt": adt}
        for name, value in sizes.items():
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
            if not ok or not np.isfinite(value) or value < 0:
                raise ValueError(f"donor_{name} must be a number >= 0, got {value!r}.")
        if n_donors == 1 and any(sizes.values()):
            raise ValueError(
                f"Donor effects { ({k: v for k, v in sizes.items() if v}) } need n_donors >= 2."
            )
        # streams of their own (assignment and each effect apart): the rest of the simulation
        # is the same with or without donors, and one effect does not move another's draws
        streams = np.random.SeedSequence([int(seed), 7919]).spawn(4)
        rngs = dict(
            zip(("donor", "shared", "rna", "adt"), map(np.random.default_rng, streams), strict=True)
        )
        donor = rngs["donor"].integers(0, n_donors, size=n_cells)
        sizes = {k: float(v) for k, v in sizes.items()}
        return cls(donor, int(n_donors), sizes, rngs, {})  # all 0 with one donor

    def shared(self, dim: int) -> np.ndarray | float:
        """Each cell's donor shift of the shared factor (cells × dim; 0 without donors)."""
        if self.n_donors == 1 or self.sizes["shared"] == 0:
            return 0.0
        shift = self.rngs["shared"].normal(0, self.sizes["shared"], size=(self.n_donors, dim))
        self.truth["shared_shift"] = shift
        return shift[self.donor]

    def features(self, modality: str, n_features: int, share: float) -> np.ndarray | float:
        """Each cell's donor shift of the log-rates of ``share`` of the features (one modality;
        0 without donors)."""
        if self.n_donors == 1 or self.sizes[modality] == 0:
            return 0.0
        rng = self.rngs[modality]
        hit = rng.random(n_features) < share
        shift = rng.normal(0, self.sizes[modality], size=(self.n_donors, n_features)) * hit
        self.truth[f"{modality}_shift"] = shift
        return shift[self.donor]

    def labels(self) -> pd.Categorical:
        names = [f"donor{i}" for i in range(self.n_donors)]
        return pd.Categorical.from_codes(self.donor, categories=names)

    def record(self, mdata) -> None:
        """Write ``obs["donor"]`` and the drawn shifts (``uns["synthetic_donors"]``)."""
        if self.n_donors == 1:
            return
        mdata.obs["donor"] = self.labels()
        mdata.uns["synthetic_donors"] = {"sizes": dict(self.sizes), **self.truth}

    def params(self) -> dict:
        return {"n_donors": self.n_donors, **{f"donor_{k}": v for k, v in self.sizes.items()}}
