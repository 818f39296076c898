"""Fitted models: what every model family's results share (:mod:`.base`)."""
