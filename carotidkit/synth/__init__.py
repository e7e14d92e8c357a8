"""The carotid simulator with known truth: speckle physics, anatomy, B-mode exports with burned-in
overlays, cine loops and a cohort with latent vascular damage (see ``dataset.generate``)."""
