"""The paper's simulations (Settings 1–4) and the masking importance of input coordinates."""

from ._settings import IDEAL_COORDINATES, masking_importance, setting

__all__ = ["IDEAL_COORDINATES", "masking_importance", "setting"]
