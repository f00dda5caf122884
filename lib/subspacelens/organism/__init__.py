"""The model organism: a small PixArt-α-architecture diffusion model trained on procedural images.

``build`` makes the (random-initialised) pipeline from configs; ``images`` the procedural data set
with the v2 prompts' 5-category × 5-subject hierarchy; ``train`` the VAE and DDPM training loops;
``evaluate`` sampling and the nearest-centroid check that the organism learned its subjects.
"""

from subspacelens.organism.build import OrganismConfig, build_pipeline

__all__ = ["OrganismConfig", "build_pipeline"]
