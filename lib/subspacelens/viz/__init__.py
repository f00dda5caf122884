"""Figure helpers: the one home of plotting code (metric code never plots).

``style`` holds the palette and the book style; ``images`` grids of generated images;
``curves`` per-layer profiles, heatmaps and overlap matrices.
"""
