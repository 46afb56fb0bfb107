"""The invariance audit: render drawings under nuisance factors and measure what changes.

``factors`` renders (what a user's pen and canvas could vary), ``alignment`` brings Grad-CAM
maps of different renderings into one frame, ``run`` measures and flags likely shortcuts.
"""

# The files ``audit`` writes into its output folder (a batch report there links them).
AUDIT_JSON = "audit.json"
AUDIT_FIGURE = "audit.png"
