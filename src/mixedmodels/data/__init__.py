"""From tables to a model's spec and rows: input tables (:mod:`.tables`), R's model matrices
(:mod:`.design`), grouping factors and materialized terms (:mod:`.terms`), the model spec (:mod:`.spec`),
the model frame (:mod:`.frame`) and row sources that yield the engine's arrays chunk by chunk
(:mod:`.rows`)."""
