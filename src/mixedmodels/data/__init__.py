"""From tables to a model's spec and rows: input tables (:mod:`.tables`), the model spec (:mod:`.spec`)
and row sources that yield the engine's arrays chunk by chunk (:mod:`.rows`)."""
